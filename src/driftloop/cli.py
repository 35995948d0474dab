"""The ``driftloop`` command.

Start-up stays light: this module imports only click at load time, and each command imports
what it needs when it runs. ``driftloop --help`` must not import scipy, scikit-learn or
pandas, and every ``serve`` worker re-imports this module before it can answer its
supervisor (see :mod:`driftloop.serving.supervisor`).

Exit codes: 0 success, 1 an error (the message says what to fix), 2 a usage error, 3
``drift-report --fail-on-drift`` found drift, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

    from driftloop.config import Settings
    from driftloop.drift import DriftReport
    from driftloop.registry import ModelRegistry

FORMATS = ("text", "json", "html")
SUFFIX_FORMATS = {".html": "html", ".htm": "html", ".json": "json", ".txt": "text",
                  ".text": "text", ".log": "text"}
#: ``drift-report --fail-on-drift``: drift found (1 is an error, 2 a usage error).
EXIT_DRIFT = 3
EXIT_INTERRUPTED = 130
ARTIFACTS_META = "driftloop.artifacts_url"  # --artifacts, in click's context


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="driftloop")
def main() -> None:
    """driftloop: watch a served model's traffic for drift and retrain it.

    Run `driftloop COMMAND --help` for the options of each command. Settings come from
    defaults, then driftloop.toml (or --config / DRIFTLOOP_CONFIG), then DRIFTLOOP_*
    environment variables, then options.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="driftloop: %(message)s")


def _load_settings(config: Path | None, **overrides: Any) -> Settings:
    from driftloop.config import Settings, SettingsError  # noqa: PLC0415

    context = click.get_current_context(silent=True)
    if context is not None and ARTIFACTS_META in context.meta:
        overrides.setdefault("artifacts_url", context.meta[ARTIFACTS_META])
    try:
        return Settings.load(config, **overrides)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command("drift-report")
