"""The `driftloop` command: drift-report on real files, its formats and its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import ks_2samp

from driftloop.cli import main
from driftloop.config import Settings
from driftloop.examples import breast_cancer_shift


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
    assert run("drift-report", *map(str, files), "--fail-on-drift")[0] == 1


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


@pytest.mark.parametrize(("args", "message"), [
    (["missing.parquet", "{cur}"], "no such file"),
    (["{ref}", "{cur}", "--categorical", "nope"], "'nope'"),
    (["{ref}", "{cur}", "--ignore", "nope"], "'nope'"),
    (["{ref}", "{cur}", "--alpha", "2"], "DriftPolicy.alpha"),
    (["{ref}", "{txt}"], "unsupported file type .txt"),
])
def test_bad_input_gets_a_clear_error(
    files: tuple[Path, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "x.txt").write_text("hello")
    values = {"ref": str(files[0]), "cur": str(files[1]), "txt": str(tmp_path / "x.txt")}
    code, out = run("drift-report", *(a.format(**values) for a in args))
    assert code == 1
    assert "Error:" in out and message in out
    assert "Traceback" not in out


def test_installed_command_runs_with_complete_help() -> None:
    exe = Path(sys.executable).with_name("driftloop")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True,
                         env={**os.environ, "COLUMNS": "120"}).stdout
    for command in ("drift-report", "example-data"):
        assert command in out


def test_registry_commands(served_settings: Settings) -> None:
    common = ["--data-dir", str(served_settings.data_dir), "--model", "cancer"]
    code, out = run("models", *common)
    assert code == 0 and "champion" in out
    code, out = run("status", *common)
    assert code == 0 and "champion   v1" in out and "promote v1" in out
    assert "loop       IDLE" in out
    code, out = run("retrain", "--reason", "fresh labels", *common)
    assert code == 0 and "started run r-" in out
    code, out = run("retrain", *common)
    assert code == 0 and "joined the running run" in out
    code, out = run("status", *common)
    assert "loop       SNAPSHOTTING (run r-" in out and "manual: fresh labels" in out
    code, out = run("promote", "1", *common)
    assert code == 1 and "not a candidate" in out
    code, out = run("rollback", *common)
    assert code == 1 and "no previous champion" in out
    code, out = run("models", "--data-dir", str(served_settings.data_dir), "--model", "nope")
    assert code == 1 and "no model named 'nope'" in out and "cancer" in out
