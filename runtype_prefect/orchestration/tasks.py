"""Prefect tasks of one job: start (or reconnect), wait, land, summarise.

Every task that reads remote state uses ``NO_CACHE`` (a cached poll returns a stale status).
Retries are Prefect's, only for errors a retry can cure (`retry_if_transient`); the start task
is safe to retry because it consults the warehouse's ledger before starting anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from ..client import (
    BatchStatus,
    ImmediateRun,
    RunStartUncertainError,
    RuntypeClient,
    is_retryable,
)
from ..jobs import Job
from ..warehouse import Warehouse, WarehouseLockedError
from .landing import land_batch_results, land_immediate_records
from .observability import ProgressReporter, emit_batch_event, link_batch
from .outcomes import AmbiguousBatchError, JobResult, Outcome
from .waiting import follow_batch

#: How far before the recorded request time a batch found in the summary may have started
#: (clock skew between this machine and the API).
RECONCILE_SKEW = timedelta(minutes=5)


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry only errors a retry can cure."""
    exc = state.result(raise_on_failure=False)
    return is_retryable(exc) or isinstance(exc, RunStartUncertainError | WarehouseLockedError)


RETRYING = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_if_transient,
}


@dataclass(frozen=True)
class Started:
    """Where a job stands after `start_or_reconnect`."""

    batch_id: str
    immediate: ImmediateRun | None = None
    reconnected: bool = False
    #: Set when this run key's batch already landed: its outcome, and nothing left to do.
    landed_outcome: Outcome | None = None


def find_started_batch(client: RuntypeClient, job: Job, since: datetime) -> str | None:
    """Return the id of the batch this job started at or after ``since``, if the API shows one.

    Matches the batch summary on flow and record type (or the flow's name where the API gives
    no ids). Raises `AmbiguousBatchError` when more than one batch fits.
    """
    summary = client.get_batch_summary()
    flow_name = None
    candidates = []
    for item in [*summary.batches, *summary.recent]:
        extra = item.model_extra or {}
        if item.flow_id is not None:
            same_flow = item.flow_id == job.flow_id
        else:
            flow_name = flow_name or client.get_flow(job.flow_id).name
            same_flow = item.flow_name == flow_name
        same_type = extra.get("recordType", item.record_type) in (None, job.record_type)
        recent = item.started_at is None or item.started_at >= since - RECONCILE_SKEW
        if same_flow and same_type and recent:
            candidates.append(item.id)
    if len(candidates) > 1:
        raise AmbiguousBatchError(
            f"{len(candidates)} batches could be the one {job.label} started: {candidates}"
        )
    return candidates[0] if candidates else None


@task(name="start-or-reconnect", cache_policy=NO_CACHE, **RETRYING)
def start_or_reconnect(
    client: RuntypeClient,
    warehouse: Warehouse,
    job: Job,
    run_key: str,
    *,
    flow_run_id: str | None = None,
    root_flow_run_id: str | None = None,
    force: bool = False,
) -> Started:
    """Start the job's batch for ``run_key`` unless the ledger shows one; return where it stands.

    Never starts a second batch: a known batch id is reconnected to, a start interrupted before
    the id was known is reconciled through the batch summary, and an ambiguous start error is
    reconciled the same way before this task fails (and Prefect retries it).
    """
    log = get_run_logger()
    intent = warehouse.get_intent(job.flow_id, job.record_type, run_key)
    if force and intent is not None:
        log.info("force=True: starting %s again for %s", job.label, run_key)
        warehouse.forget_intent(job.flow_id, job.record_type, run_key)
        intent = None
    if intent is not None and intent.batch_id:
        row = warehouse.get_batch(intent.batch_id) or {}
        outcome = row.get("outcome")
        landed = row.get("landed_at") is not None and outcome not in (None, "timed_out")
        log.info(
            "%s already has batch %s for %s: %s",
            job.label,
            intent.batch_id,
            run_key,
            "landed, nothing to do" if landed else "reconnecting",
        )
        return Started(
            intent.batch_id, reconnected=True, landed_outcome=Outcome(outcome) if landed else None
        )
    if intent is not None:
        found = find_started_batch(client, job, intent.requested_at)
        if found:
            log.warning(
                "reconciled an interrupted start of %s: adopting batch %s", job.label, found
            )
            _adopt(
                warehouse, job, run_key, found, intent.requested_at, flow_run_id, root_flow_run_id
            )
            return Started(found, reconnected=True)
    requested_at = datetime.now(UTC)
    warehouse.record_intent(
        job.flow_id,
        job.record_type,
        run_key,
        requested_at=requested_at,
        prefect_flow_run_id=flow_run_id,
        job_name=job.label,
    )
    try:
        run = client.run_on_record_type(job.flow_id, job.record_type)
    except RunStartUncertainError:
        found = find_started_batch(client, job, requested_at)
        if found is None:
            raise
        log.warning(
            "start of %s was ambiguous; the API shows batch %s: adopting it", job.label, found
        )
        _adopt(warehouse, job, run_key, found, requested_at, flow_run_id, root_flow_run_id)
        return Started(found, reconnected=True)
    batch_id = run.batch_id or f"immediate-{job.flow_id}-{job.record_type}-{run_key}"
    immediate = run if isinstance(run, ImmediateRun) else None
    _adopt(
        warehouse,
        job,
        run_key,
        batch_id,
        requested_at,
        flow_run_id,
        root_flow_run_id,
        immediate=immediate is not None,
        total=run.record_count,
    )
    log.info(
        "started %s: batch %s, %d records (%s)",
        job.label,
        batch_id,
        run.record_count,
        "ran immediately" if immediate else "deferred",
    )
    emit_batch_event(
        "started",
        batch_id,
        job.label,
        records=run.record_count,
        flow_id=job.flow_id,
        record_type=job.record_type,
    )
    link_batch(f"{client.base_url}batch/status/{batch_id}", batch_id, job.label)
    if immediate is not None:
        # The per-record results of an immediate run exist only in this response: land them now.
        land_immediate_records(warehouse, job, batch_id, immediate)
    return Started(batch_id, immediate=immediate)


