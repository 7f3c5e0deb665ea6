"""The ``run-record-type`` flow: one Runtype flow over one record type, start to landed rows."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger, runtime
from prefect.states import Cancelled, Completed, Failed, State

from ..client import BatchWaitTimeout
from .cancellation import CANCELLED_MESSAGE, request_stop
from .credentials import resolve_credentials
from .jobs import Job
from .landing import immediate_status
from .limits import api_rate_limit_hook, batch_slot, existing_limits
from .observability import BatchEvents, emit_batch_event, job_table
from .outcomes import JobResult, Outcome, outcome_of, outcome_of_error
from .progress import JobProgress, publish
from .resources import shared_warehouse
from .tasks import (
    cancel_remote_batch,
    land_results,
    preflight_night,
    start_or_reconnect,
    summarise_job,
    wait_for_batch,
)

DEFAULT_TIMEOUT_SECONDS = 6 * 3600.0
#: How long a batch that says ``completed`` with records missing is polled on for them.
DEFAULT_INCOMPLETE_GRACE_SECONDS = 600.0
#: Below this share of succeeded records a landed job ends Failed (``BelowFloor``): red in the
#: UI and counted on the dashboard. Above it, failures make it ``CompletedWithFailures``. The
#: floor is for the night something is badly broken (most records failing); the quality gate
#: judges the subtler drops against each job's own history.
DEFAULT_MIN_SUCCESS_RATE = 0.5


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
    }
    return Completed(data=result, message=message, name=names.get(result.outcome, "Completed"))


def cancel_in_flight_batches(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_cancellation`` hook: stop this process's waiting tasks of the run at once, then
    cancel the Runtype batches the run left running (those that already ended are left for a
    re-run to land)."""
    request_stop(str(flow_run.id))
    params = flow_run.parameters or {}
    credentials = resolve_credentials(params.get("credentials_block"))
    with shared_warehouse(params.get("db_path")) as warehouse, credentials.get_client() as client:
        for batch_id in warehouse.unfinished_batches(str(flow_run.id)):
            if cancel_remote_batch(client, warehouse, batch_id):
                batch = warehouse.get_batch(batch_id) or {}
                label = str(batch.get("job_name") or batch.get("record_type") or batch_id)
                emit_batch_event("failed", batch_id, label, outcome=Outcome.CANCELLED.value)


def job_run_name() -> str:
    """The subflow run's name: the job as an operator knows it, ``Lead Enrichment · lead``."""
    params = runtime.flow_run.parameters
    return f"{params.get('job_name') or params.get('flow_id')} · {params.get('record_type')}"


