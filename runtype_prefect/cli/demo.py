"""``make demo``: the sandbox, several simulated nights through Prefect, DuckDB, a report."""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
from rich.console import Console

from ..analytics import connect as analytics_connect
from ..analytics import queries
from ..client.sandbox_control import sandbox_page_template
from ..engine.jobs import Job
from ..engine.settings import Mode
from ..gate import latest_verdicts
from ..sandbox import SandboxServer, SandboxSettings
from ..sandbox.simulation import planted_on
from ..warehouse import Warehouse, snapshot_path_for
from .console import print_verdicts, results_table
from .exit_codes import ExitCode, exit_code_for
from .progress import job_progress
from .report_links import report_links

#: The demo's record type whose nights run only what changed (the others run every record).
INCREMENTAL_TYPE = "lead"
#: How much the demo sandbox's records change each night (`SandboxSettings.churn`).
DEMO_CHURN = 1.0


def sandbox_jobs(server: SandboxServer) -> list[Job]:
    """Return one job per seeded flow over the record type it was written for; the
    `INCREMENTAL_TYPE` job runs incremental nights."""
    flows = server.app.state.sandbox.world.flows.values()
    return [
        Job(
            flow_id=f.id,
            record_type=f.intended_record_type,
            name=f.name,
            mode=Mode.INCREMENTAL if f.intended_record_type == INCREMENTAL_TYPE else None,
        )
        for f in flows
    ]


def savings_line(chosen: pd.DataFrame) -> str | None:
    """Return what the incremental nights saved ("lead, incremental: ran 312 of 7,230 records
    over 6 nights; 6,918 records and $12.40 not spent"), from `queries.chosen_records`, or
    None without any."""
    if chosen.empty:
        return None
    return "; ".join(
        f"{r.record_type}, incremental: ran {int(r.records_run):,} of {int(r.type_records):,}"
        f" records over {r.nights} night{'s' if r.nights != 1 else ''};"
        f" {int(r.records_saved):,} records and ${r.usd_saved or 0:,.2f} not spent"
        for r in chosen.itertuples()
    )


def planted_line(night: str, degraded: int) -> str:
    """Return what the sandbox planted on ``night``, so the quality gate's ``degraded``
    verdicts of that night make sense."""
    planted = planted_on(date.fromisoformat(night))
    if not planted:
        return f"the sandbox planted nothing for {night}: ordinary night-to-night noise only"
    effects = "; ".join(p.describe() for p in planted)
    verdicts = (
        "so the DEGRADED lines above are expected"
        if degraded
        else "the gate flagged none of it on this night"
    )
    return f"the sandbox's {night}: {effects} ({verdicts})"


def run_demo(
    console: Console, *, nights: int, db_path: str, time_scale: float, report_path: str
) -> None:
    """Run the demo end to end and print where everything landed.

    Raises SystemExit with the `ExitCode` of the last night when it was not OK.
    """
    from ..orchestration.limits import ensure_limits
    from ..orchestration.reporting import report_flow
    from ..rehearsal.backfill import SANDBOX_PACE, backfill

    db = Path(db_path).resolve()
    started = time.monotonic()
    with SandboxServer(SandboxSettings(time_scale=0.0, churn=DEMO_CHURN)) as server:
        os.environ["RUNTYPE_API_KEY"] = server.api_key
        os.environ["RUNTYPE_BASE_URL"] = server.base_url
        os.environ["RUNTYPE_DASHBOARD_URL_TEMPLATE"] = sandbox_page_template(server.base_url)
        console.print(f"[bold]sandbox[/] {server.base_url} · warehouse {db}")
        # The batch limit, so no run warns it is missing; no API rate limit: the sandbox has
        # none, and Prefect's costs a round trip per request.
        ensure_limits(api_requests_per_second=None, max_running_batches=4)
        with job_progress(console):
            state = backfill(
                nights=nights,
                jobs=sandbox_jobs(server),
                last_night_time_scale=time_scale,
                settings=SANDBOX_PACE.model_copy(update={"db_path": str(db)}),
                return_state=True,
            )
    nightly_results = state.result(raise_on_failure=False)
    if not isinstance(nightly_results, dict):
        raise (
            nightly_results
            if isinstance(nightly_results, Exception)
            else RuntimeError(state.message)
        )
    if not state.is_completed():
        console.print(f"[yellow]{state.message}[/]", highlight=False, soft_wrap=True)
    last_night = max(nightly_results) if nightly_results else datetime.now(UTC).date().isoformat()
    results = nightly_results.get(last_night, [])
    console.print(results_table(f"Last night ({last_night})", results))
    with Warehouse(db) as warehouse:
        verdicts = latest_verdicts(warehouse, date.fromisoformat(last_night))
        counts = {
            t: warehouse.query(f"SELECT count(*) FROM {t}")[0][0]
            for t in ("batches", "record_results", "step_results")
        }
    print_verdicts(console, verdicts)
    degraded = sum(v.degraded for v in verdicts)
    console.print(planted_line(last_night, degraded), highlight=False)
    landed_nights = f"{len(nightly_results)} night{'s' if len(nightly_results) != 1 else ''}"
    console.print(
        f"landed {counts['batches']} batches, {counts['record_results']:,} record results and "
        f"{counts['step_results']:,} step results over {landed_nights} into {db} "
        f"(analytics snapshot: {snapshot_path_for(db).name}) in {time.monotonic() - started:.0f}s"
    )
    with analytics_connect(db) as con:  # the snapshot the last night published
        saved = savings_line(queries.chosen_records(con))
    if saved:
        console.print(saved, highlight=False)
    report = report_flow(str(db), report_path, links=report_links())
    console.print(f"[bold]report[/]: {report} (self-contained, opens offline)")
    console.print(
        "next: `make notebooks` (JupyterLab on this warehouse) · `make server` "
        "(Prefect UI with scheduled deployments)"
    )
    code = exit_code_for(results) if results else ExitCode.PREFLIGHT_FAILED
    if code:
        raise SystemExit(code)
