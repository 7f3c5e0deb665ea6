"""``make demo``: the sandbox, several simulated nights through Prefect, DuckDB, a report."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from ..analytics import build_report
from ..orchestration.jobs import Job
from ..sandbox import SandboxServer, SandboxSettings
from ..warehouse import Warehouse, snapshot_path_for
from .console import results_table


def sandbox_jobs(server: SandboxServer) -> list[Job]:
    """Return one job per seeded flow over the record type it was written for."""
    flows = server.app.state.sandbox.world.flows.values()
    return [Job(flow_id=f.id, record_type=f.intended_record_type, name=f.name) for f in flows]


def run_demo(
    console: Console, *, nights: int, db_path: str, time_scale: float, report_path: str
) -> None:
    """Run the demo end to end and print where everything landed.

    Raises SystemExit(1) when a job of the last night failed.
    """
    from ..orchestration.backfill import backfill

    db = Path(db_path).resolve()
    started = time.monotonic()
    with SandboxServer(SandboxSettings(time_scale=0.0)) as server:
        os.environ["RUNTYPE_API_KEY"] = server.api_key
        os.environ["RUNTYPE_BASE_URL"] = server.base_url
        console.print(f"[bold]sandbox[/] {server.base_url} · warehouse {db}")
        nightly_results = backfill(
            nights=nights,
            jobs=sandbox_jobs(server),
            db_path=str(db),
            last_night_time_scale=time_scale,
            poll_interval_seconds=0.2,
        )
    last_night = max(nightly_results) if nightly_results else datetime.now(UTC).date().isoformat()
    results = nightly_results.get(last_night, [])
    console.print(results_table(f"Last night ({last_night})", results))
    with Warehouse(db) as warehouse:
        counts = {
            t: warehouse.query(f"SELECT count(*) FROM {t}")[0][0]
            for t in ("batches", "record_results", "step_results")
        }
    console.print(
        f"landed {counts['batches']} batches, {counts['record_results']:,} record results and "
        f"{counts['step_results']:,} step results over {len(nightly_results)} nights into {db} "
        f"(analytics snapshot: {snapshot_path_for(db).name}) in {time.monotonic() - started:.0f}s"
    )
    report = build_report(db, report_path)
    console.print(f"[bold]report[/]: {report} (self-contained, opens offline)")
    console.print(
        "next: `make notebooks` (JupyterLab on this warehouse) · `make server` "
        "(Prefect UI with scheduled deployments)"
    )
    if not results or any(r.outcome.failed for r in results):
        raise SystemExit(1)