@flow(
    name="run-record-type",
    flow_run_name=job_run_name,
    on_cancellation=[cancel_in_flight_batches],
)
def run_record_type(
    flow_id: str,
    record_type: str,
    run_key: str | None = None,
    job_name: str | None = None,
    credentials_block: str | None = None,
    db_path: str | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    poll_interval_seconds: float = 5.0,
    max_poll_interval_seconds: float = 60.0,
    force: bool = False,
    publish_snapshot: bool = True,
    incomplete_grace_seconds: float = DEFAULT_INCOMPLETE_GRACE_SECONDS,
    preflight: bool = True,
    max_cost_usd: float | None = None,
    min_success_rate: float = DEFAULT_MIN_SUCCESS_RATE,
) -> JobResult:
    """Run a Runtype flow over every record of a type and land every result in DuckDB.

    ``run_key`` (default: the scheduled night) makes re-runs idempotent: a re-run reconnects to
    the night's batch, or does nothing if it was landed; ``force=True`` starts a new batch.
    The flow run ends Failed for failed or timed-out batches, Incomplete (a Failed state) for a
    batch that said ``completed`` but whose records did not all arrive within
    ``incomplete_grace_seconds``, Cancelled when it was cancelled (its batch is cancelled within
    seconds), CompletedWithFailures when some records failed, NoRecords for a record type
    without records, and Failed (``BelowFloor``) when fewer than ``min_success_rate`` of the
    records succeeded (the batch is landed in full either way). With ``preflight`` (the default
    when run on its own) the preflight checks come first: a failed check fails the run before
    anything starts, and a cost forecast above ``max_cost_usd`` ends it OverBudget without
    starting.
    """
    log = get_run_logger()
    job = Job(flow_id=flow_id, record_type=record_type, name=job_name)
    run_key = run_key or default_run_key()
    flow_run_id = str(runtime.flow_run.id) if runtime.flow_run.id else None
    root_id = str(runtime.flow_run.root_flow_run_id or flow_run_id or "") or None
    if preflight:
        report = preflight_night(
            [job],
            run_key,
            credentials_block=credentials_block,
            db_path=db_path,
            max_cost_usd_per_job=max_cost_usd,
        )
        if report.failed:
            message = "preflight failed, nothing was started: " + "; ".join(report.problems())
            log.error(message)
            return Failed(message=message)  # type: ignore[return-value]
        if not report.plans[0].runs:
            skipped = JobResult.of(
                job, run_key, outcome=Outcome.OVER_BUDGET, message=report.plans[0].over_budget
            )
            return state_for(skipped)  # type: ignore[return-value]
    credentials = resolve_credentials(credentials_block)
    limits = existing_limits(root_id)
    hook = api_rate_limit_hook(limits)
    with (
        ExitStack() as stack,
        shared_warehouse(db_path) as warehouse,
        credentials.get_client(request_hooks=[hook] if hook else None) as client,
    ):
        with batch_slot(limits):
            started = start_or_reconnect(
                client,
                warehouse,
                job,
                run_key,
                flow_run_id=flow_run_id,
                root_flow_run_id=root_id,
                force=force,
                batch_page=credentials.batch_page_url(job.flow_id, "{batch_id}"),
            )
            if started.landed_outcome is not None:
                result = summarise_job(
                    warehouse,
                    job,
                    run_key,
                    started.batch_id,
                    reconnected=True,
                    outcome=started.landed_outcome,
                    message="already landed for this run key; nothing to do",
                )
                return state_for(result)  # type: ignore[return-value]
            events = stack.enter_context(
                BatchEvents(started.batch_id, job.label, records=started.records)
            )
            if started.immediate is not None:
                status = immediate_status(started.batch_id, started.immediate)
            else:
                waited = wait_for_batch(
                    client,
                    warehouse,
                    started.batch_id,
                    job,
                    timeout=timeout_seconds,
                    poll_interval=poll_interval_seconds,
                    max_poll_interval=max_poll_interval_seconds,
                    incomplete_grace=incomplete_grace_seconds,
                    flow_run_ids=[flow_run_id, root_id],
                    run_key=run_key,
                    return_state=True,
                )
                if waited.is_cancelled():
                    log.warning("%s: %s", job.label, CANCELLED_MESSAGE)
                    cancel_remote_batch(client, warehouse, started.batch_id)
                    events.end(Outcome.CANCELLED.value, failed=True)
                    result = JobResult.of(
                        job,
                        run_key,
                        batch_id=started.batch_id,
                        outcome=Outcome.CANCELLED,
                        reconnected=started.reconnected,
                        message=CANCELLED_MESSAGE,
                    )
                    return state_for(result)  # type: ignore[return-value]
                try:
                    status = waited.result()
                except BatchWaitTimeout as exc:
                    warehouse.upsert_batch(
                        started.batch_id, outcome=Outcome.TIMED_OUT.value, error=str(exc)
                    )
                    raise
        landing = land_results(
            client,
            warehouse,
            job,
            started.batch_id,
            status,
            immediate=started.immediate is not None,
        )
        outcome = outcome_of(status, complete=landing.complete, min_success_rate=min_success_rate)
        warehouse.upsert_batch(started.batch_id, outcome=outcome.value)
        message = ""
        if outcome is Outcome.NO_RECORDS:
            message = f"record type {record_type!r} has no records: nothing ran (is it misspelt?)"
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
        result = summarise_job(
            warehouse,
            job,
            run_key,
            started.batch_id,
            outcome=outcome,
            reconnected=started.reconnected,
            message=message,
        )
        publish(JobProgress(job.display, run_key, result.records, result.records, outcome.value))
        events.end(
            outcome.value,
            failed=outcome.failed,
            records=result.records,
            failures=result.failed,
            cost_usd=result.cost_usd,
        )
        job_table(result)
        if publish_snapshot:
            warehouse.publish_snapshot()
    return state_for(result)  # type: ignore[return-value]


def job_error_result(job: Job, run_key: str, exc: BaseException) -> JobResult:
    """Return the result of a job that failed before it had an outcome (e.g. a bad key)."""
    return JobResult.of(
        job,
        run_key,
        batch_id=getattr(exc, "batch_id", None),
        outcome=outcome_of_error(exc),
        message=f"{type(exc).__name__}: {exc}",
    )