@click.argument("reference", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("current", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Report format. Default: from the -o file's extension (.html, .json, "
              ".txt), else text.")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to this file (atomically) instead of standard output.")
@click.option("--categorical", multiple=True, metavar="COLUMN",
              help="Treat COLUMN as categorical (repeatable). Default: inferred from the type.")
@click.option("--numeric", multiple=True, metavar="COLUMN",
              help="Treat COLUMN as numeric (repeatable).")
@click.option("--output-column", metavar="COLUMN",
              help="Monitor COLUMN as the model output rather than as a feature.")
@click.option("--ignore", multiple=True, metavar="COLUMN",
              help="Leave COLUMN out of the report (repeatable), e.g. an id or a timestamp.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Significance level across all columns [default: DriftPolicy's, 0.05].")
@click.option("--correction", type=click.Choice(["bonferroni", "bh"]),
              help="Multiple-testing correction: Bonferroni (family-wise) or "
              "Benjamini–Hochberg [default: DriftPolicy's].")
@click.option("--effect", type=click.Choice(["js", "psi", "ks"]),
              help="Effect size that must clear --effect-floor [default: DriftPolicy's].")
@click.option("--effect-floor", type=click.FloatRange(min=0),
              help="Smallest effect size that counts as drift [default: DriftPolicy's].")
@click.option("--psi-bins", type=click.IntRange(min=2), default=10, show_default=True,
              help="Reference-quantile bins for PSI and JS.")
@click.option("--fail-on-drift", is_flag=True,
              help=f"Exit with status {EXIT_DRIFT} when the dataset drifted (for CI "
              "pipelines; 1 stays an error, 2 a usage error).")
def drift_report(
    reference: Path,
    current: Path,
    fmt: str | None,
    out: Path | None,
    categorical: tuple[str, ...],
    numeric: tuple[str, ...],
    output_column: str | None,
    ignore: tuple[str, ...],
    alpha: float | None,
    correction: str | None,
    effect: str | None,
    effect_floor: float | None,
    psi_bins: int,
    fail_on_drift: bool,
) -> None:
    """Compare CURRENT against REFERENCE (Parquet or CSV files) with the streaming engine.

    Numeric columns get the exact two-sample KS test, categorical ones a chi-square test,
    and both PSI and Jensen–Shannon distance on reference-quantile bins. The whole CURRENT
    file is one window. Exit status: 0 (no drift, or drift without --fail-on-drift),
    1 error, 2 usage error, 3 drift with --fail-on-drift. Example:

        driftloop drift-report train.parquet today.csv -o drift.html
    """
    from driftloop.drift import DriftInputError, DriftPolicy  # noqa: PLC0415
    from driftloop.tables import TableReadError, batch_report_files  # noqa: PLC0415

    fmt = fmt or _format_from_suffix(out)
    chosen: dict[str, Any] = {"alpha": alpha, "correction": correction, "effect": effect,
                              "effect_floor": effect_floor}
    try:
        policy = DriftPolicy(**{k: v for k, v in chosen.items() if v is not None},
                             min_fill=0.0, min_count=1, consecutive=1)
        report = batch_report_files(reference, current, categorical=categorical,
                                    numeric=numeric, output_column=output_column,
                                    ignore=ignore, psi_bins=psi_bins, policy=policy)
    except (TableReadError, DriftInputError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if fmt == "text" and out is None:
        from rich.console import Console  # noqa: PLC0415

        from driftloop.reporting import render_terminal  # noqa: PLC0415

        # Piped output is not cut to 80 columns; a terminal keeps its own width.
        render_terminal(report, Console(width=None if sys.stdout.isatty() else 120))
    else:
        _emit(_render(report, fmt), out)
    if fail_on_drift and report.drifted:
        sys.exit(EXIT_DRIFT)


def _format_from_suffix(out: Path | None) -> str:
    """The format an output file's name asks for; a name that asks for none we write
    (``report.pdf``) is refused rather than quietly written as text."""
    if out is None:
        return "text"
    suffix = out.suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        known = ", ".join(sorted(SUFFIX_FORMATS))
        raise click.UsageError(f"-o {out}: cannot write a {suffix or 'suffix-less'} file; "
                               f"use one of {known}, or name the format with --format")
    return SUFFIX_FORMATS[suffix]


def _render(report: DriftReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2) + "\n"
    if fmt == "html":
        from driftloop.reporting import render_html  # noqa: PLC0415

        return render_html(report)
    from rich.console import Console  # noqa: PLC0415

    from driftloop.reporting import render_terminal  # noqa: PLC0415

    with open(os.devnull, "w") as devnull:
        console = Console(record=True, width=120, file=devnull)
        render_terminal(report, console)
    return console.export_text()


def _emit(text: str, out: Path | None) -> None:
    from driftloop.fsutil import write_atomic  # noqa: PLC0415

    if out is None:
        click.echo(text, nl=False)
        return
    write_atomic(out, text.encode())
    click.echo(f"Report written to {out}", err=True)


@main.command("example-data")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path),
                default=Path("artifacts/example"))
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
def example_data(directory: Path, seed: int) -> None:
    """Write reference.parquet and current.parquet to DIRECTORY (default artifacts/example).

    Real measurements from scikit-learn's bundled breast-cancer data, with a real shift:
    the reference is mostly benign cases, the current batch mostly malignant. Nothing is
    downloaded.
    """
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    from driftloop.examples import breast_cancer_shift  # noqa: PLC0415
    from driftloop.fsutil import write_atomic  # noqa: PLC0415

    reference, current = breast_cancer_shift(seed)
    for name, frame in (("reference", reference), ("current", current)):
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
        write_atomic(directory / f"{name}.parquet", sink.getvalue().to_pybytes())
    click.echo(f"Wrote {directory / 'reference.parquet'} ({len(reference)} rows) and "
               f"{directory / 'current.parquet'} ({len(current)} rows).")


# --------------------------------------------------------------------------- serving
def _artifacts_option(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """Check ``--artifacts`` now and hand it to :func:`_load_settings` (so it is part of
    the settings, and of what serve's workers receive)."""
    if value is not None:
        from driftloop.objectstore import UnsupportedLocationError, open_location  # noqa: PLC0415

        try:
            open_location(value)
        except UnsupportedLocationError as exc:
            raise click.BadParameter(str(exc)) from None
        ctx.meta[ARTIFACTS_META] = value


def _database_options(function: Any) -> Any:
    """--data-dir, --database-url and --config: where the database is."""
    return _with_options(function, _DATA_DIR, _DATABASE_URL, _CONFIG)


def _registry_options(function: Any) -> Any:
    """The database's options plus --model and --artifacts."""
    return _with_options(function, _DATA_DIR, _DATABASE_URL, _MODEL, _CONFIG, _ARTIFACTS)


def _with_options(function: Any, *options: Any) -> Any:
    for option in reversed(options):
        function = option(function)
    return function


_DATA_DIR = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                         default=None, help="Artifacts and the SQLite database "
                         "[default: ./artifacts, or DRIFTLOOP_DATA_DIR].")
