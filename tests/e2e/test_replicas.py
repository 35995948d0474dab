"""Three replicas behind HAProxy on one PostgreSQL database and one object store, under
load: the replica leading the drift view and the loop is SIGKILLed, then all three are
restarted one at a time. Real parts throughout: three `driftloop serve` processes on their
own ports and data folders (nothing shared on disk), Debian's HAProxy with
deploy/haproxy/haproxy.cfg as shipped, moto's S3 server, the suite's PostgreSQL.

The figures (requests, failed, time to a new leader, drift report lag) are printed and
written to ``replica-figures.json`` in the test's folder; docs/operations.md quotes them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from tests.conftest import POSTGRES_DSN
from tests.e2e.processes import wait_for
from tests.netproxy import free_port
from tests.s3_standin import aws_environment, s3_standin
from tests.served_model import FEATURES, cancer_frame, pipeline

from driftloop.data.snapshots import SnapshotStore
from driftloop.registry import ModelRegistry

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
ADMIN = {"Authorization": "Bearer replica-admin"}
CLIENTS = 32
LEASE_S, POLL_S = 3.0, 0.5  # DriftLeader's lease and the server's poll interval
#: The stated bound on leader failover after a SIGKILL: the dead leader's lease lapses
#: (LEASE_S), a follower notices at its next poll (POLL_S), and one more poll of slack for
#: a busy machine; the test allows twice that before calling it a failure.
FAILOVER_BOUND_S = LEASE_S + 2 * POLL_S
pytestmark = pytest.mark.slow


@dataclass
class Replica:
    name: str
    port: int
    data_dir: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, database_url: str, artifacts: str) -> None:
        exe = Path(sys.executable).with_name("driftloop")
        log = self.data_dir / "server.log"
        with log.open("ab") as sink:
            self.proc = subprocess.Popen(
                [str(exe), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
                 "--database-url", database_url, "--artifacts", artifacts, "--model", "cancer",
                 "--admin-token", "replica-admin", "--log-level", "warning"],
                env=self.env, stdout=sink, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log_tail()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.name} not ready: {self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log_tail(self) -> str:
        log = self.data_dir / "server.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""


@dataclass
class Counters:
    requests: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    labels: int = 0
    labels_lost: int = 0


class Load:
    """CLIENTS concurrent clients through the balancer: predict, then label the answer a
    second later (by then its replica has logged it in the shared database)."""

    def __init__(self, url: str, rows: list[dict[str, Any]], labels: list[int]) -> None:
        self.url, self.rows, self.labels = url, rows, labels
        self.counters = Counters()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def snapshot(self) -> Counters:
        c = self.counters
        return Counters(c.requests, c.failed, list(c.errors), c.labels, c.labels_lost)

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        async with httpx.AsyncClient(base_url=self.url, timeout=30, limits=limits) as client:
            await asyncio.gather(*(self._client(client, i) for i in range(CLIENTS)))

    async def _client(self, client: httpx.AsyncClient, index: int) -> None:
        pending: list[tuple[float, str, int]] = []
        i = index
        while not self._stop.is_set():
            i = (i + CLIENTS) % len(self.rows)
            request_id = uuid.uuid4().hex
            self.counters.requests += 1
            try:
                response = await client.post("/predict", json={"features": self.rows[i],
                                                               "request_id": request_id})
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code} {response.text[:200]}")
                pending.append((time.monotonic(), request_id, self.labels[i]))
            except Exception as exc:
                self.counters.failed += 1
                self.counters.errors.append(f"{type(exc).__name__}: {exc}"[:300])
            while pending and time.monotonic() - pending[0][0] > 1.0:
                _, rid, label = pending.pop(0)
                await self._label(client, rid, label)
            await asyncio.sleep(0.01)

    async def _label(self, client: httpx.AsyncClient, request_id: str, label: int) -> None:
        self.counters.labels += 1
        try:
            response = await client.post("/feedback", json={"request_id": request_id,
                                                            "label": label})
            if response.status_code != 200:
                # 404: the replica that answered died before logging the prediction
                self.counters.labels_lost += 1
        except httpx.HTTPError:
            self.counters.labels_lost += 1


class DriftWatch:
    """Polls the merged drift report through the balancer: who leads and how stale the
    report is (now - the leader's last step), every 0.2 s."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[tuple[float, str | None, float | None]] = []  # (wall, leader, lag)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self._stop.is_set():
                now = time.time()
                try:
                    report = client.get("/api/drift").json()["report"] or {}
                    updated = report.get("updated_at")
                    self.samples.append((now, report.get("leader_id"),
                                         None if updated is None else now - updated))
                except (httpx.HTTPError, ValueError, KeyError):
                    pass
                self._stop.wait(0.2)

    def leader_pid(self) -> int | None:
        for _, leader, _ in reversed(self.samples):
            if leader:
                return int(leader.split(":")[1])
        return None

    def max_lag(self, since: float, until: float) -> float:
        lags = [lag for t, _, lag in self.samples if since <= t <= until and lag is not None]
        return max(lags) if lags else float("nan")


def _haproxy(tmp: Path, lb_port: int, replicas: list[Replica]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LB_BIND": f"127.0.0.1:{lb_port}",
           "STATS_BIND": f"127.0.0.1:{free_port()}",
           **{f"REPLICA{i + 1}": f"127.0.0.1:{r.port}" for i, r in enumerate(replicas)}}
    check = subprocess.run([HAPROXY, "-c", "-f", str(HAPROXY_CFG)], env=env, check=False,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    with (tmp / "haproxy.log").open("wb") as sink:
        return subprocess.Popen([HAPROXY, "-db", "-f", str(HAPROXY_CFG)], env=env,
                                stdout=sink, stderr=subprocess.STDOUT)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    schema = f"dl_replicas_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield schema
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')




def _run(url: str, run_id: str) -> dict[str, Any]:
    runs = httpx.get(f"{url}/api/runs", timeout=10).json()["runs"]
    return next(r for r in runs if r["id"] == run_id)


def test_three_replicas_survive_a_killed_leader_and_a_rolling_restart(
        tmp_path: Path, pg_schema: str) -> None:
    if not Path(HAPROXY).exists():
        if os.environ.get("DEPLOY_TOOLS_REQUIRED"):
            pytest.fail("haproxy is missing: run scripts/deploy_tools.sh")
        pytest.skip("haproxy is missing (scripts/deploy_tools.sh installs it)")
    host = POSTGRES_DSN.removeprefix("postgresql://")
    database_url = f"postgresql+psycopg://{host}?options=-csearch_path%3D{pg_schema}"
    frame = cancer_frame()
    rows = frame[FEATURES].to_dict(orient="records")
    labels = [int(y) for y in frame["label"]]
    figures: dict[str, Any] = {"clients": CLIENTS, "lease_s": LEASE_S,
                               "failover_bound_s": FAILOVER_BOUND_S}

    with s3_standin(tmp_path) as s3, aws_environment(s3.endpoint):
        s3.create_bucket("driftloop")
        artifacts = "s3://driftloop/prod"
        _register_champion(database_url, artifacts, tmp_path / "seed", frame)
        env = {**os.environ, **s3.env(), "DRIFTLOOP_PANE_SECONDS": "1",
               "DRIFTLOOP_DRIFT_WINDOW": "400", "DRIFTLOOP_RETRAIN_ON_DRIFT": "false",
               "DRIFTLOOP_TRAINER": "tests.training.trainers:SlowTrainer",
               "DRIFTLOOP_TRAINER_OPTIONS": json.dumps({"seconds": 6}),
               "DRIFTLOOP_MIN_TRAIN_ROWS": "150", "DRIFTLOOP_SNAPSHOT_ROWS": "400",
               "DRIFTLOOP_MIN_SAMPLES": "100", "DRIFTLOOP_SHADOW_MAX_DURATION": "20",
               "DRIFTLOOP_COOLDOWN": "1"}
        replicas = [Replica(f"replica{i}", free_port(), tmp_path / f"replica{i}", env)
                    for i in (1, 2, 3)]
        lb_port = free_port()
        balancer = None
        load = watch = None
        try:
            for replica in replicas:
                replica.data_dir.mkdir()
                replica.start(database_url, artifacts)
            for replica in replicas:
                replica.wait_ready()
            balancer = _haproxy(tmp_path, lb_port, replicas)
            lb = f"http://127.0.0.1:{lb_port}"
            wait_for(lambda: _get_ok(f"{lb}/readyz"), 30, "the balancer")
            load, watch = Load(lb, rows, labels), DriftWatch(lb)
            load.start()
            watch.start()
            leader_pid = wait_for(watch.leader_pid, 60, "a drift leader")
            by_pid = {r.proc.pid: r for r in replicas if r.proc is not None}
            assert leader_pid in by_pid, (leader_pid, list(by_pid))

            # --- a run in flight on the leader: training (a 6 s trainer) when it dies
            run_id = httpx.post(f"{lb}/api/retrain", headers=ADMIN, timeout=10,
                                json={"reason": "replica test"}).json()["run_id"]
            assert run_id
            wait_for(lambda: _run(lb, run_id)["state"] == "TRAINING", 90, "the run to train")
            leader_pid = watch.leader_pid()
            victim = by_pid[leader_pid]
            before = load.snapshot()
            killed_at = time.time()
            victim.stop(signal.SIGKILL)

            def new_leader() -> float | None:
                for t, leader, lag in watch.samples:
                    if (t > killed_at and leader and int(leader.split(":")[1]) != leader_pid
                            and lag is not None and t - lag > killed_at):
                        return t - lag  # the new leader's first step
                return None

            took_over_at = wait_for(new_leader, 4 * FAILOVER_BOUND_S + 20, "a new leader")
            run = wait_for(lambda: _moved_on(lb, run_id, killed_at), 120,
                        "the run to resume or end on the new leader")
            time.sleep(3)  # the merged report keeps advancing after the failover
            after = load.snapshot()
            figures["kill"] = {
                "requests": after.requests - before.requests,
                "failed": after.failed - before.failed,
                "labels_lost": after.labels_lost - before.labels_lost,
                "time_to_new_leader_s": round(took_over_at - killed_at, 2),
                "max_drift_report_lag_s": round(watch.max_lag(killed_at, time.time()), 2),
                "run": {"state": run["state"], "reason": run["reason"],
                        "trainings": sum(t["to"] == "TRAINING" for t in run["transitions"])},
            }
            # HAProxy retries a request the dead replica never answered; one whose answer
            # the SIGKILL cut between its headers and its body cannot be retried by anyone
            # but the client (at most one per connection in flight to the victim).
            cut = after.errors[len(before.errors):]
            assert len(cut) <= CLIENTS and all(
                "without sending complete message body" in error for error in cut), cut
            assert took_over_at - killed_at < 2 * FAILOVER_BOUND_S + 5
            assert watch.samples[-1][2] is not None and watch.samples[-1][2] < 5
            if run["state"] == "FAILED":
                assert run["reason"]

            # --- the killed replica comes back, then a rolling restart of all three
            victim.start(database_url, artifacts)
            victim.wait_ready()
            time.sleep(2)  # the balancer's checks (inter 0.5 s, rise 2) see it up
            before, started = load.snapshot(), time.time()
            for replica in replicas:
                replica.stop(signal.SIGTERM)
                replica.start(database_url, artifacts)
                replica.wait_ready()
                time.sleep(2)
            after = load.snapshot()
            figures["rolling_restart"] = {
                "requests": after.requests - before.requests,
                "failed": after.failed - before.failed,
                "labels_lost": after.labels_lost - before.labels_lost,
                "max_drift_report_lag_s": round(watch.max_lag(started, time.time()), 2),
                "seconds": round(time.time() - started, 1),
            }
            assert after.failed == before.failed, after.errors[-10:]
            wait_for(lambda: watch.samples[-1][2] is not None and watch.samples[-1][2] < 5, 30,
                  "the drift report to advance after the restart")
        finally:
            for part in (load, watch):
                if part is not None:
                    part.stop()
            for replica in replicas:
                replica.stop(signal.SIGKILL)
            if balancer is not None:
                balancer.kill()
                balancer.wait(10)
            (tmp_path / "replica-figures.json").write_text(json.dumps(figures, indent=2))
            print("\nreplica figures:", json.dumps(figures, indent=2))


def _get_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _moved_on(url: str, run_id: str, since: float) -> dict[str, Any] | None:
    """The run once it has a transition after ``since`` (the new leader drove it) or has
    ended; None while it still sits where the dead leader left it."""
    try:
        run = _run(url, run_id)
    except (httpx.HTTPError, StopIteration, ValueError):
        return None
    if not run["active"] or any(t["at"] > since for t in run["transitions"]):
        return run
    return None


def _register_champion(database_url: str, artifacts: str, seed: Path,
                       frame: Any) -> None:
    """v1, trained on a snapshot of the bundled breast-cancer data, both in the store."""
    registry = ModelRegistry.open(database_url, artifacts=artifacts, cache=seed)
    snapshot = SnapshotStore.for_registry(registry).write(frame)
    model = pipeline().fit(frame[FEATURES], frame["label"])  # type: ignore[attr-defined]
    v = registry.push_candidate("cancer", model, dataset=(snapshot.id, snapshot.sha256))
    registry.promote_candidate("cancer", v.version)
    registry.engine.dispose()
    shutil.rmtree(seed)  # the replicas get everything from the store

