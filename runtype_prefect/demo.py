"""``make demo``: the sandbox, several simulated nights through Prefect, DuckDB, a summary."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from rich.console import Console

from .jobs import Job
from .sandbox import SandboxServer, SandboxSettings
from .warehouse import Warehouse

NIGHT_START_HOUR = 2  # the nightly schedule's hour (UTC) in the simulated history


def sandbox_jobs(server: SandboxServer) -> list[Job]:
    """Return one job per seeded flow over the record type it was written for."""
    flows = server.app.state.sandbox.world.flows.values()
    return [Job(flow_id=f.id, record_type=f.intended_record_type, name=f.name) for f in flows]


def run_demo(
    console: Console, *, nights: int, db_path: str, time_scale: float, report_path: str
) -> None:
    """Run the demo end to end and print where everything landed.

    Raises SystemExit(1) when the last night's run failed.
    """
    from .cli import results_table
    from .orchestration import nightly

    db = Path(db_path).resolve()
    today = datetime.now(UTC).replace(hour=NIGHT_START_HOUR, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=nights - 1)
    settings = SandboxSettings(time_scale=0.0, start=first)
    started = time.monotonic()
    with SandboxServer(settings) as server:
        os.environ["RUNTYPE_API_KEY"] = server.api_key
        os.environ["RUNTYPE_BASE_URL"] = server.base_url
        console.print(f"[bold]sandbox[/] {server.base_url} · warehouse {db}")
        if not os.environ.get("PREFECT_API_URL"):
            console.print(
                "Prefect: no PREFECT_API_URL, so Prefect starts a temporary local "
                "server (~20 s); `make server` runs one with the UI."
            )
        jobs = sandbox_jobs(server)
        admin = httpx.Client(base_url=server.root_url)
        state = None
        for n in range(nights):
            night = first + timedelta(days=n)
            last = n == nights - 1
            admin.put(
                "/_sandbox/clock",
                json={"now": night.isoformat(), "time_scale": time_scale if last else 0.0},
            )
            console.print(f"[bold]night {night.date()}[/] ({n + 1}/{nights}): {len(jobs)} jobs")
            state = nightly(
                jobs=jobs,
                run_key=night.date().isoformat(),
                db_path=str(db),
                poll_interval_seconds=0.2 if last else 0.05,
                max_poll_interval_seconds=2.0,
                return_state=True,
            )
        admin.close()
    results = state.result(raise_on_failure=False) if state else []
    console.print(
        results_table(
            f"Last night ({first.date() + timedelta(days=nights - 1)})",
            results if isinstance(results, list) else [],
        )
    )
    with Warehouse(db) as warehouse:
        counts = {
            t: warehouse.query(f"SELECT count(*) FROM {t}")[0][0]
            for t in ("batches", "record_results", "step_results")
        }
    console.print(
        f"landed {counts['batches']} batches, {counts['record_results']:,} record results and "
        f"{counts['step_results']:,} step results in {db} "
        f"(analytics snapshot: {db.with_name(db.stem + '.analytics.duckdb').name}) "
        f"in {time.monotonic() - started:.0f}s"
    )
    console.print(
        "Prefect UI: `make server`, then http://127.0.0.1:4200 · notebooks: `make notebooks`"
    )
    if state is not None and state.is_failed():
        raise SystemExit(1)
