"""Settings: defaults, then ``driftloop.toml``, then ``DRIFTLOOP_*`` environment variables.

Every field can be set in the ``[driftloop]`` table of the TOML file or as
``DRIFTLOOP_<FIELD>`` (upper case); the environment wins. A bad value names the field and
where it came from.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

ENV_PREFIX = "DRIFTLOOP_"


class SettingsError(ValueError):
    """A setting has a bad value; the message names it and its source."""


@dataclass(frozen=True)
class Settings:
    """Everything the server and the loop are configured with."""

    model_name: str = "model"
    data_dir: Path = Path("artifacts")
    database_url: str = ""  # default: sqlite:///<data_dir>/driftloop.db
    reference: Path | None = None  # training data when the champion has no snapshot
    label_column: str = "label"
    ignore_columns: tuple[str, ...] = ("request_id", "event_timestamp", "ts")
    admin_token: str | None = field(default=None, repr=False)
    # serving
    max_batch: int = 64
    max_wait_ms: float = 10.0  # measured: benchmarks/serve_bench.py
    max_queue: int = 2048
    max_body_bytes: int = 1_000_000
    max_batch_rows: int = 1000
    candidate_timeout: float = 2.0
    traffic_mode: str = "off"
    candidate_weight: float = 0.0
    shadow_fraction: float = 1.0
    poll_interval: float = 0.5
    # observation and drift
    observe_queue: int = 20_000
    drift_window: int = 5000
    drift_panes: int = 2
    pane_seconds: float | None = None  # time-based panes (needed with several workers)
    log_predictions: bool = True
    # the retraining loop (RetrainOrchestrator, ShadowGate)
    retrain_on_drift: bool = True
    trainer: str = "driftloop.training.sklearn:SklearnTrainer"  # import path of a Trainer
    trainer_options: dict[str, Any] = field(default_factory=dict)  # its keyword arguments
    train_timeout: float = 600.0  # seconds; the trainer's process is killed after it
    train_attempts: int = 2  # tries of the training step (a restart mid-training is one)
    snapshot_rows: int = 20_000  # the newest labelled rows since the champion was made
    min_train_rows: int = 200  # wait (up to step_timeout) until this many are labelled
    parent_sample: float = 0.0  # share of the parent's training rows mixed in
    holdout_fraction: float = 0.2
    gate_metric: str = "accuracy"
    min_delta: float = 0.0  # the improvement the candidate must show
    gate_alpha: float = 0.05
    min_samples: int = 200  # labelled shadow pairs before any decision
    shadow_max_duration: float = 3600.0  # then the candidate is rejected as inconclusive
    max_error_rate_ratio: float = 1.5
    max_latency_ratio: float = 1.5
    rollback_delta: float = 0.05  # post-promotion watch: roll back if worse by more
    watch_samples: int = 200
    watch_duration: float = 1800.0
    cooldown: float = 300.0  # after a run, drift and schedule triggers are ignored
    retrain_interval: float | None = None  # seconds between scheduled runs; None: off
    step_timeout: float = 1800.0  # the longest any other step may take
    # --- issue 13: statistics that cannot mislead
    output_reference: Path | None = None  # rows the champion was not fit on (no snapshot)
    label_horizon: float = 0.0  # seconds a shadowed request waits before the gate pairs it
    rollback_alpha: float = 0.05  # error level of the post-promotion rollback watch

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url",
                               f"sqlite:///{Path(self.data_dir) / 'driftloop.db'}")
        positive = ("max_batch", "max_queue", "max_body_bytes", "max_batch_rows",
                    "observe_queue", "drift_window", "drift_panes", "train_attempts",
                    "snapshot_rows", "min_train_rows", "min_samples", "watch_samples")
        for name in positive:
            if getattr(self, name) < 1:
                raise SettingsError(f"{name}: must be >= 1, got {getattr(self, name)!r}")
        for name in ("parent_sample", "gate_alpha"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise SettingsError(f"{name}: must be in [0, 1), got {getattr(self, name)!r}")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise SettingsError(f"holdout_fraction: must be in (0, 1), got "
                                f"{self.holdout_fraction!r}")
        if self.poll_interval <= 0 or self.poll_interval > 0.5:
            raise SettingsError(f"poll_interval: must be in (0, 0.5] seconds, got "
                                f"{self.poll_interval!r}")

    @classmethod
    def load(cls, path: Path | None = None, env: dict[str, str] | None = None,
             **overrides: Any) -> Settings:
        """Defaults ← ``path`` (default ``./driftloop.toml`` if present) ← environment ←
        ``overrides`` (command-line options; ``None`` means not given)."""
        values: dict[str, Any] = {}
        hints = get_type_hints(cls)
        toml_path = path or Path("driftloop.toml")
        if toml_path.is_file():
            with toml_path.open("rb") as handle:
                table = tomllib.load(handle).get("driftloop", {})
            for key, raw in table.items():
                values[key] = _coerce(key, raw, hints, f"{toml_path}")
        for key, raw in (os.environ if env is None else env).items():
            if key.startswith(ENV_PREFIX):
                name = key.removeprefix(ENV_PREFIX).lower()
                values[name] = _coerce(name, raw, hints, f"${key}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise SettingsError(f"{sorted(unknown)[0]}: not a driftloop setting")
        return cls(**values)


def _coerce(name: str, raw: Any, hints: dict[str, Any], source: str) -> Any:
    if name not in hints:
        raise SettingsError(f"{name}: not a driftloop setting (from {source})")
    kind = str(hints[name])
    try:
        if isinstance(raw, str):
            if "bool" in kind:
                if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(raw)
                return raw.lower() in ("1", "true", "yes")
            if "tuple" in kind:
                return tuple(part.strip() for part in raw.split(",") if part.strip())
            if "dict" in kind:
                value = json.loads(raw)
                if not isinstance(value, dict):
                    raise ValueError(raw)
                return value
            if "int" in kind and "float" not in kind:
                return int(raw)
            if "float" in kind:
                return None if raw == "" and "None" in kind else float(raw)
            if "Path" in kind:
                return Path(raw) if raw else None
            return raw
        if "tuple" in kind and isinstance(raw, list):
            return tuple(raw)
        if "Path" in kind and raw is not None:
            return Path(raw)
        return raw
    except ValueError as exc:
        raise SettingsError(f"{name}: {raw!r} from {source} is not a valid {kind}") from exc
