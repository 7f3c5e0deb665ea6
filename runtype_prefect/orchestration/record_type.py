"""The ``run-record-type`` flow: one Runtype flow over one record type, start to landed rows
(the ``on-demand`` deployment). The job's work is `job_run.execute_job`, which the nightly's
job tasks run too."""

# No postponed annotations here: a served flow is pickled by value with only the names its
# body uses, and Prefect validates its parameters against these annotations.

from typing import Any

from prefect import flow, get_run_logger, runtime
from prefect.client.schemas.objects import State
from prefect.states import Failed

from ..engine.jobs import Job, named_after_flows
from ..engine.outcomes import JobResult, Outcome
from ..engine.resources import process_warehouse
from ..engine.settings import JobSettings
from .alerts import emit_job_alerts, emit_preflight_alerts
from .cancellation import request_stop
from .credentials import resolve_credentials
from .job_run import default_run_key, execute_job, job_error_result, state_for
from .observability import emit_batch_event, rename_flow_run
from .tasks import cancel_remote_batch, preflight_night


def cancel_in_flight_batches(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_cancellation`` hook: stop this process's waiting tasks of the run at once, then
    cancel the Runtype batches the run left running (those that already ended are left for a
    re-run to land)."""
    request_stop(str(flow_run.id))
    settings = JobSettings.model_validate((flow_run.parameters or {}).get("settings") or {})
    credentials = resolve_credentials(settings.credentials_block)
    with (
        process_warehouse(settings.db_path) as warehouse,
        credentials.get_client() as client,
    ):
        for batch_id in warehouse.unfinished_batches(str(flow_run.id)):
            if cancel_remote_batch(client, warehouse, batch_id):
                batch = warehouse.get_batch(batch_id) or {}
                label = str(batch.get("job_name") or batch.get("record_type") or batch_id)
                emit_batch_event("failed", batch_id, label, outcome=Outcome.CANCELLED.value)


def job_run_name() -> str:
    """The flow run's name: the job as an operator knows it, ``Lead Enrichment · lead``."""
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
    settings: JobSettings = JobSettings(),
) -> State:
    """Run a Runtype flow over every record of a type and land every result in DuckDB.

    A re-run with the same run key reconnects to its batch, or does nothing once it landed.
    The flow run ends Failed for failed or timed-out batches, Incomplete (a Failed state) for a
    batch that said ``completed`` but whose records did not all arrive in time, Cancelled when
    it was cancelled (its batch is cancelled within seconds), CompletedWithFailures when some
    records failed, NoRecords for a record type without records, Failed (``BelowFloor``) below
    the success floor (the batch is landed in full either way), and OverBudget, without
    starting, when the preflight's cost forecast is above the job's budget.

    Args:
        flow_id: The Runtype flow to run.
        record_type: The record type whose every record it runs over.
        run_key: What makes a re-run idempotent; empty: the scheduled night (UTC date).
        job_name: The job's name in the UI and the tables; empty: the flow's name.
        settings: The warehouse, the key, waiting, money, judgement and publishing.
    """
    log = get_run_logger()
    job = Job(flow_id=flow_id, record_type=record_type, name=job_name)
    run_key = run_key or default_run_key()
    if settings.preflight:
        report = preflight_night([job], run_key, settings)
        emit_preflight_alerts(report)
        if report.failed:
            message = "preflight failed, nothing was started: " + "; ".join(report.problems())
            log.error(message)
            return Failed(message=message)
        if job.name is None and flow_id in report.flow_names:
            (job,) = named_after_flows([job], report.flow_names)
            rename_flow_run(job.display)
        if not report.plans[0].runs:
            skipped = JobResult.of(
                job, run_key, outcome=Outcome.OVER_BUDGET, message=report.plans[0].over_budget
            )
            _alert_unless_dispatched([skipped])
            return state_for(skipped)
    try:
        state = execute_job(job, run_key, settings)
    except Exception as exc:
        _alert_unless_dispatched([job_error_result(job, run_key, exc)])
        raise
    if isinstance(state.data, JobResult):
        _alert_unless_dispatched([state.data])
    return state


def _alert_unless_dispatched(results: list[JobResult]) -> None:
    """Emit the job alerts of a run of its own; a job a nightly dispatched is alerted on by
    the nightly, with the rest of the night."""
    flow_run = runtime.flow_run
    if flow_run.root_flow_run_id in (None, flow_run.id):
        emit_job_alerts(results)