_DATABASE_URL = click.option(
    "--database-url", default=None,
    help="sqlite:///… or postgresql+psycopg://… [default: SQLite in --data-dir].")
_MODEL = click.option("--model", "model_name", default=None,
                      help="Model name [default: model, or DRIFTLOOP_MODEL_NAME].")
_CONFIG = click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
                       default=None, help="A driftloop.toml settings file [default: "
                       "./driftloop.toml if present, or DRIFTLOOP_CONFIG].")
_ARTIFACTS = click.option(
    "--artifacts", default=None, expose_value=False, callback=_artifacts_option,
    help="s3://bucket/prefix: models and snapshots in an S3-compatible store, credentials "
    "from the AWS environment [default: --data-dir, or DRIFTLOOP_ARTIFACTS_URL].")


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port to bind.")
@click.option("--admin-token", envvar="DRIFTLOOP_ADMIN_TOKEN", default=None,
              help="Bearer token for the admin endpoints; prefer DRIFTLOOP_ADMIN_TOKEN or "
                   "--admin-token-file (a command line shows in `ps`) [default: one is "
                   "generated and kept in <data-dir>/admin-token].")
@click.option("--admin-token-file", type=click.Path(path_type=Path, dir_okay=False),
              envvar="DRIFTLOOP_ADMIN_TOKEN_FILE", default=None,
              help="Read the admin token from this owner-only file.")
@click.option("--insecure-no-admin-auth", is_flag=True, default=False,
              help="Leave the admin endpoints open to anyone who can reach the server.")
