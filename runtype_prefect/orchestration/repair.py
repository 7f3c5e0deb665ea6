"""The ``repair-night`` flow: re-run the records that failed in one night's batches of a job,
exactly once (the ``repair`` deployment and ``runtype-prefect repair``)."""

# No postponed annotations here: a served flow is pickled by value with only the names its
# body uses, and Prefect validates its parameters against these annotations.

from prefect import flow, runtime
from prefect.client.schemas.objects import State

from ..engine.jobs import Job
from ..engine.selection import Repair
from ..engine.settings import JobSettings
from .job_run import execute_job
from .record_type import cancel_in_flight_batches


def repair_run_name() -> str:
    """The flow run's name: ``repair 2026-12-06 · Lead Enrichment · lead``."""
    params = runtime.flow_run.parameters
    job = params.get("job_name") or params.get("flow_id")
    return f"repair {params.get('run_key')} · {job} · {params.get('record_type')}"


@flow(
    name="repair-night",
    flow_run_name=repair_run_name,
    on_cancellation=[cancel_in_flight_batches],
)
def repair_night(
    flow_id: str,
    record_type: str,
    run_key: str,
    job_name: str | None = None,
    transient_only: bool = False,
    settings: JobSettings = JobSettings(),
) -> State:
    """Re-run the records that failed in the night's batches of a job (every part of it,
    earlier repairs excluded), as batches of their own that count for that night.

    The records are chosen once and kept: a second identical repair reconnects to its batch
    or does nothing (``settings.force`` chooses again). Records deleted since are left out.
    Nothing to repair ends Completed (``NothingToRun``) without starting anything.

    Args:
        flow_id: The Runtype flow of the job.
        record_type: The job's record type.
        run_key: The night to repair (its run key).
        job_name: The job's name in the UI and the tables; empty: the flow's name.
        transient_only: Only failures a re-run may cure: timeouts, rate limits, 5xx.
        settings: The warehouse, the key, waiting, money, judgement and publishing.
    """
    job = Job(flow_id=flow_id, record_type=record_type, name=job_name)
    return execute_job(job, run_key, settings, repair=Repair(transient_only=transient_only))
