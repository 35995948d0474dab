"""The whole loop, end to end: `driftloop demo` closes it, and a server SIGKILLed during
TRAINING comes back with the run ended consistently and nothing logged lost."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.processes import cpu_burners, start_server, wait_for
from tests.training.helpers import SHIFT, loop_settings, loop_stream, serve_traffic

from driftloop.data.predictions import PredictionLog
from driftloop.db import create_engine
from driftloop.demo.runner import ESTIMATOR, train_first_version

ADMIN = {"Authorization": "Bearer s3cret"}


@pytest.mark.slow
def test_the_demo_closes_the_loop_on_a_busy_machine(tmp_path: Path) -> None:
    """Beside two CPU-burning processes, as a user's machine is: `make run` did not promote
    there (training threads oversubscribed the cores, and the replay had a fixed end)."""
    exe = Path(sys.executable).with_name("driftloop")
    with cpu_burners(2):
        proc = subprocess.run(
            [str(exe), "demo", "--headless", "--until", "promoted", "--speed", "50",
             "--port", "0", "--max-seconds", "480", "--data-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dashboard at http://127.0.0.1:" in proc.stdout
    assert "summary" in proc.stdout and "promoted" in proc.stdout
    [summary_file] = tmp_path.glob("demo/*/summary.json")
    summary = json.loads(summary_file.read_text())
    assert summary["alarms_before_shift"] == 0
    assert summary["shift_event"] < summary["alarm_event"] < summary["promoted_event"]
    assert summary["run_outcome"] == "promoted" and summary["new_champion"] == 2
    assert summary["old_accuracy_after_shift"] < 0.6
    assert summary["new_accuracy_after_shift"] > 0.8  # v1 fell below 0.6; v2 recovers


def test_ctrl_c_prints_the_summary_so_far_and_the_data_folder(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("driftloop")
    log = tmp_path / "demo.log"
    with log.open("w") as sink:
        # Started with SIGINT ignored, as a script's background job (or a test runner's
        # worker) hands it on: the demo must still take Ctrl-C.
        demo = subprocess.Popen(["bash", "-c", 'trap "" INT; exec "$0" "$@"', str(exe), "demo",
                                 "--headless", "--port", "0", "--data-dir", str(tmp_path)],
                                stdout=sink, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: "replayed" in log.read_text() or demo.poll() is not None, 180,
                  "the replay to start")
            demo.send_signal(signal.SIGINT)
            code = demo.wait(timeout=60)
        finally:
            demo.kill()
    out = log.read_text()
    [folder] = tmp_path.glob("demo/*")
    assert code == 130, out
    assert "summary (interrupted)" in out and "Aborted" not in out
    assert f"everything so far is in {folder}" in out.replace("\n", "")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["events_sent"] > 0


def _state(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/api/state", timeout=10).json()


def _past_training(url: str, run_id: str) -> dict[str, Any] | None:
    runs = httpx.get(f"{url}/api/runs", timeout=10).json()["runs"]
    run = next(r for r in runs if r["id"] == run_id)
    return None if run["state"] in ("SNAPSHOTTING", "TRAINING") else run




@pytest.mark.slow
def test_sigkill_during_training_ends_the_run_consistently_and_loses_nothing(
    tmp_path: Path,
) -> None:
    settings = loop_settings(tmp_path)
    stream = loop_stream()
    train_first_version(settings, stream, 1500)
    serve_traffic(settings, stream, SHIFT + 200, SHIFT + 900)  # labelled history
    env = {"DRIFTLOOP_TRAINER": "tests.training.trainers:SlowTrainer",
           "DRIFTLOOP_TRAINER_OPTIONS": json.dumps({"seconds": 6, "estimator": ESTIMATOR}),
           "DRIFTLOOP_MIN_TRAIN_ROWS": "300", "DRIFTLOOP_SNAPSHOT_ROWS": "600",
           "DRIFTLOOP_DRIFT_WINDOW": "5000"}
    proc, url = start_server(settings, 1, env=env)
    rows = stream.features.iloc[SHIFT + 900:SHIFT + 1000].to_dict(orient="records")
    with httpx.Client(base_url=url, timeout=10) as client:
        answers = client.post("/predict/batch", json={"rows": [
            {"features": r, "request_id": f"live-{i}"} for i, r in enumerate(rows)]}).json()
        assert {a["model_version"] for a in answers["predictions"]} == {1}
        labels = stream.labels.iloc[SHIFT + 900:SHIFT + 1000].tolist()
        log = PredictionLog(create_engine(settings.database_url))
        wait_for(lambda: log.get("live-99") is not None, 30, "the live predictions to be logged")
        client.post("/feedback/batch", json={"items": [
            {"request_id": f"live-{i}", "label": y} for i, y in enumerate(labels)]})
        run_id = client.post("/api/retrain", headers=ADMIN,
                             json={"reason": "kill test"}).json()["run_id"]
        wait_for(lambda: _state(url)["loop"]["state"] == "TRAINING", 60, "TRAINING")
    before = (log.count(), log.count(labelled=True))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    proc, url = start_server(settings, 1, env=env)  # the same data folder and database
    try:
        assert httpx.post(f"{url}/predict", json={"features": rows[0]}, timeout=10
                          ).json()["model_version"] == 1  # the champion serves at once
        run = wait_for(lambda: _past_training(url, run_id), 120, "the run to leave TRAINING")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    trainings = [t for t in run["transitions"] if t["to"] == "TRAINING"]
    assert len(trainings) == 1  # resumed in place, not restarted from the beginning
    assert run["state"] in ("EVALUATING", "SHADOWING", "REJECTED", "COOLDOWN", "FAILED")
    if run["state"] == "FAILED":
        assert run["reason"]
    else:
        assert run["candidate_version"] == 2
    assert log.count() >= before[0] and log.count(labelled=True) >= before[1]
    assert log.count(labelled=True) >= 700 + 100
