"""The ``runtype-prefect`` command line (typer + rich)."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from typing import Annotated

import typer

# These machines are offline: Prefect's anonymous telemetry can only fail (noisily).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
from rich.console import Console
from rich.table import Table

from .sandbox import DEFAULT_API_KEY, FaultConfig, SandboxSettings, create_app
from .sandbox.server import bind, uvicorn_server

app = typer.Typer(
    help="Run Runtype AI flows on a schedule with Prefect and turn their results into analytics.",
    no_args_is_help=True,
    add_completion=False,
)
# Piped output (make, CI) gets a readable width instead of Rich's 80-column fallback.
console = Console(width=None if sys.stdout.isatty() else 130)


@app.callback()
def _group() -> None:
    """Run Runtype AI flows on a schedule with Prefect and turn their results into analytics."""


def _env(name: str) -> str:
    return f"RUNTYPE_SANDBOX_{name}"


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port; 0 picks a free one.", envvar=_env("PORT"))
    ] = 8765,
    seed: Annotated[int, typer.Option(help="Seed of flows, records and executions.")] = 7,
    time_scale: Annotated[
        float,
        typer.Option(
            help="Wall seconds per simulated second of work; 0 = at once.",
            envvar=_env("TIME_SCALE"),
        ),
    ] = 0.01,
    start: Annotated[
        datetime | None, typer.Option(help="Simulated start time (UTC); default: now.")
    ] = None,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            help="Accepted API key (repeatable). Default: $RUNTYPE_API_KEY, else "
            f"{DEFAULT_API_KEY}."
        ),
    ] = None,
    immediate_threshold: Annotated[int, typer.Option(help="Largest immediate run.")] = 10,
    record_concurrency: Annotated[int, typer.Option(help="Records run at once per batch.")] = 25,
    daily_limit: Annotated[
        int | None, typer.Option(help="Executions per day before 429 (default: unlimited).")
    ] = None,
    latency_ms: Annotated[float, typer.Option(envvar=_env("LATENCY_MS"))] = 0.0,
    rate_429: Annotated[float, typer.Option(envvar=_env("RATE_429"))] = 0.0,
    retry_after: Annotated[float, typer.Option(envvar=_env("RETRY_AFTER"))] = 1.0,
    burst_limit: Annotated[
        int | None, typer.Option(help="API requests per 10 s.", envvar=_env("BURST_LIMIT"))
    ] = None,
    rate_5xx: Annotated[float, typer.Option(envvar=_env("RATE_5XX"))] = 0.0,
    rate_drop: Annotated[float, typer.Option(envvar=_env("RATE_DROP"))] = 0.0,
    rate_malformed: Annotated[float, typer.Option(envvar=_env("RATE_MALFORMED"))] = 0.0,
) -> None:
    """Serve the Runtype-compatible sandbox API (faults are off unless switched on)."""
    keys = tuple(api_key or [os.environ.get("RUNTYPE_API_KEY") or DEFAULT_API_KEY])
    settings = SandboxSettings(
        seed=seed,
        time_scale=time_scale,
        start=start,
        immediate_threshold=immediate_threshold,
        record_concurrency=record_concurrency,
        daily_execution_limit=daily_limit,
        api_keys=keys,
    )
    faults = FaultConfig(
        latency_ms=latency_ms,
        rate_429=rate_429,
        retry_after_seconds=retry_after,
        burst_limit=burst_limit,
        rate_5xx=rate_5xx,
        rate_drop=rate_drop,
        rate_malformed=rate_malformed,
    )
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    key_source = (
        "--api-key"
        if api_key
        else ("RUNTYPE_API_KEY" if os.environ.get("RUNTYPE_API_KEY") else "the default test key")
    )
    console.print(f"[bold]Runtype sandbox[/] on http://{host}:{bound_port}/v1")
    console.print(
        f"  accepting {len(keys)} key(s) from {key_source}"
        + (f": {DEFAULT_API_KEY}" if key_source == "the default test key" else "")
    )
    console.print(f"  OpenAPI: http://{host}:{bound_port}/docs · faults: /_sandbox/faults")
    uvicorn_server(create_app(settings, faults)).run(sockets=[sock])


def results_table(title: str, results: list) -> Table:
    """Return a rich table of job results (records, success rate, p50/p95, cost)."""
    from .orchestration.observability import summary_row  # Prefect: slow to import

    table = Table(title=title)
    for column, justify in [
        ("job", "left"),
        ("outcome", "left"),
        ("records", "right"),
        ("success rate", "right"),
        ("p50 s", "right"),
        ("p95 s", "right"),
        ("tokens", "right"),
        ("cost USD", "right"),
    ]:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in results:
        row = summary_row(r)
        style = "red" if r.outcome.failed else ("yellow" if not r.outcome.ok else "green")
        table.add_row(
            r.job,
            f"[{style}]{r.outcome.value}[/]",
            str(r.records),
            row["success rate"],
            _num(row["p50 s"]),
            _num(row["p95 s"]),
            f"{r.tokens:,}",
            f"{r.cost_usd:.4f}",
        )
    return table


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _print_failures(results: list) -> None:
    for r in results:
        if r.outcome.failed or r.message:
            console.print(f"[bold]{r.job}[/]: {r.outcome.value}. {r.message}")


@app.command()
def run(
    flow_id: Annotated[str, typer.Option(help="Runtype flow id.")],
    record_type: Annotated[list[str], typer.Option(help="Record type (repeatable).")],
    db: Annotated[
        str | None, typer.Option(help="DuckDB file (default $RUNTYPE_PREFECT_DB).")
    ] = None,
    credentials_block: Annotated[
        str | None, typer.Option(help="Saved RuntypeCredentials block (default: environment).")
    ] = None,
    run_key: Annotated[str | None, typer.Option(help="Idempotency key (default: today).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each batch.")] = 6 * 3600.0,
    force: Annotated[bool, typer.Option(help="Start new batches even if the key ran.")] = False,
) -> None:
    """Run one Runtype flow over record types through Prefect and land results in DuckDB."""
    from .jobs import Job
    from .orchestration import nightly

    jobs = [Job(flow_id=flow_id, record_type=t) for t in record_type]
    state = nightly(
        jobs=jobs,
        db_path=db,
        credentials_block=credentials_block,
        run_key=run_key,
        timeout_seconds=timeout,
        force=force,
        return_state=True,
    )
    results = state.result(raise_on_failure=False)
    if not isinstance(results, list):
        console.print(f"[red]run failed:[/] {results}")
        raise typer.Exit(1)
    console.print(results_table(f"Runtype run {results[0].run_key if results else ''}", results))
    _print_failures(results)
    raise typer.Exit(1 if state.is_failed() else 0)


@app.command()
def setup(
    api_requests_per_second: Annotated[float, typer.Option(help="Runtype API rate limit.")] = 20.0,
    max_running_batches: Annotated[int, typer.Option(help="Batches running at once.")] = 4,
    work_pool: Annotated[
        str, typer.Option(help="Process work pool to create.")
    ] = "runtype-process",
    save_block: Annotated[
        str | None,
        typer.Option(help="Also save a RuntypeCredentials block of this name from the env."),
    ] = None,
) -> None:
    """Create the Prefect limits and work pool and register the credentials block type.

    Safe to run twice: existing limits are updated, nothing is duplicated.
    """
    from .setup import run_setup

    for line in run_setup(
        api_requests_per_second=api_requests_per_second,
        max_running_batches=max_running_batches,
        work_pool=work_pool,
        save_block=save_block,
    ):
        console.print(line)


@app.command()
def backfill(
    nights: Annotated[int, typer.Option(help="Nights to land, ending today (UTC).")] = 7,
    jobs_file: Annotated[str, typer.Option(help="Jobs YAML.")] = "deployments/jobs.yaml",
    db: Annotated[
        str | None, typer.Option(help="DuckDB file (default $RUNTYPE_PREFECT_DB).")
    ] = None,
) -> None:
    """Land several simulated nights from the sandbox at $RUNTYPE_BASE_URL (sandbox only)."""
    from .orchestration.backfill import backfill as backfill_flow
    from .sandbox.control import NotASandboxError

    try:
        results = backfill_flow(nights=nights, jobs_file=jobs_file, db_path=db)
    except NotASandboxError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    for night, night_results in results.items():
        console.print(results_table(f"Night {night}", night_results))


@app.command()
def server(
    port: Annotated[int, typer.Option(help="Prefect server (UI) port.")] = 4200,
    sandbox_port: Annotated[int, typer.Option(help="Sandbox port.")] = 8765,
    time_scale: Annotated[float, typer.Option(help="Sandbox time scale.")] = 0.01,
) -> None:
    """Run a Prefect server with the UI, the sandbox, the deployments and a process worker,
    until Ctrl-C. Schedules run here (the temporary server Prefect starts alone has none)."""
    from .stack import LocalStack

    with LocalStack(
        prefect_port=port, sandbox_port=sandbox_port, time_scale=time_scale, log=console.print
    ) as stack:
        stack.deploy()
        stack.start_worker()
        console.print(
            f"[bold green]ready[/]: Prefect UI {stack.ui_url} · sandbox "
            f"{stack.sandbox_url} · warehouse {stack.db_path}"
        )
        console.print(
            "trigger a night now: PREFECT_API_URL="
            + stack.api_url
            + " .venv/bin/prefect deployment run runtype-nightly/nightly · Ctrl-C stops"
        )
        stack.wait()


@app.command()
def demo(
    nights: Annotated[int, typer.Option(help="Simulated nights of history to land.")] = 7,
    db: Annotated[str, typer.Option(help="DuckDB file to land into.")] = "runtype.duckdb",
    time_scale: Annotated[
        float, typer.Option(help="Sandbox wall seconds per simulated second, last night.")
    ] = 0.002,
    report_path: Annotated[str, typer.Option("--report", help="HTML report to write.")] = (
        "reports/report.html"
    ),
) -> None:
    """Start the sandbox, run the nightly flow for several simulated nights on Prefect's local
    server, land everything in DuckDB and print a summary."""
    from .demo import run_demo

    run_demo(console, nights=nights, db_path=db, time_scale=time_scale, report_path=report_path)


@app.command()
def report(
    db: Annotated[
        str | None, typer.Option(help="Warehouse or its snapshot (default $RUNTYPE_PREFECT_DB).")
    ] = None,
    out: Annotated[str, typer.Option(help="HTML file to write.")] = "report.html",
    since: Annotated[
        datetime | None,
        typer.Option(help="Only nights on or after this date.", formats=["%Y-%m-%d"]),
    ] = None,
) -> None:
    """Write the self-contained HTML report (opens offline) from the analytics snapshot."""
    from .analytics import AnalyticsUnavailableError, build_report

    try:
        path = build_report(db, out, since=since.date() if since else None)
    except AnalyticsUnavailableError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB, opens offline)")
