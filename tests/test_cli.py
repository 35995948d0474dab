"""The `driftloop` command: drift-report on real files, its formats and its errors."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import ks_2samp
from tests.served_model import cancer_frame, push

from driftloop import db
from driftloop.cli import EXIT_DRIFT, main
from driftloop.config import Settings
from driftloop.examples import breast_cancer_shift
from driftloop.registry import ModelRegistry
from driftloop.serving import heartbeat


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("example")
    result = CliRunner().invoke(main, ["example-data", str(folder)])
    assert result.exit_code == 0, result.output
    return folder / "reference.parquet", folder / "current.parquet"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_json_report_matches_scipy_on_the_files(files: tuple[Path, Path]) -> None:
    ref, cur = files
    code, out = run("drift-report", str(ref), str(cur), "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert report["drifted"] and report["window_size"] == 1000
    reference, current = breast_cancer_shift(0)
    for name in ("mean radius", "worst area", "texture error"):
        expected = ks_2samp(reference[name], current[name], method="asymp")
        feature = report["features"][name]
        assert feature["ks_statistic"] == pytest.approx(expected.statistic, abs=1e-12)
        assert feature["ks_pvalue"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert report["features"]["size"]["kind"] == "categorical"


def test_text_report_lists_features_and_verdict(files: tuple[Path, Path]) -> None:
    code, out = run("drift-report", *map(str, files))
    assert code == 0
    assert "worst perimeter" in out and "Dataset drift:" in out


def test_html_report_is_one_self_contained_page(files: tuple[Path, Path], tmp_path: Path) -> None:
    target = tmp_path / "out" / "drift.html"
    code, _ = run("drift-report", *map(str, files), "-o", str(target))
    assert code == 0
    page = target.read_text()
    assert page.startswith("<!doctype html>") and "<script" not in page
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert page.count("<svg") == 31  # one chart per column: 30 numeric features and "size"
    assert "Dataset drift" in page
    assert not list(target.parent.glob(".*.tmp"))


def test_fail_on_drift_sets_the_exit_status(files: tuple[Path, Path]) -> None:
    ref, _ = files
    assert run("drift-report", str(ref), str(ref), "--fail-on-drift")[0] == 0
    assert run("drift-report", *map(str, files), "--fail-on-drift")[0] == EXIT_DRIFT == 3


def test_csv_files_options_and_output_column(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"id": range(500), "x": rng.normal(size=500),
                        "code": rng.integers(0, 3, 500), "score": rng.random(500)})
    cur = ref.assign(score=ref["score"] + 0.5)
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_csv(tmp_path / "cur.csv", index=False)
    code, out = run("drift-report", str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv"),
                    "--format", "json", "--ignore", "id", "--categorical", "code",
                    "--output-column", "score")
    assert code == 0, out
    report = json.loads(out)
    assert set(report["features"]) == {"x", "code"}
    assert report["features"]["code"]["kind"] == "categorical"
    assert report["output"]["drifted"] and report["drifted"]


@pytest.mark.parametrize(("args", "status", "message"), [
    (["missing.parquet", "{cur}"], 1, "no such file"),
    (["{ref}", "{cur}", "--categorical", "nope"], 1, "'nope'"),
    (["{ref}", "{cur}", "--ignore", "nope"], 1, "'nope'"),
    (["{ref}", "{cur}", "--alpha", "2"], 2, "--alpha"),
    (["{ref}", "{txt}"], 1, "unsupported file type .txt"),
    (["{ref}", "{cur}", "-o", "{pdf}"], 2, "cannot write a .pdf file"),
])
def test_bad_input_gets_a_clear_error(
    files: tuple[Path, Path], tmp_path: Path, args: list[str], status: int, message: str
) -> None:
    (tmp_path / "x.txt").write_text("hello")
    values = {"ref": str(files[0]), "cur": str(files[1]), "txt": str(tmp_path / "x.txt"),
              "pdf": str(tmp_path / "report.pdf")}
    code, out = run("drift-report", *(a.format(**values) for a in args))
    assert code == status
    assert "Error:" in out and message in out
    assert "Traceback" not in out
    assert not (tmp_path / "report.pdf").exists()


def test_an_explicit_format_writes_any_file_name(files: tuple[Path, Path],
                                                 tmp_path: Path) -> None:
    code, _ = run("drift-report", *map(str, files), "-o", str(tmp_path / "r.out"),
                  "--format", "json")
    assert code == 0 and json.loads((tmp_path / "r.out").read_text())["drifted"]


def test_installed_command_runs_with_complete_help() -> None:
    exe = Path(sys.executable).with_name("driftloop")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True,
                         env={**os.environ, "COLUMNS": "120"}).stdout
    for command in ("drift-report", "example-data"):
        assert command in out


def test_registry_commands_tell_the_truth_about_the_server(served_settings: Settings) -> None:
    common = ["--data-dir", str(served_settings.data_dir), "--model", "cancer"]
    code, out = run("models", *common)
    assert code == 0 and "champion" in out
    code, out = run("status", *common)
    assert code == 0 and "champion   v1" in out and "promote v1" in out
    assert "not running (no server has ever served this model here)" in out
    assert "IDLE" not in out  # no loop runs without a server
    code, out = run("retrain", "--reason", "fresh labels", *common)
    assert code == 1 and "no `driftloop serve` is running for cancer" in out
    code, out = run("retrain", "--reason", "fresh labels", "--queue", *common)
    assert code == 0 and "queued run r-" in out
    code, out = run("retrain", "--queue", *common)
    assert code == 0 and "joined the running run" in out
    code, out = run("status", *common)
    assert "not running (no server); its last run was SNAPSHOTTING" in out
    assert "manual: fresh labels" in out
    code, out = run("promote", "1", *common)
    assert code == 1 and "not a candidate" in out
    code, out = run("rollback", *common)
    assert code == 1 and "no previous champion" in out
    code, out = run("models", "--data-dir", str(served_settings.data_dir), "--model", "nope")
    assert code == 1 and "no model named 'nope'" in out and "cancer" in out


def test_status_follows_the_heartbeat_of_a_server(served_settings: Settings) -> None:
    common = ["--data-dir", str(served_settings.data_dir), "--model", "cancer", "--json"]
    engine = ModelRegistry.open(served_settings.database_url,
                                artifacts=served_settings.data_dir).engine
    started = datetime.now(UTC)
    heartbeat.beat(engine, "cancer", "host:1:a", started_at=started, drives_loop=True)
    status = json.loads(run("status", *common)[1])
    assert status["server"]["running"] and status["loop"] == "IDLE"
    assert 0 <= status["server"]["last_beat_age_s"] < heartbeat.STALE_AFTER.total_seconds()
    heartbeat.stopped(engine, "host:1:a")
    status = json.loads(run("status", *common)[1])
    assert not status["server"]["running"] and status["server"]["stopped_cleanly"]
    assert status["loop"] == "stopped"
    with db.transaction(engine) as conn:  # a killed server: its beats just stop
        conn.execute(db.server_heartbeats.update().values(
            stopped_at=None, beat_at=started - timedelta(minutes=5)))
    status = json.loads(run("status", *common)[1])
    assert not status["server"]["running"] and status["server"]["last_beat_age_s"] >= 300
    code, out = run("status", *common[:-1])
    assert code == 0 and re.search(r"gone \(no heartbeat\), last heartbeat 5\.\d min ago", out)
    engine.dispose()


def test_a_rollback_can_be_undone(served_settings: Settings) -> None:
    registry = ModelRegistry.open(served_settings.database_url,
                                  artifacts=served_settings.data_dir)
    champion = registry.get_champion("cancer")
    assert champion is not None and champion.dataset_id and champion.dataset_sha256
    two = push(registry, cancer_frame(), champion.dataset_id, champion.dataset_sha256, c=0.5)
    common = ["--data-dir", str(served_settings.data_dir), "--model", "cancer"]
    assert run("promote", str(two), *common)[0] == 0
    code, out = run("rollback", "--reason", "v2 looks off", *common)
    assert code == 0 and "back on v1" in out and f"driftloop promote {two} --reason" in out
    code, out = run("promote", str(two), *common)
    assert code == 2 and "needs --reason" in out
    code, out = run("promote", str(two), "--reason", "false alarm", *common)
    assert code == 0 and f"v{two} is now the champion" in out
    assert registry.get_champion("cancer").version == two  # type: ignore[union-attr]
    entry = registry.audit("cancer", limit=1)[0]
    assert (entry.action, entry.version, entry.reason) == ("restore", two, "false alarm")
    models = json.loads(run("models", *common, "--json")[1])
    assert [v["status"] for v in models["versions"]] == ["archived", "champion"]
    registry.engine.dispose()


@pytest.mark.parametrize("command", ["models", "status", "promote 1", "rollback", "retrain"])
def test_read_only_commands_create_no_database(tmp_path: Path, command: str) -> None:
    typo = tmp_path / "typo"
    code, out = run(*command.split(), "--data-dir", str(typo))
    assert code == 1 and f"no driftloop database at {typo / 'driftloop.db'}" in out
    assert not typo.exists()


def _loaded_after(code: str, modules: Sequence[str], *args: str) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported once it has run ``code``."""
    probe = f"{code}\nimport sys\nprint(sorted(set({sorted(modules)!r}) & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                         check=True).stdout
    return ast.literal_eval(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_registry_imports_no_data_stack() -> None:
    """The CLI's registry commands and each server worker import it early."""
    assert _loaded_after("import driftloop.registry",
                         ("scipy", "sklearn", "pandas", "numpy", "pyarrow")) == []


def test_reading_the_registry_loads_no_model_library(tmp_path: Path) -> None:
    """`driftloop status` and `models` only read rows: opening the registry for them must
    not import every adapter's library (scikit-learn and skops alone took 2.5 s of a 7 s
    `status` on a busy machine)."""
    code = ("from driftloop.config import Settings\n"
            "from driftloop.registry import ModelRegistry\n"
            f"registry = ModelRegistry.for_settings(Settings(data_dir={str(tmp_path)!r}))\n"
            "registry.get_champion('any'); registry.audit('any', limit=5)")
    assert _loaded_after(code, ("sklearn", "skops", "pandas", "xgboost", "lightgbm")) == []


def test_help_imports_nothing_heavy() -> None:
    """Every `serve` worker re-imports the CLI before it answers its health check."""
    code = ("from driftloop.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    assert _loaded_after(code, ("scipy", "sklearn", "pandas", "numpy", "sqlalchemy",
                                "fastapi")) == []


def test_a_parquet_report_does_not_import_pandas(files: tuple[Path, Path]) -> None:
    """A drift report of Parquet files needs nothing from pandas, whose import costs
    ~0.35 s of CPU (pyarrow's read_table and to_numpy would each pull it in)."""
    code = ("import sys\nfrom driftloop.tables import batch_report_files\n"
            "assert batch_report_files(sys.argv[1], sys.argv[2]).drifted")
    assert _loaded_after(code, ("pandas", "pyarrow.dataset"), *map(str, files)) == []
