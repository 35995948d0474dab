"""Settings: defaults, then ``driftloop.toml``, then ``DRIFTLOOP_*`` environment variables,
then command-line options, each source winning over the one before.

:class:`Settings` is a frozen pydantic model, so constructing one in code (as tests and the
demo do) reads no file and no environment; :meth:`Settings.load` is the one place that does,
through pydantic-settings. Every field can be set in the ``[driftloop]`` table of the TOML
file or as ``DRIFTLOOP_<FIELD>`` (upper case). Mapping fields (``trainer_options``) take JSON
or nested variables (``DRIFTLOOP_TRAINER_OPTIONS__ESTIMATOR=...``); list fields take JSON or
comma-separated text.

The ``DRIFTLOOP_`` prefix is shared with variables that are not settings (the Gemini
stand-in's ``DRIFTLOOP_GEMINI_BASE_URL``, the tests' ``DRIFTLOOP_TEST_POSTGRES``): an unknown
variable is warned about once and ignored, never fatal. An unknown key in a TOML file the
user wrote is an error, since there it can only be a typo. A bad value names the field and
where it came from.

>>> Settings(drift_window=1000).drift_window
1000
>>> Settings(drift_window=0)
Traceback (most recent call last):
...
driftloop.config.SettingsError: drift_window: Input should be greater than or equal to 1 (got 0)
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from driftloop.errors import ConfigError

ENV_PREFIX = "DRIFTLOOP_"
#: How ``driftloop serve`` hands its resolved settings to each worker process: one JSON
#: blob, so a worker builds exactly what the parent validated (no per-field re-parsing).
RESOLVED_ENV = "DRIFTLOOP_RESOLVED_SETTINGS"
#: ``DRIFTLOOP_*`` variables that are not settings but are known to the project.
NOT_SETTINGS = frozenset({RESOLVED_ENV, "DRIFTLOOP_GEMINI_BASE_URL", "DRIFTLOOP_TEST_POSTGRES",
                          "DRIFTLOOP_CODE_REVISION", "DRIFTLOOP_CONFIG",
                          "DRIFTLOOP_BUILD_WITHOUT_DASHBOARD"})
DEFAULT_CONFIG = Path("driftloop.toml")

logger = logging.getLogger(__name__)
_warned: set[str] = set()

PositiveInt = Annotated[int, Field(ge=1)]
#: Fields that take ``a,b`` (or a JSON list) from an environment variable.
LIST_FIELDS = ("ignore_columns", "adapters", "allowed_origins", "trusted_types")
Share = Annotated[float, Field(ge=0.0, lt=1.0)]


class SettingsError(ConfigError, ValueError):
    """A setting has a bad value; the message names it and its source."""


def _split_list(value: Any) -> Any:
    """``a,b`` or a JSON list from an environment variable; a list from TOML or code."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return tuple(json.loads(text))
        return tuple(part.strip() for part in text.split(",") if part.strip())
    return value


