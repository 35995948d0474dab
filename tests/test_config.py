"""Settings: sources in order, values parsed by their type, errors that name the field, and
``DRIFTLOOP_*`` variables that are not settings never stopping a command."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from driftloop import config
from driftloop.config import RESOLVED_ENV, Settings, SettingsError


@pytest.fixture(autouse=True)
def _no_toml_in_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config, "_warned", set())


def test_documented_variables_that_are_not_settings_do_not_stop_the_cli(
        tmp_path: Path) -> None:
    """Both were documented (the Gemini stand-in, the tests) and stopped every command."""
    env = {"PATH": "/usr/bin:/bin", "DRIFTLOOP_GEMINI_BASE_URL": "http://127.0.0.1:9",
           "DRIFTLOOP_TEST_POSTGRES": "postgresql://x", "DRIFTLOOP_STRAY": "1"}
    result = subprocess.run([sys.executable, "-m", "driftloop", "status", "--data-dir",
                             str(tmp_path)], capture_output=True, text=True, env=env, check=False)
    assert "GEMINI" not in result.stderr and "TEST_POSTGRES" not in result.stderr
    assert result.stderr.count("ignoring $DRIFTLOOP_STRAY: not a driftloop setting") == 1
    assert result.returncode == 1 and "no driftloop database" in result.stderr  # it ran


def test_an_unknown_variable_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    env = {"DRIFTLOOP_DRIFT_WINDOWS": "7"}
    with caplog.at_level(logging.WARNING, logger="driftloop.config"):
        first, second = Settings.load(env=env), Settings.load(env=env)
    assert first.drift_window == second.drift_window == 5000
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["ignoring $DRIFTLOOP_DRIFT_WINDOWS: not a driftloop setting "
                        "(did you mean drift_window?)"]


@pytest.mark.parametrize(("env", "field", "expected"), [
    ({"DRIFTLOOP_IGNORE_COLUMNS": "id, ts"}, "ignore_columns", ("id", "ts")),
    ({"DRIFTLOOP_IGNORE_COLUMNS": '["a,b", "c"]'}, "ignore_columns", ("a,b", "c")),
    ({"DRIFTLOOP_PANE_SECONDS": "2.5"}, "pane_seconds", 2.5),
    ({"DRIFTLOOP_PANE_SECONDS": ""}, "pane_seconds", None),
    ({"DRIFTLOOP_THREADS": "3"}, "threads", 3),
    ({"DRIFTLOOP_LOG_PREDICTIONS": "false"}, "log_predictions", False),
    ({"DRIFTLOOP_REFERENCE": "train.csv"}, "reference", Path("train.csv")),
    ({"DRIFTLOOP_TRAINER_OPTIONS": '{"estimator": "x", "n": 2}'}, "trainer_options",
     {"estimator": "x", "n": 2}),
    ({"DRIFTLOOP_TRAINER_OPTIONS__ESTIMATOR": "y"}, "trainer_options", {"estimator": "y"}),
])
def test_environment_values_are_parsed_by_their_type(env: dict[str, str], field: str,
                                                     expected: Any) -> None:
    assert getattr(Settings.load(env=env), field) == expected


@pytest.mark.parametrize(("env", "message"), [
    ({"DRIFTLOOP_DRIFT_WINDOW": "0"},
     "drift_window: Input should be greater than or equal to 1 (got '0' from "
     "$DRIFTLOOP_DRIFT_WINDOW)"),
    ({"DRIFTLOOP_THREADS": "two"}, "threads: Input should be a valid integer"),
    ({"DRIFTLOOP_GATE_ALPHA": "1.5"}, "gate_alpha: Input should be less than 1"),
    ({"DRIFTLOOP_TRAINER_OPTIONS": "[1]"}, "trainer_options: Input should be a valid dict"),
])
def test_a_bad_value_names_the_field_and_its_source(env: dict[str, str],
                                                    message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.load(env=env)
    assert str(caught.value).startswith(message)


def test_sources_in_order_file_then_environment_then_options(tmp_path: Path) -> None:
    path = tmp_path / "custom.toml"
    path.write_text('[driftloop]\ndrift_window = 700\nmodel_name = "churn"\n'
                    'ignore_columns = ["id"]\nmax_batch = 8\n')
    settings = Settings.load(path, env={"DRIFTLOOP_DRIFT_WINDOW": "800"}, max_batch=None,
                             model_name="fraud")
    assert (settings.drift_window, settings.model_name, settings.ignore_columns,
            settings.max_batch) == (800, "fraud", ("id",), 8)
    assert Settings.load(env={"DRIFTLOOP_CONFIG": str(path)}).drift_window == 700
    (tmp_path / "driftloop.toml").write_text("[driftloop]\ndrift_window = 900\n")
    assert Settings.load(env={}).drift_window == 900  # ./driftloop.toml by default


@pytest.mark.parametrize(("text", "message"), [
    ("[driftloop]\ndrift_windw = 1\n", "drift_windw: not a driftloop setting (in "),
    ("[driftloop]\ndrift_window = 'many'\n", "drift_window: Input should be a valid integer"),
    ("[driftloop\n", "config: "),
])
def test_a_bad_file_names_what_to_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SettingsError, match="^" + message.replace("(", r"\(")):
        Settings.load(path, env={})


def test_a_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"config: .*nope\.toml does not exist"):
        Settings.load(tmp_path / "nope.toml", env={})


def test_workers_receive_the_resolved_settings_as_one_blob() -> None:
    parent = Settings.load(env={"DRIFTLOOP_DRIFT_WINDOW": "300"}, model_name="churn",
                           admin_token="t0ken")
    worker = Settings.load(env={RESOLVED_ENV: parent.to_blob(),
                                "DRIFTLOOP_DRIFT_WINDOW": "1"})
    assert worker == parent and worker.admin_token == "t0ken"


def test_code_builds_settings_without_reading_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLOOP_DRIFT_WINDOW", "7")
    assert Settings().drift_window == 5000
    assert Settings(data_dir=Path("x")).database_url == "sqlite:///x/driftloop.db"
    assert "t0ken" not in repr(Settings(admin_token="t0ken"))


def test_threads_default_to_half_the_usable_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "available_cpus", lambda: 2)
    assert Settings().resolved_threads == 1
    monkeypatch.setattr(config, "available_cpus", lambda: 16)
    assert Settings().resolved_threads == 8
    assert Settings(threads=3).resolved_threads == 3
