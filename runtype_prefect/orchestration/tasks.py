"""Prefect tasks of one job: start (or reconnect), wait, land, summarise.

Every task that reads remote state uses ``NO_CACHE`` (a cached poll returns a stale status).
Retries are Prefect's, only for errors a retry can cure (`retry_if_transient`); the start task
is safe to retry because it consults the warehouse's ledger before starting anything.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.assets import Asset, materialize
from prefect.cache_policies import NO_CACHE
from prefect.states import Cancelled
from prefect.tasks import exponential_backoff

from ..client import (
    BadRequestError,
    BatchStatus,
    BatchWaitStopped,
    NotFoundError,
    RunStartUncertainError,
    RuntypeClient,
    RuntypeError,
    RuntypeTimeoutError,
    is_retryable,
)
from ..engine.errors import RunError
from ..engine.jobs import Job, JobRun
from ..engine.landing import Landing, land_batch_results, land_records
from ..engine.outcomes import JobResult, Outcome
from ..engine.preflight import (
    PREFLIGHT_TIMEOUT,
    Level,
    PreflightReport,
    preflight_retry,
    run_preflight,
)
from ..engine.progress_feed import JobProgress, publish
from ..engine.resources import process_warehouse
from ..engine.selection import Repair, night_selection, repair_selection
from ..engine.settings import JobSettings
from ..engine.starting import Started, start_job
from ..warehouse import Selection, Warehouse, WarehouseLockedError
from . import run_context  # noqa: F401  (lends the engine this run: logs, holder)
from .cancellation import CANCELLED_MESSAGE, CancellationWatch
from .credentials import resolve_credentials
from .limits import start_slot
from .lineage import (
    WAREHOUSE_ASSET,
    describe_materialized,
    flow_asset,
    snapshot_asset,
    table_assets,
)
from .observability import ProgressReporter, emit_batch_event, link_batch, preflight_artifact


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry only errors a retry can cure. A timeout is not retried
    here: the client already spent its whole per-call budget on it."""
    exc = state.result(raise_on_failure=False)
    if isinstance(exc, RuntypeTimeoutError):
        return False
    if isinstance(exc, RunError):  # ours say whether running again can help
        return exc.retryable
    return is_retryable(exc) or isinstance(exc, RunStartUncertainError | WarehouseLockedError)


RETRYING: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_if_transient,
}


@task(
    name="start-or-reconnect",
    task_run_name="start · {run.job.display}",
    cache_policy=NO_CACHE,
    **RETRYING,
)
def start_or_reconnect(
    client: RuntypeClient, warehouse: Warehouse, run: JobRun, *, batch_page: str | None = None
) -> Started:
    """Prefect task around `start_job` (retried for what a retry can cure), holding the flow's
    Prefect start slot; announces a new batch with an event and a link artifact to
    ``batch_page`` (``{batch_id}`` filled in: the dashboard, or the sandbox's page)."""
    started = start_job(client, warehouse, run, slot=start_slot, log=get_run_logger())
    job = run.job
    if started.new:
        emit_batch_event(
            "started",
            started.batch_id,
            job.label,
            records=started.records,
            flow_id=job.flow_id,
            record_type=job.record_type,
        )
        if batch_page:
            link_batch(
                batch_page.replace("{batch_id}", started.batch_id), started.batch_id, job.label
            )
    return started


@task(name="choose-records", task_run_name="choose · {run.job.display}", cache_policy=NO_CACHE)
def choose_records(client: RuntypeClient, run: JobRun, repair: Repair | None = None) -> Selection:
    """Prefect task around `night_selection` (or `repair_selection` for a ``repair``): the
    records the job's night runs, chosen once and kept in the warehouse."""
    with process_warehouse(run.settings.db_path) as warehouse:
        if repair is not None:
            return repair_selection(client, warehouse, run, repair)
        return night_selection(client, warehouse, run)


def cancel_remote_batch(client: RuntypeClient, warehouse: Warehouse, batch_id: str) -> bool:
    """Cancel a batch for a cancelled flow run and record it; return False when it had already
    ended (it is then left for a re-run to land, not called cancelled). The caller emits the
    batch's terminal event."""
    try:
        client.cancel_batch(batch_id)
    except (BadRequestError, NotFoundError):
        return False
    warehouse.upsert_batch(
        batch_id, status="cancelled", outcome=Outcome.CANCELLED.value, error=CANCELLED_MESSAGE
    )
    return True


