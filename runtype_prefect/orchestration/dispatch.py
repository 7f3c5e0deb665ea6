"""Spreading a night's jobs across a work pool: each job becomes a flow run of the ``on-demand``
deployment (`run_deployment`), picked up by whichever worker is free, landing into the shared
warehouse. The nightly waits for each run and reads its outcome and numbers back from the
shared tables (not from the run's result, which lives on the worker that ran it)."""

from __future__ import annotations

from prefect import get_run_logger
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.states import State

from ..engine.errors import StopError
from ..engine.jobs import Job, JobRun
from ..engine.outcomes import Outcome
from ..engine.resources import process_warehouse
from ..engine.settings import JobSettings
from ..warehouse import is_shared_location, location_key
from .job_run import job_error_result, state_for
from .tasks import summarise_job

#: The deployment a nightly dispatches its jobs to (deployments/prefect.yaml).
ON_DEMAND_DEPLOYMENT = "run-record-type/on-demand"


class DispatchNeedsSharedWarehouseError(StopError, ValueError):
    """Jobs were to be dispatched to other workers, but the warehouse is a local file."""


def check_dispatchable(db_path: str | None) -> None:
    """Raise `DispatchNeedsSharedWarehouseError` unless ``db_path`` names a shared location:
    a run on another machine cannot land into this machine's DuckDB file (and on this one, the
    nightly holds its lock)."""
    location = location_key(db_path)
    if not is_shared_location(location):
        raise DispatchNeedsSharedWarehouseError(
            "dispatching jobs to a work pool needs a shared warehouse (db_path s3://bucket/prefix"
            f" or file:///path), not the DuckDB file {location!r}"
        )


def dispatch_job(job: Job, run_key: str, settings: JobSettings, deployment: str) -> State:
    """Run ``job`` for ``run_key`` as a flow run of ``deployment`` (a child of this run, so it
    shows under the nightly in the UI and Prefect's cancellation clean-up cancels it with the
    nightly), wait for it, and return the state showing its outcome (`state_for`), with the
    numbers the shared tables hold for its batch. ``settings`` go as they are (the nightly's
    job settings: no preflight, no publishing of its own) with the job's mode. A run that
    ended without naming a batch returns the failed result of its state."""
    log = get_run_logger()
    # The job's own mode (jobs file) goes with it: the flow takes a job's fields, not its mode.
    mode = JobRun(job, run_key, settings).mode
    parameters = {
        "flow_id": job.flow_id,
        "record_type": job.record_type,
        "job_name": job.name,
        "run_key": run_key,
        "settings": settings.model_copy(update={"mode": mode}).model_dump(mode="json"),
    }
    flow_run = run_deployment(deployment, parameters=parameters, timeout=None, as_subflow=True)
    assert isinstance(flow_run, FlowRun)  # called from sync code: the sync variant ran
    state = flow_run.state
    log.info("%s: dispatched run %s ended %s", job.label, flow_run.name, state and state.name)
    with process_warehouse(settings.db_path) as warehouse:
        intent = warehouse.get_intent(job.key(run_key))
        row = warehouse.get_batch(intent.batch_id) if intent and intent.batch_id else None
        if intent is None or intent.batch_id is None or row is None or not row.get("outcome"):
            message = state.message if state and state.message else "no outcome recorded"
            error = RuntimeError(f"dispatched run {flow_run.name} ended without one: {message}")
            return state_for(job_error_result(job, run_key, error))
        result = summarise_job(
            warehouse,
            job,
            run_key,
            intent.batch_id,
            outcome=Outcome(row["outcome"]),
            message=(state.message or "") if state else "",
        )
    return state_for(result)
