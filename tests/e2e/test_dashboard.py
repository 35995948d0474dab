"""The dashboard in a real browser: Debian's Chromium, driven by playwright-core
(dashboard/e2e/dashboard.e2e.mjs), against a real `driftloop demo --headless` server.

The page must connect, receive drift points, show the state diagram reach TRAINING and come
back, show two model versions in the lineage after the promotion, and show the traffic
allocation. A second page, a late visitor, reloads after the alarm and after the promotion
and must still show the drift history (at least three evaluations), the alarm and the
lineage: the snapshot carries the story, from the database. Screenshots of every panel after
each reload, and of the live page, are kept in test-artifacts/dashboard/ (git-ignored).

`make test` builds the dashboard, installs Chromium when it is missing and sets
DASHBOARD_E2E_REQUIRED=1 (not a DRIFTLOOP_ variable: those are settings), so there the test
cannot be skipped; a bare `pytest` on a machine without them skips it and says why.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.e2e.processes import free_port

ROOT = Path(__file__).parents[2]
SHOTS = ROOT / "test-artifacts" / "dashboard"
TABS = ("overview", "drift", "retraining", "lineage", "traffic")
SCRIPT = ROOT / "dashboard" / "e2e" / "dashboard.e2e.mjs"
STATIC = ROOT / "src" / "driftloop" / "serving" / "static" / "index.html"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    if shutil.which("node") is None:
        return "no node on PATH"
    if not (ROOT / "dashboard" / "node_modules" / "playwright-core").is_dir():
        return "dashboard dependencies are not installed (cd dashboard && npm ci)"
    if not STATIC.is_file():
        return "the dashboard is not built (cd dashboard && npm run build)"
    return None


@pytest.mark.slow
def test_the_dashboard_follows_the_loop_live(tmp_path: Path) -> None:
    missing = _missing()
    if missing:
        if os.environ.get("DASHBOARD_E2E_REQUIRED"):
            pytest.fail(missing)
        pytest.skip(missing)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    exe = Path(sys.executable).with_name("driftloop")
    log = tmp_path / "demo.log"
    # Until the loop promotes, however long a busy machine takes, then the dashboard stays
    # up for the checks after the promotion.
    with log.open("wb") as sink:
        demo = subprocess.Popen(
            [str(exe), "demo", "--headless", "--until", "promoted", "--keep-serving",
             "--speed", "2", "--port", str(port), "--data-dir", str(tmp_path)],
            stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).json()["status"] == "ok":
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                time.sleep(0.2)
            assert demo.poll() is None, log.read_text()
        shutil.rmtree(SHOTS, ignore_errors=True)
        proc = subprocess.run(
            ["node", str(SCRIPT), "--url", url, "--screenshots", str(SHOTS), "--timeout", "240"],
            capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "CHROMIUM": CHROMIUM})
        (SHOTS / "checks.jsonl").write_text(proc.stdout)  # what each check saw, with the shots
        checks = [json.loads(line)["check"] for line in proc.stdout.splitlines()
                  if line.startswith("{")]
        assert proc.returncode == 0, (proc.stdout + proc.stderr + log.read_text()[-3000:])
        assert {"connected", "drift_points", "alarm", "after_alarm_reload", "training_cycle",
                "promotion", "after_promotion_reload", "lineage", "traffic"} <= set(checks), \
            proc.stdout
        shots = [SHOTS / "live.png"] + [SHOTS / f"{stage}-{tab}.png" for tab in TABS
                                        for stage in ("after_alarm", "after_promotion")]
        for shot in shots:
            assert shot.is_file() and shot.stat().st_size > 10_000, shot
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()