@task(name="wait-for-batch", task_run_name="wait · {run.job.display}", cache_policy=NO_CACHE)
def wait_for_batch(client: RuntypeClient, run: JobRun, batch_id: str) -> BatchStatus:
    """Follow the batch until it has ended (`RuntypeClient.wait_for_batch`, paced and bounded
    by ``run.settings.waiting``), updating progress in the UI, and stop within seconds when
    the run's flow run or its root is being cancelled.

    The warehouse is opened only to record progress, so other runs can write it while this one
    waits. Ends in a Cancelled state (no traceback: nothing failed) when the run is being
    cancelled; raises `BatchWaitTimeout` at the deadline (the batch is left running).
    """
    log = get_run_logger()
    job, run_key, waiting = run.job, run.run_key, run.settings.waiting
    progress = ProgressReporter(batch_id, job.label)
    last = [-1]

    def on_status(status: BatchStatus) -> None:
        if status.processed_records == last[0]:
            return  # nothing moved: no log line, no artifact or warehouse write
        last[0] = status.processed_records
        progress(status.progress)
        publish(
            JobProgress(
                job.display,
                run_key,
                status.processed_records,
                status.total_records,
                status.status.value,
            )
        )
        log.info(
            "%s: batch %s %s, %d/%d records (%d failed)",
            job.label,
            batch_id,
            status.status.value,
            status.processed_records,
            status.total_records,
            status.failed_records,
        )
        with process_warehouse(run.settings.db_path) as warehouse:
            warehouse.upsert_batch(
                batch_id, status=status.status.value, processed_records=status.processed_records
            )

    with CancellationWatch([run.flow_run_id, run.root_flow_run_id]) as watch:
        try:
            return client.wait_for_batch(
                batch_id,
                timeout=waiting.timeout_seconds,
                poll_interval=waiting.poll_interval_seconds,
                max_poll_interval=waiting.max_poll_interval_seconds,
                incomplete_grace=waiting.incomplete_grace_seconds,
                on_status=on_status,
                should_stop=watch.should_stop,
                sleep=watch.sleep,
            )
        except BatchWaitStopped:
            # The task ends Cancelled (Prefect takes a returned state as the task's own), which
            # its caller sees as an error: one state among the statuses this task returns.
            stopped = f"stopped waiting for batch {batch_id}: run cancelled"
            return Cancelled(message=stopped)  # type: ignore[return-value]


@materialize(
    WAREHOUSE_ASSET,
    name="land-results",
    task_run_name="land · {run.job.display}",
    cache_policy=NO_CACHE,
    **RETRYING,
)
def land_results(
    client: RuntypeClient, warehouse: Warehouse, run: JobRun, started: Started, status: BatchStatus
) -> Landing:
    """Prefect task around `land_batch_results` (retried for transient errors); returns what
    was landed and whether the batch is now complete in the warehouse.

    It materializes the warehouse: call it as ``land_results.with_options(assets=
    table_assets(...), asset_deps=[flow_asset(job)])`` (`land_job`) so the job's tables show
    in the asset graph, with the rows, night and batch landed."""
    log = get_run_logger()
    job = run.job
    landing = land_batch_results(
        client, warehouse, job, started.batch_id, status, immediate=started.immediate is not None
    )
    records, steps = table_assets(run.settings.db_path, job)
    meta = {"night": run.run_key, "batch": started.batch_id, "complete": landing.complete}
    describe_materialized(records, rows=landing.landed_records, **meta)
    describe_materialized(steps, rows=landing.steps, **meta)
    log.info(
        "%s: landed %d record and %d step results%s",
        job.label,
        landing.landed_records,  # an immediate run's records landed with its response
        landing.steps,
        "" if landing.complete else f" — incomplete: {landing.missing}",
    )
    return landing