def _adopt(
    warehouse: Warehouse,
    job: Job,
    run_key: str,
    batch_id: str,
    requested_at: datetime,
    flow_run_id: str | None,
    root_flow_run_id: str | None,
    *,
    immediate: bool | None = None,
    total: int | None = None,
) -> None:
    warehouse.attach_batch(job.flow_id, job.record_type, run_key, batch_id)
    warehouse.upsert_batch(
        batch_id,
        flow_id=job.flow_id,
        record_type=job.record_type,
        job_name=job.label,
        run_key=run_key,
        prefect_flow_run_id=flow_run_id,
        root_flow_run_id=root_flow_run_id,
        executed_immediately=immediate,
        status="queued" if not immediate else "completed",
        total_records=total,
        requested_at=requested_at,
    )


@task(name="wait-for-batch", cache_policy=NO_CACHE)
def wait_for_batch(
    client: RuntypeClient,
    warehouse: Warehouse,
    batch_id: str,
    job: Job,
    *,
    timeout: float,
    poll_interval: float,
    max_poll_interval: float,
) -> BatchStatus:
    """Follow the batch to a terminal status (see `follow_batch`), updating progress in the UI.

    Raises `BatchWaitTimeout` at the deadline, leaving the batch running.
    """
    log = get_run_logger()
    progress = ProgressReporter(batch_id, job.label)
    last = [-1]

    def on_status(status: BatchStatus) -> None:
        if status.progress == last[0]:
            return  # nothing moved: no log line, no artifact or warehouse write
        last[0] = status.progress
        progress(status.progress)
        log.info(
            "%s: batch %s %s, %d/%d records (%d failed)",
            job.label,
            batch_id,
            status.status.value,
            status.processed_records,
            status.total_records,
            status.failed_records,
        )
        warehouse.upsert_batch(
            batch_id, status=status.status.value, processed_records=status.processed_records
        )

    return follow_batch(
        client,
        batch_id,
        timeout=timeout,
        poll_interval=poll_interval,
        max_poll_interval=max_poll_interval,
        on_status=on_status,
        log=log,
    )


@task(name="land-results", cache_policy=NO_CACHE, **RETRYING)
def land_results(
    client: RuntypeClient,
    warehouse: Warehouse,
    job: Job,
    batch_id: str,
    status: BatchStatus,
    *,
    immediate: bool,
) -> tuple[int, int]:
    """Prefect task around `land_batch_results` (retried for transient errors); returns
    (records, steps) landed."""
    records, steps = land_batch_results(
        client, warehouse, job, batch_id, status, immediate=immediate
    )
    get_run_logger().info("%s: landed %d record and %d step results", job.label, records, steps)
    return records, steps


def summarise_job(
    warehouse: Warehouse, job: Job, run_key: str, batch_id: str, **extra: Any
) -> JobResult:
    """Return the job's numbers, computed from what the warehouse holds for its batch."""
    rec = warehouse.query(
        "SELECT count(*), count(*) FILTER (WHERE success), count(*) FILTER (WHERE NOT success),"
        " quantile_cont(execution_time_s, 0.5), quantile_cont(execution_time_s, 0.95)"
        " FROM record_results WHERE batch_id = ?",
        [batch_id],
    )[0]
    steps = warehouse.query(
        "SELECT coalesce(sum(total_tokens), 0), coalesce(sum(estimated_cost), 0)"
        " FROM step_results WHERE batch_execution_id = ?",
        [batch_id],
    )[0]
    return JobResult.of(
        job,
        run_key,
        batch_id=batch_id,
        records=rec[0],
        succeeded=rec[1],
        failed=rec[2],
        p50_seconds=rec[3],
        p95_seconds=rec[4],
        tokens=int(steps[0]),
        cost_usd=float(steps[1]),
        **extra,
    )
