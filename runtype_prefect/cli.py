"""The ``runtype-prefect`` command line (typer + rich)."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from .sandbox import DEFAULT_API_KEY, FaultConfig, SandboxSettings, create_app
from .sandbox.server import bind

app = typer.Typer(
    help="Run Runtype AI flows on a schedule with Prefect and turn their results into analytics.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


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
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, faults), log_level="warning", access_log=False)
    )
    server.run(sockets=[sock])


@app.command()
def demo() -> None:
    """Start the sandbox and run every seeded flow over its record type through the client."""
    import time

    from rich.table import Table

    from .client import ImmediateRun, RuntypeClient
    from .sandbox import SandboxServer
    from .sandbox.world import RECORD_TYPE_SIZES

    table = Table(title="Runtype sandbox demo")
    for column in ("flow", "record type", "records", "failed", "status"):
        table.add_column(column)
    with SandboxServer(SandboxSettings(time_scale=0.0)) as server:
        console.print(f"sandbox on {server.base_url}")
        with RuntypeClient(server.api_key, server.base_url) as client:
            for flow, rtype in zip(client.list_flows(), RECORD_TYPE_SIZES, strict=True):
                run = client.run_on_record_type(flow.id, rtype)
                if isinstance(run, ImmediateRun):
                    row = (run.record_count, run.failure_count, "completed")
                else:
                    while not (status := client.get_batch_status(run.batch_id)).status.is_terminal:
                        time.sleep(0.1)
                    row = (status.total_records, status.failed_records, status.status.value)
                table.add_row(flow.name, rtype, *map(str, row))
    console.print(table)