def land_job(
    client: RuntypeClient, warehouse: Warehouse, run: JobRun, started: Started, status: BatchStatus
) -> Landing:
    """Run `land_results` for the job's batch as the materialization of the job's tables,
    downstream of its Runtype flow; return what was landed."""
    lineage = land_results.with_options(
        assets=table_assets(run.settings.db_path, run.job), asset_deps=[flow_asset(run.job)]
    )
    return lineage(client, warehouse, run, started, status)


@materialize(WAREHOUSE_ASSET, name="publish-snapshot", cache_policy=NO_CACHE)
def publish_snapshot(warehouse: Warehouse, db_path: str | None, run_key: str) -> str:
    """Publish the warehouse's analytics snapshot (`Warehouse.publish_snapshot`); return its
    path. Call it through `publish_night` for the lineage."""
    path = warehouse.publish_snapshot()
    describe_materialized(snapshot_asset(db_path), night=run_key, path=str(path))
    return str(path)


def publish_night(warehouse: Warehouse, db_path: str | None, run_key: str, jobs: list[Job]) -> str:
    """Run `publish_snapshot` as the materialization of the snapshot, downstream of the
    tables of ``jobs``; return its path."""
    upstream: list[Asset | str] = [a for job in jobs for a in table_assets(db_path, job)]
    lineage = publish_snapshot.with_options(assets=[snapshot_asset(db_path)], asset_deps=upstream)
    return lineage(warehouse, db_path, run_key)


def land_records_dimension(client: RuntypeClient, warehouse: Warehouse, run: JobRun) -> None:
    """With the setting ``records_dimension``, land the record type's records into the
    ``records`` dimension (once a night, `land_records`). The job path calls it while its
    batch runs, so the listing costs no time of its own. A listing that fails is logged and
    left for the next night: it never fails the job."""
    if not run.settings.records_dimension:
        return
    log = get_run_logger()
    job = run.job
    try:
        listed = land_records(client, warehouse, job.record_type, run.run_key)
    except RuntypeError as exc:
        log.warning("%s: records of %r not landed (%s)", job.label, job.record_type, exc)
    else:
        if listed is not None:
            log.info("%s: landed %d %s records", job.label, listed, job.record_type)


def summarise_job(
    warehouse: Warehouse, job: Job, run_key: str, batch_id: str, **extra: Any
) -> JobResult:
    """Return the job's numbers: its batch's row of the ``batch_runs`` model (the figures the
    report and the notebooks show for the same batch)."""
    (row,) = warehouse.query(
        "SELECT records, succeeded, failed, p50_s, p95_s, tokens, estimated_cost_usd,"
        " billed_cost_usd FROM batch_runs WHERE batch_id = ?",
        [batch_id],
    ) or [(0, 0, 0, None, None, 0, 0.0, None)]
    records, succeeded, failed, p50, p95, tokens, estimated, billed = row
    return JobResult.of(
        job,
        run_key,
        batch_id=batch_id,
        records=records,
        succeeded=succeeded,
        failed=failed,
        p50_seconds=p50,
        p95_seconds=p95,
        tokens=tokens,
        estimated_cost_usd=estimated,
        billed_cost_usd=billed,
        **extra,
    )


@task(name="preflight", task_run_name="preflight · {run_key}", cache_policy=NO_CACHE)
def preflight_night(
    jobs: list[Job],
    run_key: str,
    settings: JobSettings,
    night_max_cost_usd: float | None = None,
) -> PreflightReport:
    """Run every preflight check before anything of the night starts (`run_preflight`), leave
    the findings in one markdown artifact and return the report."""
    log = get_run_logger()
    try:
        credentials = resolve_credentials(settings.credentials_block)
    except ValueError as exc:
        report = PreflightReport(run_key)
        report.add(Level.FAIL, "credentials", str(exc))
    else:
        retry = preflight_retry(credentials.retry_policy())
        with credentials.get_client(retry=retry, timeout=PREFLIGHT_TIMEOUT) as client:
            report = run_preflight(
                client, jobs, run_key, settings, night_max_cost_usd=night_max_cost_usd
            )
    for finding in report.findings:
        if finding.level is not Level.OK:
            log.warning("preflight %s: %s", finding.check, finding.message)
    preflight_artifact(run_key, report.markdown())
    return report