@_registry_options
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes; they follow the registry and share drift.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(host: str, port: int, data_dir: Path | None, admin_token: str | None,
          admin_token_file: Path | None, insecure_no_admin_auth: bool,
          model_name: str | None, database_url: str | None, config: Path | None,
          workers: int, log_level: str) -> None:
    """Serve the registry's champion over HTTP (POST /predict, /docs, /metrics, /api/...).

    Example:

        driftloop serve --model churn --port 8000 --workers 2 --admin-token "$TOKEN"
    """
    from driftloop.config import available_cpus  # noqa: PLC0415
    from driftloop.serving.auth import AdminAuthError, setup_admin_auth  # noqa: PLC0415

    settings = _load_settings(config, data_dir=data_dir, admin_token=admin_token,
                              admin_token_file=admin_token_file,
                              insecure_no_admin_auth=insecure_no_admin_auth or None,
                              model_name=model_name, database_url=database_url)
    _require_database(settings)
    _prepare_schema(settings)
    try:
        settings = setup_admin_auth(
            settings, echo=click.echo,
            from_command_line=click.get_current_context().get_parameter_source(
                "admin_token") == click.core.ParameterSource.COMMANDLINE)
    except AdminAuthError as exc:
        raise click.ClickException(str(exc)) from exc
    update: dict[str, Any] = {}
    if workers > 1 and settings.pane_seconds is None:
        update["pane_seconds"] = 10.0  # panes must align across workers
    if settings.threads is None:  # the CPUs are shared by the workers
        update["threads"] = max(1, available_cpus() // (2 * workers))
    settings = settings.model_copy(update=update)
    from driftloop.serving.supervisor import run_server  # noqa: PLC0415

    code = run_server(settings, host=host, port=port, workers=workers, log_level=log_level)
    if code:
        sys.exit(code)


# --------------------------------------------------------------------------- registry
def _require_database(settings: Settings) -> None:
    """Commands that read the registry never create one: a typo in --data-dir is an error,
    not an empty database."""
    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise click.ClickException(
            f"no driftloop database at {url.removeprefix('sqlite:///')}: check --data-dir "
            "(or --database-url), or create one with `driftloop models push` or "
            "`driftloop demo`")


@contextlib.contextmanager
def _refusing_newer_schema() -> Iterator[None]:
    """A database that a newer driftloop upgraded is refused in one line, not a traceback."""
    from driftloop.db.migrations import SchemaTooNewError  # noqa: PLC0415

    try:
        yield
    except SchemaTooNewError as exc:
        raise click.ClickException(str(exc)) from None


def _prepare_schema(settings: Settings) -> None:
    """Before any worker starts: upgrade an older schema once, or refuse a newer one."""
    from driftloop import db  # noqa: PLC0415

    with _refusing_newer_schema():
        db.create_engine(settings.database_url).dispose()


def _open_registry(data_dir: Path | None, database_url: str | None, model_name: str | None,
                   config: Path | None = None) -> tuple[ModelRegistry, str]:
    from driftloop.registry import ModelRegistry  # noqa: PLC0415

    settings = _load_settings(config, data_dir=data_dir, database_url=database_url,
                              model_name=model_name)
    _require_database(settings)
    with _refusing_newer_schema():
        registry = ModelRegistry.for_settings(settings)
    if settings.model_name not in registry.list_models():
        known = ", ".join(registry.list_models()) or "none"
        raise click.ClickException(f"no model named {settings.model_name!r} in "
                                   f"{settings.database_url} (models: {known}); pass --model")
    return registry, settings.model_name


def _console() -> Console:
    from rich.console import Console  # noqa: PLC0415

    return Console(highlight=False)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def _json_option(function: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON instead of a table.")(function)


@main.group("models", invoke_without_command=True)
@_registry_options
@_json_option
@click.pass_context
def models_command(ctx: click.Context, data_dir: Path | None, database_url: str | None,
                   model_name: str | None, config: Path | None, as_json: bool) -> None:
    """The model's versions (`models list`, the default) and adding your own (`models push`)."""
    if ctx.invoked_subcommand is None:
        _list_versions(data_dir, database_url, model_name, config, as_json)


@models_command.command("list")
@_registry_options
@_json_option
def models_list(data_dir: Path | None, database_url: str | None, model_name: str | None,
                config: Path | None, as_json: bool) -> None:
    """List every version of the model: status, age, metrics, checksum, training data."""
    _list_versions(data_dir, database_url, model_name, config, as_json)


def _list_versions(data_dir: Path | None, database_url: str | None, model_name: str | None,
                   config: Path | None, as_json: bool) -> None:
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    registry, name = _open_registry(data_dir, database_url, model_name, config)
    versions = registry.list_versions(name)
    if as_json:
        _echo_json({"model": name, "versions": [v.to_dict() for v in versions]})
        return
    table = Table(title=f"{name}: versions", title_justify="left", box=None, pad_edge=False)
    for header in ("version", "status", "created (UTC)", "metrics", "sha256", "dataset"):
        table.add_column(header)
    for v in versions:
        metrics = ", ".join(f"{k}={val:.4g}" if isinstance(val, float) else f"{k}={val}"
                            for k, val in sorted(v.metrics.items())[:4])
        style = {"champion": "bold green", "candidate": "yellow", "rejected": "red"}
        table.add_row(str(v.version), Text(v.status, style=style.get(v.status, "")),
                      v.created_at.strftime("%Y-%m-%d %H:%M:%S"), metrics or "—",
                      v.sha256[:12], v.dataset_id or "—")
    _console().print(table)


def _server_state(registry: ModelRegistry, name: str) -> dict[str, Any]:
    """Whether a server is running for ``name``, from the heartbeats (not from the loop
    state a stopped server left behind)."""
    from driftloop.serving.heartbeat import beats  # noqa: PLC0415

    known = beats(registry.engine, name)
    alive = [b for b in known if b.alive()]
    last = known[0] if known else None
    return {"running": bool(alive), "processes": len(alive),
            "drives_loop": any(b.drives_loop for b in alive),
            "last_beat_age_s": round(last.age(), 1) if last else None,
            "last_instance": last.instance if last else None,
            "stopped_cleanly": bool(last and last.stopped_at and not alive)}


@models_command.command("push")
@click.argument("name")
@click.argument("model", metavar="MODEL")
@click.option("--reference", required=True, type=click.Path(path_type=Path),
              help="The model's training data (Parquet or CSV), label column included.")
@click.option("--label", required=True, metavar="COLUMN", help="The label column.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Artifacts and the SQLite database "
              "[default: ./artifacts, or DRIFTLOOP_DATA_DIR].")
@click.option("--database-url", default=None,
              help="sqlite:///… or postgresql+psycopg://… [default: SQLite in --data-dir].")
@click.option("--output-column", metavar="COLUMN", default=None,
              help="A column of the reference holding model outputs: not a feature.")
@click.option("--ignore", multiple=True, metavar="COLUMN",
              help="A column that is not a feature (repeatable), e.g. an id.")
@click.option("--reason", default=None, help="Why: kept in the audit log.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A driftloop.toml settings file [default: ./driftloop.toml if present].")
def models_push(name: str, model: str, reference: Path, label: str, data_dir: Path | None,
                database_url: str | None, output_column: str | None, ignore: tuple[str, ...],
                reason: str | None, config: Path | None) -> None:
    """Register MODEL as a new version of NAME: the champion when NAME has none, else a
    candidate. MODEL is a scikit-learn .skops file, an XGBoost .json/.ubj or LightGBM .txt
    model file, an MLflow model folder, or models:/NAME/VERSION or models:/NAME@ALIAS from
    the MLflow registry at MLFLOW_TRACKING_URI.

    Example:

        driftloop models push churn model.skops --reference train.parquet --label churned
    """
    from driftloop.models.push import PushError, PushRequest, push  # noqa: PLC0415

    settings = _load_settings(config, data_dir=data_dir, database_url=database_url)
    try:
        with _refusing_newer_schema():
            result = push(PushRequest(
                name=name, model=model, reference=reference, label=label,
                data_dir=settings.data_dir, database_url=settings.database_url,
                output_column=output_column, ignore=ignore,
                also_ignored=settings.ignore_columns,
                reason=reason, holdout_fraction=settings.holdout_fraction,
                adapters=settings.adapters))
    except PushError as exc:
        raise click.ClickException(str(exc)) from None
    v = result.version
    click.echo(f"{name} v{v.version} is the {v.status} ({result.source_kind}, "
               f"{len(result.features)} features, label {label!r}, "
               f"{result.snapshot.rows:,} reference rows in snapshot {result.snapshot.id}).")
    if result.unused:
        click.echo(f"Columns the model does not use, left out: {', '.join(result.unused)}.")
    where = f"--data-dir {settings.data_dir}" if database_url is None else \
        f"--database-url {database_url} --data-dir {settings.data_dir}"
    click.echo(f"Serve it: driftloop serve --model {name} {where}")


@main.command("status")
@_registry_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def status_command(data_dir: Path | None, database_url: str | None,
                   model_name: str | None, config: Path | None, as_json: bool) -> None:
    """Whether a server is running (its heartbeat's age), the champion, the candidate, the
    traffic split, the retraining loop's state and last runs, and the latest registry
    changes."""
    from driftloop.training.runs import RunStore  # noqa: PLC0415

    registry, name = _open_registry(data_dir, database_url, model_name, config)
    champion, candidate = registry.get_champion(name), registry.get_candidate(name)
    server = _server_state(registry, name)
    traffic = registry.traffic(name) or {"mode": "off"}
    runs = RunStore(registry.engine, name).list(limit=3)
    active = next((r for r in runs if r.active), None)
    loop = (active.state if active else "IDLE") if server["running"] else "stopped"
    audit = registry.audit(name, limit=5)
    if as_json:
        _echo_json({"model": name, "generation": registry.generation(name), "server": server,
                    "champion": champion.version if champion else None,
                    "candidate": candidate.version if candidate else None,
                    "traffic": traffic, "loop": loop,
                    "active_run": active.to_dict() if active else None,
                    "runs": [r.to_dict() for r in runs],
                    "recent_changes": [{"at": e.at.isoformat(), "action": e.action,
                                        "version": e.version, "actor": e.actor,
                                        "reason": e.reason} for e in audit]})
        return
    console = _console()
    console.print(f"[bold]{name}[/bold]  generation {registry.generation(name)}")
    console.print(f"  server     {_describe_server(server)}")
    console.print(f"  champion   {f'v{champion.version}' if champion else 'none'}")
    console.print(f"  candidate  {f'v{candidate.version}' if candidate else 'none'}")
    console.print(f"  traffic    {', '.join(f'{k}={v}' for k, v in traffic.items())}")
    if server["running"]:
        console.print(f"  loop       {f'{active.state} (run {active.id})' if active else 'IDLE'}")
    else:
        last = f"; its last run was {active.state} ({active.id})" if active else ""
        console.print(f"  loop       not running (no server){last}")
    for r in runs:
        ended = f"{r.outcome or 'running'}" + (f" — {r.reason}" if r.reason else "")
        console.print(f"    {r.created_at:%Y-%m-%d %H:%M:%S}  {r.id}  {r.trigger.kind}: "
                      f"{r.trigger.reason} → {r.state}, {ended}")
    console.print("  recent changes:")
    for entry in audit:
        version = f" v{entry.version}" if entry.version is not None else ""
        reason = f" — {entry.reason}" if entry.reason else ""
        console.print(f"    {entry.at:%Y-%m-%d %H:%M:%S}  {entry.action}{version} "
                      f"by {entry.actor}{reason}")


def _describe_server(server: dict[str, Any]) -> str:
    age = server["last_beat_age_s"]
    if server["running"]:
        count = server["processes"]
        return (f"running ({count} process{'es' if count > 1 else ''}, last heartbeat "
                f"{age:.1f} s ago)")
    if age is None:
        return "not running (no server has ever served this model here)"
    how = "stopped" if server["stopped_cleanly"] else "gone (no heartbeat)"
    return f"not running: {how}, last heartbeat {_age(age)} ago"


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


@main.command("promote")
@click.argument("version", type=click.IntRange(min=1))
@click.option("--reason", default=None,
              help="Why: kept in the audit log. Required to restore an archived version.")
@_registry_options
def promote_command(version: int, reason: str | None, data_dir: Path | None,
                    database_url: str | None, model_name: str | None,
                    config: Path | None) -> None:
    """Make VERSION the champion; running servers follow within a second.

    VERSION is the candidate, or an archived former champion (this undoes a rollback;
    --reason is then required)."""
    from driftloop.registry import ModelNotFoundError, PromotionConflictError  # noqa: PLC0415

    registry, name = _open_registry(data_dir, database_url, model_name, config)
    try:
        if registry.get_version(name, version).status == "archived":
            if not reason:
                raise click.UsageError(f"v{version} is archived: restoring it needs --reason")
            promoted = registry.restore(name, version, actor="cli", reason=reason)
        else:
            promoted = registry.promote_candidate(name, version, actor="cli", reason=reason)
    except (ModelNotFoundError, PromotionConflictError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{name} v{promoted.version} is now the champion.")


@main.command("rollback")
@click.option("--reason", default=None, help="Why: kept in the audit log.")
@_registry_options
def rollback_command(reason: str | None, data_dir: Path | None, database_url: str | None,
                     model_name: str | None, config: Path | None) -> None:
    """Return to the previous champion; running servers follow within a second.

    The version rolled back from is archived; `driftloop promote VERSION --reason ...`
    brings it back."""
    from driftloop.registry import PromotionConflictError  # noqa: PLC0415

    registry, name = _open_registry(data_dir, database_url, model_name, config)
    before = registry.get_champion(name)
    try:
        champion = registry.rollback(name, actor="cli", reason=reason)
    except PromotionConflictError as exc:
        raise click.ClickException(str(exc)) from exc
    undo = (f" Undo with: driftloop promote {before.version} --reason '...'"
            if before else "")
    click.echo(f"{name} is back on v{champion.version}.{undo}")


@main.command("retrain")
@click.option("--reason", default="requested from the command line", show_default=True,
              help="Why: kept with the run.")
@click.option("--queue", is_flag=True,
              help="Record the request even when no server is running; the next "
              "`driftloop serve` starts it.")
@_registry_options
def retrain_command(reason: str, queue: bool, data_dir: Path | None,
                    database_url: str | None, model_name: str | None,
                    config: Path | None) -> None:
    """Ask for a retraining run now. A running `driftloop serve` picks it up within a
    second; a run already in progress takes this request along instead of starting another.
    With no server running this is refused (nothing would drive the run) unless --queue."""
    from driftloop.training.runs import RunStore, Trigger  # noqa: PLC0415

    registry, name = _open_registry(data_dir, database_url, model_name, config)
    server = _server_state(registry, name)
    if not server["running"] and not queue:
        raise click.ClickException(
            f"no `driftloop serve` is running for {name} ({_describe_server(server)}), so "
            "nothing would drive the run: start the server, or pass --queue to leave the "
            "request for the next one")
    result = RunStore(registry.engine, name).trigger(Trigger.now("manual", reason))
    if result.run is None or result.ignored:
        raise click.ClickException(f"not started: {result.ignored}")
    verb = "joined the running" if result.attached else (
        "started" if server["running"] else "queued")
    click.echo(f"{verb} run {result.run.id} ({result.run.state}); follow it with "
               "`driftloop status`.")


# --------------------------------------------------------------------------- schema
@main.group("db")
def db_command() -> None:
    """The database's schema: its revision (`db current`) and upgrading it (`db upgrade`).

    Every command that opens the database upgrades an older schema by itself (the
    embedded default needs no command) and refuses one that a newer driftloop upgraded.
    Run `db upgrade` on its own before a rolling upgrade of several replicas: migrate
    first, then roll the workers.
    """


@db_command.command("upgrade")
@_database_options
def db_upgrade(data_dir: Path | None, database_url: str | None, config: Path | None) -> None:
    """Bring the schema to this driftloop's newest revision: create it in a new database,
    adopt the tables of a release before schema revisions, apply the revisions an older
    database lacks. Safe while servers run and from several hosts at once (it takes a
    lock); a database newer than this driftloop is refused. Example:

        driftloop db upgrade --database-url postgresql+psycopg://driftloop@db/driftloop
    """
    from driftloop import db  # noqa: PLC0415
    from driftloop.db import migrations  # noqa: PLC0415

    settings = _load_settings(config, data_dir=data_dir, database_url=database_url)
    url = settings.database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = db.connect(url)
    try:
        with _refusing_newer_schema():
            before = migrations.ensure(engine)
    finally:
        engine.dispose()
    if before.up_to_date:
        click.echo(f"{before.url}: already at revision {before.head}; nothing to do.")
    else:
        was = before.current or ("the tables of a release before schema revisions"
                                 if before.legacy else "no schema")
        click.echo(f"{before.url}: upgraded from {was} to revision {before.head}.")


@db_command.command("current")
@_database_options
def db_current(data_dir: Path | None, database_url: str | None, config: Path | None) -> None:
    """Print the database's schema revision and whether it is this driftloop's newest
    (head); changes nothing. Exit status 0 whatever the revision, 1 when the database
    cannot be read."""
    from driftloop import db  # noqa: PLC0415
    from driftloop.db import migrations  # noqa: PLC0415

    settings = _load_settings(config, data_dir=data_dir, database_url=database_url)
    _require_database(settings)
    engine = db.connect(settings.database_url)
    try:
        click.echo(migrations.state(engine).describe())
    finally:
        engine.dispose()


@main.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=8000, show_default=True,
              help="Port to bind (0: any free port).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("artifacts"), show_default=True,
              help="Each demo run gets a fresh folder demo/<UTC time>-<id> in here.")
@click.option("--admin-token", envvar="DRIFTLOOP_ADMIN_TOKEN", default=None,
              help="Bearer token for the admin endpoints [default: a random one per run].")
@click.option("--headless", is_flag=True,
              help="No browser, plain progress lines (for tests, scripts and CI).")
@click.option("--until", type=click.Choice(["promoted", "end"]), default="promoted",
              show_default=True,
              help="promoted: replay until the loop promotes a new model (or --max-seconds "
              "runs out); end: replay the fixed stream of 15,000 events.")
@click.option("--max-seconds", type=click.FloatRange(min=10), default=900.0,
              show_default=True, help="With --until promoted: give up after this long.")
@click.option("--speed", type=click.FloatRange(min=0.1, max=100), default=1.0,
              show_default=True, help="Replay speed: X times 100 events per second.")
@click.option("--seed", type=int, default=7, show_default=True, help="The stream's seed.")
@click.option("--keep-serving", is_flag=True,
              help="After the summary, keep the server and dashboard up until Ctrl-C.")
def demo_command(host: str, port: int, data_dir: Path, admin_token: str | None,
                 headless: bool, until: str, max_seconds: float, speed: float,
                 seed: int, keep_serving: bool) -> None:
    """The whole loop on a standard drifting stream: train v1, serve it, replay traffic
    whose concept shifts, send labels late, and watch drift alarm → snapshot → train →
    shadow → promote → accuracy recover. Exits 0 only when the loop promoted.

    The stream is river's RandomRBF benchmark generator with an abrupt concept drift
    (shipped in the river package; nothing is downloaded). While it runs, the dashboard is
    at http://HOST:PORT/ and the API at /docs; each run's registry, snapshots, models and
    summary.json are in DATA_DIR/demo/<UTC time>-<id>/. Ctrl-C stops it and prints the
    summary so far.

    Example:

        driftloop demo --headless --until promoted --speed 5
    """
    from driftloop.demo.runner import DemoOptions, Summary, run_demo  # noqa: PLC0415

    # Ctrl-C (SIGINT) ends the demo with its summary however it was started: a launcher
    # that ignores or blocks SIGINT (a script's background job, a test runner's worker)
    # passes that on, and the demo then replayed on, deaf to it, until the loop promoted.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    console = _console()
    options = DemoOptions(data_dir=data_dir, host=host, port=port, admin_token=admin_token,
                          until=until, max_seconds=max_seconds, speed=speed, seed=seed)
    shown: list[Summary] = []

    def linger(summary: Summary) -> None:
        _print_summary(console, summary)
        shown.append(summary)
        console.print(f"still serving the dashboard at {summary.url}/ — Ctrl-C to stop")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass

    with _ReplayProgress(console, headless) as progress_factory:
        summary = run_demo(options, say=lambda line: console.print(f"[dim]·[/dim] {line}"),
                           progress_factory=progress_factory, open_browser=not headless,
                           linger=linger if keep_serving else None)
    if not shown:
        _print_summary(console, summary)
    if summary.interrupted:
        console.print(f"interrupted; everything so far is in {summary.folder}")
        sys.exit(EXIT_INTERRUPTED)
    if not summary.promoted:
        raise click.ClickException(
            "the loop did not promote a new model "
            + (f"within --max-seconds {max_seconds:g}" if until == "promoted"
               else "during the replay") + f"; see {summary.folder}")


def _print_summary(console: Console, summary: Any) -> None:
    from rich.table import Table  # noqa: PLC0415

    from driftloop.demo.runner import summary_rows  # noqa: PLC0415

    table = Table(title="driftloop demo — summary" + (" (interrupted)" if summary.interrupted
                                                      else ""),
                  title_justify="left", box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for what, value in summary_rows(summary):
        table.add_row(what, value)
    console.print(table)


class _ReplayProgress:
    """A rich progress bar for the replay, or plain lines when headless. ``total`` is
    None when the replay runs until the loop promotes (no fixed end)."""

    EVERY = 1500  # headless, no fixed end: a line every this many events

    def __init__(self, console: Console, headless: bool) -> None:
        self.console, self.headless = console, headless
        self.bar: Any = None

    def __enter__(self) -> Any:
        if not self.headless:
            from rich.progress import Progress  # noqa: PLC0415

            self.bar = Progress(console=self.console, transient=False)
            self.bar.start()
        return self.factory

    def factory(self, total: int | None) -> Any:
        if self.bar is not None:  # the bar's label is the status line: the loop's state
            task = self.bar.add_task("replaying traffic · loop IDLE", total=total)
            return lambda done, state: self.bar.update(
                task, completed=done, description=f"replaying traffic · {done:,} events · "
                f"loop {state}")
        step = self.EVERY if total is None else max(1, total // 10)
        reached = [0]

        def line(done: int, state: str) -> None:  # headless: transitions print their own line
            while reached[0] + step <= done:
                reached[0] += step
                of = "" if total is None else f" of {total:,}"
                self.console.print(f"replayed {reached[0]:,}{of} events · loop {state}")
        return line

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
