"""The ``driftloop`` command."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table
from rich.text import Text

from driftloop.config import Settings, SettingsError
from driftloop.drift import DriftDetector, DriftInputError, DriftPolicy, DriftReport
from driftloop.examples import breast_cancer_shift
from driftloop.fsutil import write_atomic
from driftloop.registry import ModelNotFoundError, ModelRegistry, PromotionConflictError
from driftloop.reporting import render_html, render_terminal
from driftloop.tables import TableReadError, read_table
from driftloop.training.runs import RunStore

FORMATS = ("text", "json", "html")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="driftloop")
def main() -> None:
    """driftloop: watch a served model's traffic for drift and retrain it.

    Run `driftloop COMMAND --help` for the options of each command.
    """


@main.command("drift-report")
@click.argument("reference", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("current", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Report format. Default: from the -o file's extension, else text.")
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
@click.option("--alpha", type=float, default=DriftPolicy.alpha, show_default=True,
              help="Significance level across all columns.")
@click.option("--correction", type=click.Choice(["bonferroni", "bh"]),
              default=DriftPolicy.correction, show_default=True,
              help="Multiple-testing correction: Bonferroni (family-wise) or Benjamini–Hochberg.")
@click.option("--effect", type=click.Choice(["js", "psi", "ks"]), default=DriftPolicy.effect,
              show_default=True, help="Effect size that must clear --effect-floor.")
@click.option("--effect-floor", type=float, default=DriftPolicy.effect_floor,
              show_default=True, help="Smallest effect size that counts as drift.")
@click.option("--psi-bins", type=int, default=10, show_default=True,
              help="Reference-quantile bins for PSI and JS.")
@click.option("--fail-on-drift", is_flag=True,
              help="Exit with status 1 when the dataset drifted (for CI pipelines).")
def drift_report(
    reference: Path,
    current: Path,
    fmt: str | None,
    out: Path | None,
    categorical: tuple[str, ...],
    numeric: tuple[str, ...],
    output_column: str | None,
    ignore: tuple[str, ...],
    alpha: float,
    correction: str,
    effect: str,
    effect_floor: float,
    psi_bins: int,
    fail_on_drift: bool,
) -> None:
    """Compare CURRENT against REFERENCE (Parquet or CSV files) with the streaming engine.

    Numeric columns get the exact two-sample KS test, categorical ones a chi-square test,
    and both PSI and Jensen–Shannon distance on reference-quantile bins. The whole CURRENT
    file is one window. Example:

        driftloop drift-report train.parquet today.csv -o drift.html
    """
    fmt = fmt or _format_from_suffix(out)
    try:
        policy = DriftPolicy(alpha=alpha, correction=correction,  # type: ignore[arg-type]
                             effect=effect, effect_floor=effect_floor,  # type: ignore[arg-type]
                             min_fill=0.0, min_count=1, consecutive=1)
        report = batch_report(reference, current, categorical=categorical, numeric=numeric,
                              output_column=output_column, ignore=ignore, psi_bins=psi_bins,
                              policy=policy)
    except (TableReadError, DriftInputError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if fmt == "text" and out is None:
        # Piped output is not cut to 80 columns; a terminal keeps its own width.
        render_terminal(report, Console(width=None if sys.stdout.isatty() else 120))
    else:
        _emit(_render(report, fmt), out)
    if fail_on_drift and report.drifted:
        sys.exit(1)


def batch_report(
    reference: Path,
    current: Path,
    *,
    categorical: tuple[str, ...] = (),
    numeric: tuple[str, ...] = (),
    output_column: str | None = None,
    ignore: tuple[str, ...] = (),
    psi_bins: int = 10,
    policy: DriftPolicy | None = None,
) -> DriftReport:
    """The drift report of two files: CURRENT as one window against REFERENCE."""
    ref, cur = read_table(reference), read_table(current)
    skip = {*ignore, *([output_column] if output_column else [])}
    for name in sorted(skip):
        if name not in ref.column_names:
            raise DriftInputError(f"not a column of {reference}", feature=name)
    features = [c for c in ref.column_names if c not in skip]
    missing = [c for c in [*features, *skip - set(ignore)] if c not in cur.column_names]
    if missing:
        raise DriftInputError(f"not a column of {current}", feature=missing[0])
    if cur.num_rows == 0:
        raise ValueError(f"{current}: the file has no rows")
    detector = DriftDetector.from_reference(
        ref,
        features=features,
        output=ref.column(output_column) if output_column else None,
        categorical=categorical,
        numeric=numeric,
        psi_bins=psi_bins,
        window=cur.num_rows,
        panes=1,
        policy=policy,
    )
    detector.observe(cur.select(features),
                     output=cur.column(output_column) if output_column else None)
    return detector.report()


def _format_from_suffix(out: Path | None) -> str:
    suffix = out.suffix.lower() if out else ""
    return {".html": "html", ".htm": "html", ".json": "json"}.get(suffix, "text")


def _render(report: DriftReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2) + "\n"
    if fmt == "html":
        return render_html(report)
    with open(os.devnull, "w") as devnull:
        console = Console(record=True, width=120, file=devnull)
        render_terminal(report, console)
    return console.export_text()


def _emit(text: str, out: Path | None) -> None:
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
    reference, current = breast_cancer_shift(seed)
    for name, frame in (("reference", reference), ("current", current)):
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
        write_atomic(directory / f"{name}.parquet", sink.getvalue().to_pybytes())
    click.echo(f"Wrote {directory / 'reference.parquet'} ({len(reference)} rows) and "
               f"{directory / 'current.parquet'} ({len(current)} rows).")


# --------------------------------------------------------------------------- serving
def _registry_options(function: Any) -> Any:
    options = [
        click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                     default=None,
                     help="Artifacts and the SQLite database "
                     "[default: ./artifacts, or DRIFTLOOP_DATA_DIR]."),
        click.option("--database-url", default=None,
                     help="sqlite:///… or postgresql+psycopg://… [default: SQLite in --data-dir]."),
        click.option("--model", "model_name", default=None,
                     help="Model name [default: model, or DRIFTLOOP_MODEL_NAME]."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


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
@click.option("--workers", type=int, default=1, show_default=True,
              help="Worker processes; they follow the registry and share drift.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(host: str, port: int, data_dir: Path | None, admin_token: str | None,
          admin_token_file: Path | None, insecure_no_admin_auth: bool,
          model_name: str | None, database_url: str | None, workers: int,
          log_level: str) -> None:
    """Serve the registry's champion over HTTP (POST /predict, /docs, /metrics, /api/...).

    Example:

        driftloop serve --model churn --port 8000 --workers 2 --admin-token "$TOKEN"
    """
    import uvicorn  # noqa: PLC0415 - only the server needs it

    from driftloop.serving.auth import AdminAuthError, setup_admin_auth  # noqa: PLC0415

    overrides = {"DATA_DIR": data_dir, "ADMIN_TOKEN": admin_token, "MODEL_NAME": model_name,
                 "DATABASE_URL": database_url}
    for key, value in overrides.items():
        if value is not None:
            os.environ[f"DRIFTLOOP_{key}"] = str(value)
    if workers > 1 and "DRIFTLOOP_PANE_SECONDS" not in os.environ:
        os.environ["DRIFTLOOP_PANE_SECONDS"] = "10"  # panes must align across workers
    if workers > 1:
        # Prometheus multiprocess mode: every worker writes here, /metrics sums them. A
        # fresh folder per server start, as prometheus_client requires.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="driftloop-metrics-")
    try:
        settings = Settings.load()  # fail here, with the field's name, not in every worker
        setup_admin_auth(settings, token_file=admin_token_file, insecure=insecure_no_admin_auth,
                         from_command_line=click.get_current_context().get_parameter_source(
                             "admin_token") == click.core.ParameterSource.COMMANDLINE,
                         echo=click.echo)
    except (SettingsError, AdminAuthError) as exc:
        raise click.ClickException(str(exc)) from exc
    uvicorn.run("driftloop.serving.asgi:create", factory=True, host=host, port=port,
                workers=workers, log_level=log_level,
                http="driftloop.serving.limits:H11WithHeaderTimeout")


# --------------------------------------------------------------------------- registry
def _open_registry(data_dir: Path | None, database_url: str | None,
                   model_name: str | None) -> tuple[ModelRegistry, str]:
    try:
        settings = Settings.load(data_dir=data_dir, database_url=database_url,
                                 model_name=model_name)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    if settings.model_name not in registry.list_models():
        known = ", ".join(registry.list_models()) or "none"
        raise click.ClickException(f"no model named {settings.model_name!r} in "
                                   f"{settings.database_url} (models: {known}); pass --model")
    return registry, settings.model_name


@main.command("models")
@_registry_options
def models_command(data_dir: Path | None, database_url: str | None,
                   model_name: str | None) -> None:
    """List every version of the model: status, age, metrics, checksum, training data."""
    registry, name = _open_registry(data_dir, database_url, model_name)
    table = Table(title=f"{name}: versions", title_justify="left", box=None, pad_edge=False)
    for header in ("version", "status", "created (UTC)", "metrics", "sha256", "dataset"):
        table.add_column(header)
    for v in registry.list_versions(name):
        metrics = ", ".join(f"{k}={val:.4g}" if isinstance(val, float) else f"{k}={val}"
                            for k, val in sorted(v.metrics.items())[:4])
        style = {"champion": "bold green", "candidate": "yellow", "rejected": "red"}
        table.add_row(str(v.version), Text(v.status, style=style.get(v.status, "")),
                      v.created_at.strftime("%Y-%m-%d %H:%M:%S"), metrics or "—",
                      v.sha256[:12], v.dataset_id or "—")
    Console().print(table)


@main.command("status")
@_registry_options
def status_command(data_dir: Path | None, database_url: str | None,
                   model_name: str | None) -> None:
    """The champion, the candidate, the traffic split, the retraining loop's state and last
    runs, and the latest registry changes."""
    registry, name = _open_registry(data_dir, database_url, model_name)
    champion, candidate = registry.get_champion(name), registry.get_candidate(name)
    console = Console()
    console.print(f"[bold]{name}[/bold]  generation {registry.generation(name)}")
    console.print(f"  champion   {f'v{champion.version}' if champion else 'none'}")
    console.print(f"  candidate  {f'v{candidate.version}' if candidate else 'none'}")
    traffic = registry.traffic(name) or {"mode": "off"}
    console.print(f"  traffic    {', '.join(f'{k}={v}' for k, v in traffic.items())}")
    runs = RunStore(registry.engine, name).list(limit=3)
    active = next((r for r in runs if r.active), None)
    console.print(f"  loop       {active.state + ' (run ' + active.id + ')' if active else 'IDLE'}")
    for r in runs:
        ended = f"{r.outcome or 'running'}" + (f" — {r.reason}" if r.reason else "")
        console.print(f"    {r.created_at:%Y-%m-%d %H:%M:%S}  {r.id}  {r.trigger.kind}: "
                      f"{r.trigger.reason} → {r.state}, {ended}")
    console.print("  recent changes:")
    for entry in registry.audit(name, limit=5):
        version = f" v{entry.version}" if entry.version is not None else ""
        reason = f" — {entry.reason}" if entry.reason else ""
        console.print(f"    {entry.at:%Y-%m-%d %H:%M:%S}  {entry.action}{version} "
                      f"by {entry.actor}{reason}")


@main.command("promote")
@click.argument("version", type=click.IntRange(min=1))
@click.option("--reason", default=None, help="Why: kept in the audit log.")
@_registry_options
def promote_command(version: int, reason: str | None, data_dir: Path | None,
                    database_url: str | None, model_name: str | None) -> None:
    """Make candidate VERSION the champion; running servers follow within a second."""
    registry, name = _open_registry(data_dir, database_url, model_name)
    try:
        promoted = registry.promote_candidate(name, version, actor="cli", reason=reason)
    except (ModelNotFoundError, PromotionConflictError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{name} v{promoted.version} is now the champion.")


@main.command("rollback")
@click.option("--reason", default=None, help="Why: kept in the audit log.")
@_registry_options
def rollback_command(reason: str | None, data_dir: Path | None, database_url: str | None,
                     model_name: str | None) -> None:
    """Return to the previous champion; running servers follow within a second."""
    registry, name = _open_registry(data_dir, database_url, model_name)
    try:
        champion = registry.rollback(name, actor="cli", reason=reason)
    except PromotionConflictError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{name} is back on v{champion.version}.")


@main.command("retrain")
@click.option("--reason", default="requested from the command line", show_default=True,
              help="Why: kept with the run.")
@_registry_options
def retrain_command(reason: str, data_dir: Path | None, database_url: str | None,
                    model_name: str | None) -> None:
    """Ask for a retraining run now. The server's loop picks it up within a second; a run
    already in progress takes this request along instead of starting another."""
    from driftloop.training.runs import Trigger  # noqa: PLC0415

    registry, name = _open_registry(data_dir, database_url, model_name)
    result = RunStore(registry.engine, name).trigger(Trigger.now("manual", reason))
    if result.run is None or result.ignored:
        raise click.ClickException(f"not started: {result.ignored}")
    verb = "joined the running" if result.attached else "started"
    click.echo(f"{verb} run {result.run.id} ({result.run.state}); a running "
               "`driftloop serve` drives it — follow it with `driftloop status`.")


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
              help="Stop soon after the loop promotes a new model, or replay the whole stream.")
@click.option("--speed", type=click.FloatRange(min=0.1, max=100), default=1.0,
              show_default=True, help="Replay speed: X times 100 events per second.")
@click.option("--seed", type=int, default=7, show_default=True, help="The stream's seed.")
def demo_command(host: str, port: int, data_dir: Path, admin_token: str | None,
                 headless: bool, until: str, speed: float, seed: int) -> None:
    """The whole loop on a standard drifting stream: train v1, serve it, replay traffic
    whose concept shifts, send labels late, and watch drift alarm → snapshot → train →
    shadow → promote → accuracy recover. Exits 0 only when the loop promoted.

    The stream is river's RandomRBF benchmark generator with an abrupt concept drift
    (shipped in the river package; nothing is downloaded). While it runs, the dashboard is
    at http://HOST:PORT/ and the API at /docs; each run's registry, snapshots, models and
    summary.json are in DATA_DIR/demo/<UTC time>-<id>/.

    Example:

        driftloop demo --headless --until promoted --speed 5
    """
    from driftloop.demo.runner import DemoOptions, run_demo, summary_rows  # noqa: PLC0415

    console = Console(highlight=False)
    options = DemoOptions(data_dir=data_dir, host=host, port=port, admin_token=admin_token,
                          until=until, speed=speed, seed=seed)
    with _ReplayProgress(console, headless) as progress_factory:
        summary = run_demo(options, say=lambda line: console.print(f"[dim]·[/dim] {line}"),
                           progress_factory=progress_factory, open_browser=not headless)
    table = Table(title="driftloop demo — summary", title_justify="left", box=None,
                  show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for what, value in summary_rows(summary):
        table.add_row(what, value)
    console.print(table)
    if not summary.promoted:
        raise click.ClickException("the loop did not promote a new model during the replay")


class _ReplayProgress:
    """A rich progress bar for the replay, or plain lines every 10% when headless."""

    def __init__(self, console: Console, headless: bool) -> None:
        self.console, self.headless = console, headless
        self.bar: Any = None

    def __enter__(self) -> Any:
        if not self.headless:
            from rich.progress import Progress  # noqa: PLC0415

            self.bar = Progress(console=self.console, transient=False)
            self.bar.start()
        return self.factory

    def factory(self, total: int) -> Any:
        if self.bar is not None:  # the bar's label is the status line: the loop's state
            task = self.bar.add_task("replaying traffic · loop IDLE", total=total)
            return lambda done, state: self.bar.update(
                task, completed=done, description=f"replaying traffic · loop {state}")
        marks = {total * k // 10 for k in range(1, 11)}
        reached = [0]

        def line(done: int, state: str) -> None:  # headless: transitions print their own line
            for mark in sorted(m for m in marks if reached[0] < m <= done):
                self.console.print(f"replayed {mark:,} of {total:,} events")
            reached[0] = max(reached[0], done)
        return line

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
