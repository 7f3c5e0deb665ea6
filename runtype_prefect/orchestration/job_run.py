"""One job, from start to landed rows, inside whichever Prefect run holds it: the
``run-record-type`` flow (a job on its own, the ``on-demand`` deployment) or a task of the
``runtype-nightly`` flow (one task per job: a subflow per job cost a flow run, its parent task
run and their states, writes that collide on a SQLite-backed server). Retries stay at the
boundaries where a retry means something: the start, the wait and the landing are tasks."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime

from prefect import get_run_logger, runtime
from prefect.states import Cancelled, Completed, Failed, State

from ..client import BatchStatus, BatchWaitTimeout, RuntypeClient
from ..engine.jobs import Job, JobRun
from ..engine.landing import immediate_status
from ..engine.outcomes import JobResult, Outcome, combine, outcome_of, outcome_of_error
from ..engine.progress_feed import JobProgress, publish
from ..engine.resources import kept_open, process_warehouse
from ..engine.selection import Repair, describe, part_runs
from ..engine.settings import JobSettings, Mode
from ..engine.starting import Started
from ..warehouse import Warehouse
from .cancellation import CANCELLED_MESSAGE
from .credentials import resolve_credentials
from .limits import api_rate_limit_hook, batch_slot, existing_limits
from .observability import BatchEvents, job_table
from .tasks import (
    cancel_remote_batch,
    choose_records,
    land_job,
    land_records_dimension,
    publish_night,
    start_or_reconnect,
    summarise_job,
    wait_for_batch,
)


def default_run_key() -> str:
    """Return the run key of the current flow run: its scheduled night (UTC date)."""
    scheduled = runtime.flow_run.scheduled_start_time
    when = scheduled if isinstance(scheduled, datetime) else datetime.now(UTC)
    return when.astimezone(UTC).date().isoformat()


def state_for(result: JobResult) -> State:
    """Return the Prefect state that shows a job's outcome in the UI (not a plain Completed)."""
    message = result.message or f"{result.outcome.value}: {result.succeeded}/{result.records} ok"
    if result.outcome is Outcome.CANCELLED:
        return Cancelled(data=result, message=message)
    if result.outcome is Outcome.INCOMPLETE:
        return Failed(data=result, message=message, name="Incomplete")
    if result.outcome is Outcome.BELOW_FLOOR:
        return Failed(data=result, message=message, name="BelowFloor")
    if result.outcome.failed:
        return Failed(data=result, message=message)
    names = {
        Outcome.COMPLETED_WITH_FAILURES: "CompletedWithFailures",
        Outcome.NO_RECORDS: "NoRecords",
        Outcome.OVER_BUDGET: "OverBudget",
        Outcome.NOTHING_TO_RUN: "NothingToRun",
    }
    return Completed(data=result, message=message, name=names.get(result.outcome, "Completed"))


def job_error_result(job: Job, run_key: str, exc: BaseException) -> JobResult:
    """Return the result of a job that failed before it had an outcome (e.g. a bad key)."""
    return JobResult.of(
        job,
        run_key,
        batch_id=getattr(exc, "batch_id", None),
        outcome=outcome_of_error(exc),
        message=f"{type(exc).__name__}: {exc}",
    )


def execute_job(
    job: Job, run_key: str, settings: JobSettings, *, repair: Repair | None = None
) -> State:
    """Start (or reconnect to) the job's batch for ``run_key``, wait for it, land every result
    and return the state that shows its outcome (`state_for`; its data is the `JobResult`).

    An incremental job first chooses its records (`night_selection`, kept for re-runs), and
    so does a ``repair`` of the night (`repair_selection`: the records that failed in it):
    none ends Completed (``NothingToRun``) without starting anything; more than one call takes
    runs as several parts, one after the other, and the job's result adds them up.

    Must run inside a Prefect flow run (the ledger records it, cancellation watches it and its
    root). Raises what the start or the landing raised after their retries, and
    `BatchWaitTimeout` at the deadline (the batch is left running and marked timed out).
    """
    log = get_run_logger()
    flow_run_id = str(runtime.flow_run.id) if runtime.flow_run.id else None
    root_id = str(runtime.flow_run.root_flow_run_id or flow_run_id or "") or None
    run = JobRun(job, run_key, settings, flow_run_id=flow_run_id, root_flow_run_id=root_id)
    credentials = resolve_credentials(settings.credentials_block)
    limits = existing_limits(root_id)
    hook = api_rate_limit_hook(limits)
    # A DuckDB file is held only while this job writes (its start, its landing): a run of
    # another process that writes the same file takes its turn while this one waits. A shared
    # location's staging warehouse is kept for the whole job (it holds the job's batch).
    with (
        kept_open(settings.db_path),
        credentials.get_client(request_hooks=[hook] if hook else None) as client,
    ):
        runs = [run]
        if repair is not None or run.mode is Mode.INCREMENTAL:
            selection = choose_records(client, run, repair)
            log.info("%s, %s: %s", job.label, selection.scope, describe(selection))
            runs = part_runs(run, selection)
            if not runs:
                result = JobResult.of(
                    job,
                    run_key,
                    outcome=Outcome.NOTHING_TO_RUN,
                    message=f"{selection.scope}: {describe(selection)}; nothing started",
                )
                job_table(result)
                return state_for(result)
        results = []
        for part in runs:
            result = _execute_run(client, part, credentials.batch_page_url, limits)
            results.append(result)
            if result.outcome in (Outcome.CANCELLED, Outcome.ERROR):
                break  # a cancelled night starts no further part
    return state_for(combine(job, run_key, results) if len(results) > 1 else results[0])