class Settings(BaseModel):
    """Everything the server and the loop are configured with.

    The field descriptions are the configuration reference (``docs/configuration.md`` is
    generated from this model's JSON schema)."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    model_name: str = Field("model", description="The registry name of the served model.")
    data_dir: Path = Field(Path("artifacts"),
                           description="Artifacts, dataset snapshots and the SQLite database.")
    artifacts_url: str = Field("", description="s3://bucket/prefix: models and dataset "
                               "snapshots in an S3-compatible object store (credentials from "
                               "the standard AWS environment); data_dir is then each "
                               "replica's cache. Empty: they live in data_dir.")
    database_url: str = Field("", description="sqlite:///… or postgresql+psycopg://… "
                              "(default: SQLite in data_dir).")
    reference: Path | None = Field(None, description="Training data used as the drift "
                                   "reference when the champion has no snapshot.")
    output_reference: Path | None = Field(None, description="Rows the champion was not fit "
                                          "on: the reference for drift in its outputs when "
                                          "it has no snapshot (with one, its holdout is used).")
    label_column: str = Field("label", description="The label column of the training data.")
    ignore_columns: Annotated[tuple[str, ...], NoDecode] = Field(
        ("request_id", "event_timestamp", "ts"),
        description="Columns of the training data that are not features.")
    adapters: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="The driftloop.adapters entry points (model formats) to use; "
        "empty: every installed one.")
    admin_token: str | None = Field(None, repr=False,
                                    description="Bearer token for the mutating endpoints.")
    admin_token_file: Path | None = Field(None, description="Read the admin token from this "
                                          "file (owner-readable only); preferred to "
                                          "admin_token, which shows in `ps` as an option.")
    insecure_no_admin_auth: bool = Field(False, description="Open the admin routes without a "
                                         "token (tests, demos on a private machine).")
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Cross-origin pages allowed to POST and open /ws (default: same "
        "origin only).")
    trusted_types: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Extra classes (never functions) a skops model file may contain.")
    threads: int | None = Field(None, ge=1, description=(
        "BLAS/OpenMP threads for training and for each server process's scoring. Default: "
        "half the CPUs this process may use (at least 1), since OpenMP threads that spin on "
        "a busy machine slow training by 10-40x."))
    # serving
    max_batch: PositiveInt = Field(64, description="Rows per model call.")
    max_wait_ms: float = Field(10.0, ge=0, description="The longest a batch waits for company "
                               "under load; it runs sooner once rows stop coming (a lull of "
                               "eight usual gaps between rows). Measured: "
                               "benchmarks/serve_bench.py.")
    max_queue: PositiveInt = Field(2048, description="Queued rows before 503.")
    max_body_bytes: PositiveInt = Field(1_000_000, description="Largest request body.")
    max_batch_rows: PositiveInt = Field(1000, description="Rows in one /predict/batch.")
    candidate_timeout: float = Field(2.0, gt=0, description="Seconds a mirrored candidate "
                                     "call may take.")
    traffic_mode: str = Field("off", description="off, shadow, canary or ab.")
    candidate_weight: float = Field(0.0, ge=0, le=1, description="Canary/A-B share.")
    shadow_fraction: float = Field(1.0, ge=0, le=1, description="Share of traffic mirrored "
                                   "to the candidate in shadow mode.")
    poll_interval: float = Field(0.5, gt=0, le=0.5, description="Seconds between registry "
                                 "polls (a hot swap reaches every worker within this).")
    max_queue_wait_ms: float | None = Field(500.0, gt=0, description="Admission: refuse "
                                            "rows that would wait longer than this in the "
                                            "queue (503); unset: by count only.")
    header_timeout: float = Field(10.0, gt=0, description="Seconds a client may take to send "
                                  "a request's headers (slow clients are cut off).")
    body_timeout: float = Field(30.0, gt=0, description="Seconds a client may pause while "
                                "sending a body (then 408).")
    workers_start_timeout: PositiveInt = Field(60, description=(
        "Seconds a server worker may take to start and to answer the supervisor's health "
        "check before it is restarted (a busy machine needs more than uvicorn's 5)."))
    # observation and drift
    observe_queue: PositiveInt = Field(20_000, description="Observations waiting for the "
                                       "detector; beyond it they are dropped and counted.")
    drift_window: PositiveInt = Field(5000, description="Events in the sliding window.")
    drift_panes: PositiveInt = Field(2, description="Panes the window slides by.")
    pane_seconds: float | None = Field(None, gt=0, description="Time-based panes (needed "
                                       "with several workers).")
    log_predictions: bool = Field(True, description="Keep every prediction for labels.")
    log_durability: Literal["buffered", "journal", "fsync"] = Field(
        "journal", description="buffered: a crash may lose ~1 s of answered predictions; "
        "journal: an acknowledged prediction survives SIGKILL (a local append-only file, "
        "replayed on start); fsync: it also survives a power cut (group commit).")
    retention_days: float | None = Field(30.0, gt=0, description="Prediction log rows older "
                                         "than this are pruned; unset: kept.")
    retention_rows: int | None = Field(5_000_000, ge=1, description="And beyond the newest "
                                       "this many; unset: no row limit.")
    retention_interval: float = Field(600.0, gt=0, description="Seconds between two prunes.")
    # the retraining loop: RetrainOrchestrator and ShadowGate
    retrain_on_drift: bool = Field(True, description="A drift alarm starts a run.")
    trainer: str = Field("driftloop.training.sklearn:SklearnTrainer",
                         description="Import path of the Trainer class.")
    trainer_options: dict[str, Any] = Field(default_factory=dict,
                                            description="The trainer's keyword arguments.")
    train_timeout: float = Field(600.0, gt=0, description="Seconds; the trainer's process "
                                 "is killed after it.")
    train_attempts: PositiveInt = Field(2, description="Tries of the training step (a "
                                        "restart mid-training is one).")
    snapshot_rows: PositiveInt = Field(20_000, description="The newest labelled rows since "
                                       "the champion was made.")
    min_train_rows: PositiveInt = Field(200, description="Wait (up to step_timeout) until "
                                        "this many are labelled.")
    parent_sample: Share = Field(0.0, description="Share of the parent's training rows "
                                 "mixed into a snapshot.")
    holdout_fraction: float = Field(0.2, gt=0, lt=1, description="Share of a snapshot held "
                                    "out for evaluation.")
    gate_metric: str = Field("accuracy", description="The metric the shadow gate tests.")
    min_delta: float = Field(0.0, description="The improvement the candidate must show.")
    gate_alpha: Share = Field(0.05, description="The gate's error rate.")
    min_samples: PositiveInt = Field(200, description="Labelled shadow pairs before any "
                                     "decision.")
    label_horizon: float = Field(0.0, ge=0, allow_inf_nan=False, description=(
        "Seconds a shadowed request waits before the gate pairs it with its label (for "
        "labels whose delay depends on the outcome)."))
    shadow_max_duration: float = Field(3600.0, gt=0, description="Then the candidate is "
                                       "rejected as inconclusive.")
    max_error_rate_ratio: float = Field(1.5, gt=0, description="Candidate/champion error "
                                        "rate allowed.")
    max_latency_ratio: float = Field(1.5, gt=0, description="Candidate/champion latency "
                                     "allowed.")
    rollback_delta: float = Field(0.05, ge=0, description="Post-promotion watch: roll back "
                                  "if worse by more.")
    rollback_alpha: float = Field(0.05, gt=0, lt=1, description="Error level of the "
                                  "post-promotion rollback watch.")
    watch_samples: PositiveInt = Field(200, description="Labelled answers the watch needs.")
    watch_duration: float = Field(1800.0, gt=0, description="Seconds the watch lasts.")
    cooldown: float = Field(300.0, ge=0, description="After a run, drift and schedule "
                            "triggers are ignored for this many seconds.")
    retrain_interval: float | None = Field(None, gt=0, description="Seconds between "
                                           "scheduled runs; unset: off.")
    step_timeout: float = Field(1800.0, gt=0, description="The longest any other step may "
                                "take.")

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _settings_error(exc, values) from None

    def model_post_init(self, context: Any, /) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url",
                               f"sqlite:///{Path(self.data_dir) / 'driftloop.db'}")

    _split = field_validator(*LIST_FIELDS, mode="before")(_split_list)

    @property
    def resolved_threads(self) -> int:
        """``threads``, or half the CPUs this process may use (at least 1)."""
        return self.threads or max(1, available_cpus() // 2)

    def to_blob(self) -> str:
        """The resolved settings as one JSON text (what ``serve`` hands its workers)."""
        return self.model_dump_json()

    @classmethod
    def from_blob(cls, blob: str) -> Settings:
        return cls.model_validate_json(blob)

    @classmethod
    def load(cls, path: Path | None = None, env: Mapping[str, str] | None = None,
             **overrides: Any) -> Settings:
        """Defaults ← ``path`` (default ``$DRIFTLOOP_CONFIG`` or ``./driftloop.toml`` if
        present) ← environment ← ``overrides`` (command-line options; ``None`` means not
        given). A worker started by ``driftloop serve`` takes its parent's resolved blob."""
        environ = os.environ if env is None else env
        if (blob := environ.get(RESOLVED_ENV)) and not overrides and path is None:
            return cls.from_blob(blob)
        explicit = path or (Path(environ["DRIFTLOOP_CONFIG"])
                            if environ.get("DRIFTLOOP_CONFIG") else None)
        toml_path = explicit or DEFAULT_CONFIG
        if explicit is not None and not explicit.is_file():
            raise SettingsError(f"config: {explicit} does not exist")
        table = _read_table(toml_path) if toml_path.is_file() else {}
        fields = set(cls.model_fields)
        for key in table:
            if key not in fields:
                raise SettingsError(f"{key}: not a driftloop setting (in {toml_path})"
                                    f"{_did_you_mean(key, fields)}")
        env_values = {k: v for k, v in environ.items() if k.startswith(ENV_PREFIX)}
        for key in sorted(env_values):
            name = key.removeprefix(ENV_PREFIX).lower().split("__", 1)[0]
            if name not in fields and key not in NOT_SETTINGS and key not in _warned:
                _warned.add(key)
                logger.warning("ignoring $%s: not a driftloop setting%s", key,
                               _did_you_mean(name, fields))
        given = {k: v for k, v in overrides.items() if v is not None}
        try:
            return cls.model_validate(_read_sources(table, env_values, given))
        except ValidationError as exc:
            raise _settings_error(exc, given, table=table, toml_path=toml_path,
                                  environ=env_values) from None


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; ``os.cpu_count`` elsewhere)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _read_table(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config: {path} is not valid TOML: {exc}") from None
    table = document.get("driftloop", {})
    if not isinstance(table, dict):
        raise SettingsError(f"config: [driftloop] in {path} must be a table")
    return table


def _did_you_mean(name: str, fields: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(fields), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _settings_error(exc: ValidationError, given: Mapping[str, Any], *,
                    table: Mapping[str, Any] | None = None, toml_path: Path | None = None,
                    environ: Mapping[str, str] | None = None) -> SettingsError:
    """The first error, naming the field, the bad value and where it came from."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else "settings"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "not a driftloop setting"
    env_key = f"{ENV_PREFIX}{field.upper()}"
    if field in given:
        source = f"got {given[field]!r}"
    elif environ and env_key in environ:
        source = f"got {environ[env_key]!r} from ${env_key}"
    elif table and field in table:
        source = f"got {table[field]!r} from {toml_path}"
    else:
        source = ""
    return SettingsError(f"{field}: {message}" + (f" ({source})" if source else ""))


class _TomlTable(PydanticBaseSettingsSource):
    """The ``[driftloop]`` table of the TOML file, already read."""

    def __init__(self, settings_cls: type[BaseSettings], table: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self.table = table

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.table.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.table)


def _read_sources(table: Mapping[str, Any], environ: Mapping[str, str],
                  given: Mapping[str, Any]) -> dict[str, Any]:
    """pydantic-settings reads and parses the sources: the command line (``given``) over
    the environment over the TOML table. The result is validated again as :class:`Settings`
    (so a value is checked the same way whatever its source)."""

    class Sources(BaseSettings):
        model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__",
                                          extra="ignore", case_sensitive=False)

        @classmethod
        def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                       init_settings: PydanticBaseSettingsSource,
                                       env_settings: PydanticBaseSettingsSource,
                                       dotenv_settings: PydanticBaseSettingsSource,
                                       file_secret_settings: PydanticBaseSettingsSource,
                                       ) -> tuple[PydanticBaseSettingsSource, ...]:
            env = EnvSettingsSource(settings_cls, env_prefix=ENV_PREFIX,
                                    env_nested_delimiter="__", case_sensitive=False)
            env.env_vars = {k.lower(): v for k, v in environ.items() if v != ""}  # unset
            return init_settings, env, _TomlTable(settings_cls, table)

    fields: dict[str, Any] = {name: (info.annotation, info)
                              for name, info in Settings.model_fields.items()}
    model = create_model("Sources", __base__=Sources,
                         __validators__={"split": field_validator(
                             *LIST_FIELDS, mode="before")(_split_list)}, **fields)
    return model(**given).model_dump()
