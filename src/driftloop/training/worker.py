"""Training in a subprocess: a timeout that can really stop it, and a crash that cannot take
the server down with it.

The parent (:func:`train_in_subprocess`) starts ``python -m driftloop.training.worker``
in a new session, sends the job as JSON on stdin and reads JSON lines back: each
``logging`` record of the trainer as ``{"log": ...}``, a failure as ``{"error": ...}``.
The child loads the snapshot (hashes verified) and the parent model (sha256 verified),
calls ``trainer.train(snapshot, parent, params)``, and saves the model through its adapter
into the output folder, from where the parent loads it back the same way the registry
would — so a trainer can only hand over what an adapter trusts (no pickle). The child
exits on its own when its parent dies, so a killed server leaves no orphan training.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from driftloop.training.base import TrainerError

RESULT = "result.json"
MODEL_DIR = "model"


class TrainingTimeoutError(TrainerError):
    """The trainer ran past its time limit and was killed."""


@dataclass(frozen=True)
class TrainingJob:
    """Everything the child needs, as JSON: no objects cross the process boundary."""

    trainer: str  # import path of the Trainer class
    options: dict[str, Any]  # its constructor's keyword arguments
    params: dict[str, Any]  # passed to train()
    data_dir: str
    database_url: str
    model_name: str
    snapshot_id: str
    out_dir: str
    parent_version: int | None = None
    threads: int = 1  # BLAS/OpenMP threads the trainer may use (driftloop.threads)
    artifacts_url: str = ""  # the object store, when artifacts are not under data_dir
    adapters: list[str] = field(default_factory=list)  # entry-point names; empty: all


async def train_in_subprocess(job: TrainingJob, *, timeout_s: float,
                              on_log: Callable[[str], Awaitable[None]]) -> Any:
    """Run ``job`` in a child process; the trained model, loaded back through its adapter.

    Raises :class:`TrainingTimeoutError` after ``timeout_s`` (the child's whole process
    group is killed) and :class:`TrainerError` when the trainer fails."""
    from driftloop.threads import thread_environment  # noqa: PLC0415

    Path(job.out_dir).mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "driftloop.training.worker",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        env=thread_environment(job.threads))
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(asdict(job)).encode())
    proc.stdin.close()
    errors: list[str] = []

    async def relay() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            try:
                message = json.loads(line)
            except ValueError:
                message = {"log": line}
            if not isinstance(message, dict):
                message = {"log": line}
            if "error" in message:
                errors.append(str(message["error"]))
            elif line:
                await on_log(str(message.get("log", line)))
        await proc.wait()

    try:
        await asyncio.wait_for(relay(), timeout_s)
    except TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        raise TrainingTimeoutError(f"training ran past its limit of {timeout_s:g} s and was "
                                   "stopped") from None
    except asyncio.CancelledError:
        _kill_group(proc.pid)
        raise
    if proc.returncode != 0:
        detail = errors[-1] if errors else f"the trainer process exited with {proc.returncode}"
        raise TrainerError(detail)
    return load_result(Path(job.out_dir), job.adapters)


def load_result(out_dir: Path, adapters: list[str] | None = None) -> Any:
    from driftloop.models.base import adapter_named, installed_adapters  # noqa: PLC0415

    result = json.loads((out_dir / RESULT).read_text())
    return adapter_named(result["framework"],
                         installed_adapters(adapters or ())).load(out_dir / MODEL_DIR)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


# --------------------------------------------------------------------------- the child
class _JsonLines(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _say({"log": f"{record.levelname.lower()}: {record.getMessage()}"})


def _say(message: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _exit_with_parent() -> None:
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def choose_trainer(job: TrainingJob, parent: Any | None) -> Any:
    """The trainer for ``job``: the configured one, except that the default trainer left
    unconfigured retrains a champion that names its own ``retrainer`` (an XGBoost or
    LightGBM booster) with that, so a run keeps the user's kind of model."""
    from driftloop.training.sklearn import DEFAULT_TRAINER, import_object  # noqa: PLC0415

    retrainer = getattr(parent, "retrainer", None)
    if job.trainer == DEFAULT_TRAINER and not job.options and isinstance(retrainer, str):
        logging.getLogger("driftloop.training").info(
            "the champion is a %s model: retraining it with %s",
            getattr(parent, "framework", type(parent).__name__), retrainer)
        return import_object(retrainer)()
    return import_object(job.trainer)(**job.options)


def run_job(job: TrainingJob) -> None:
    """The child's work: load, train, save. Import-light until the job is known."""
    from driftloop.config import available_cpus  # noqa: PLC0415
    from driftloop.threads import limit_threads  # noqa: PLC0415

    limit_threads(job.threads)
    logging.getLogger(__name__).info(
        "training with %d BLAS/OpenMP thread%s (%d CPUs available to this process; "
        "setting: threads)", job.threads, "" if job.threads == 1 else "s", available_cpus())
    from driftloop.data.snapshots import SnapshotStore  # noqa: PLC0415
    from driftloop.fsutil import write_atomic  # noqa: PLC0415
    from driftloop.models.base import adapter_for, installed_adapters  # noqa: PLC0415
    from driftloop.registry import ModelRegistry  # noqa: PLC0415

    adapters = installed_adapters(job.adapters)
    registry = ModelRegistry.open(job.database_url, artifacts=job.artifacts_url or job.data_dir,
                                  cache=job.data_dir, adapters=adapters)
    store = SnapshotStore.for_registry(registry)
    snapshot = store.verify(job.snapshot_id)
    parent = (registry.load(job.model_name, job.parent_version)
              if job.parent_version is not None else None)
    trainer = choose_trainer(job, parent)
    model = trainer.train(snapshot, parent, job.params)
    adapter = adapter_for(model, adapters)
    out = Path(job.out_dir)
    target = out / MODEL_DIR
    target.mkdir(parents=True, exist_ok=False)
    adapter.save(model, target)
    write_atomic(out / RESULT, json.dumps({"framework": adapter.framework}).encode())


def main() -> int:
    _exit_with_parent()
    logging.basicConfig(level=logging.INFO, handlers=[_JsonLines()], force=True)
    try:
        job = TrainingJob(**json.loads(sys.stdin.read()))
        run_job(job)
    except TrainerError as exc:
        _say({"error": str(exc)})
        return 2
    except Exception as exc:
        for line in traceback.format_exc().splitlines():
            _say({"log": line})
        _say({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