def _execute_run(
    client: RuntypeClient,
    run: JobRun,
    batch_page: Callable[[str, str], str],
    limits: frozenset[str],
) -> JobResult:
    """Start (or reconnect to) one batch of the job's night (the whole type, or one part),
    wait for it and land it; return its result."""
    log = get_run_logger()
    job, run_key, db_path = run.job, run.run_key, run.settings.db_path
    with ExitStack() as stack:
        with batch_slot(limits):
            with process_warehouse(db_path) as warehouse:
                started = start_or_reconnect(
                    client, warehouse, run, batch_page=batch_page(job.flow_id, "{batch_id}")
                )
                if started.landed_outcome is not None:
                    return summarise_job(
                        warehouse,
                        job,
                        run_key,
                        started.batch_id,
                        reconnected=True,
                        outcome=started.landed_outcome,
                        message="already landed for this run key; nothing to do",
                    )
                land_records_dimension(client, warehouse, run)
            events = stack.enter_context(
                BatchEvents(started.batch_id, job.label, records=started.records)
            )
            if started.immediate is not None:
                status = immediate_status(started.batch_id, started.immediate)
            else:
                waited = wait_for_batch(client, run, started.batch_id, return_state=True)
                if waited.is_cancelled():
                    log.warning("%s: %s", job.label, CANCELLED_MESSAGE)
                    with process_warehouse(db_path) as warehouse:
                        cancel_remote_batch(client, warehouse, started.batch_id)
                    events.end(Outcome.CANCELLED.value, failed=True)
                    return JobResult.of(
                        job,
                        run_key,
                        batch_id=started.batch_id,
                        outcome=Outcome.CANCELLED,
                        reconnected=started.reconnected,
                        message=CANCELLED_MESSAGE,
                    )
                try:
                    status = waited.result()
                except BatchWaitTimeout as exc:
                    with process_warehouse(db_path) as warehouse:
                        warehouse.upsert_batch(
                            started.batch_id, outcome=Outcome.TIMED_OUT.value, error=str(exc)
                        )
                    raise
        with process_warehouse(db_path) as warehouse:
            result = _land(client, warehouse, run, started, status)
            if run.settings.publish_snapshot:
                publish_night(warehouse, run.settings.db_path, run_key, [job])
        publish(
            JobProgress(job.display, run_key, result.records, result.records, result.outcome.value)
        )
        events.end(
            result.outcome.value,
            failed=result.outcome.failed,
            records=result.records,
            failures=result.failed,
            estimated_cost_usd=result.estimated_cost_usd,
            billed_cost_usd=result.billed_cost_usd,
        )
        job_table(result)
    return result


def _land(
    client: RuntypeClient, warehouse: Warehouse, run: JobRun, started: Started, status: BatchStatus
) -> JobResult:
    """Land the batch's results, record its outcome and return the job's numbers."""
    log = get_run_logger()
    job, run_key, min_success_rate = run.job, run.run_key, run.settings.judgement.min_success_rate
    landing = land_job(client, warehouse, run, started, status)
    outcome = outcome_of(status, complete=landing.complete, min_success_rate=min_success_rate)
    warehouse.upsert_batch(started.batch_id, outcome=outcome.value)
    message = ""
    if outcome is Outcome.NO_RECORDS:
        message = f"record type {job.record_type!r} has no records: nothing ran (is it misspelt?)"
        log.warning(message)
    elif outcome is Outcome.BELOW_FLOOR:
        message = (
            f"{status.total_records - status.failed_records}/{status.total_records} records"
            f" succeeded, below the floor of {min_success_rate:.0%} (landed in full)"
        )
        log.warning(message)
    elif outcome is Outcome.INCOMPLETE:
        message = (
            f"batch {started.batch_id} says {status.status.value} with"
            f" {status.processed_records}/{status.total_records} records processed;"
            f" {landing.missing}. Not marked landed: a re-run reconnects and lands the rest."
        )
        log.warning(message)
    return summarise_job(
        warehouse,
        job,
        run_key,
        started.batch_id,
        outcome=outcome,
        reconnected=started.reconnected,
        message=message,
    )
