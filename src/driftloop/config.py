"""Settings: defaults, then ``driftloop.toml``, then ``DRIFTLOOP_*`` environment variables.

Every field can be set in the ``[driftloop]`` table of the TOML file or as
``DRIFTLOOP_<FIELD>`` (upper case); the environment wins. A bad value names the field and
where it came from.
"""

from __future__ import annotations

import dataclasses
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

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url",
                               f"sqlite:///{Path(self.data_dir) / 'driftloop.db'}")
        positive = ("max_batch", "max_queue", "max_body_bytes", "max_batch_rows",
                    "observe_queue", "drift_window", "drift_panes")
        for name in positive:
            if getattr(self, name) < 1:
                raise SettingsError(f"{name}: must be >= 1, got {getattr(self, name)!r}")
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
