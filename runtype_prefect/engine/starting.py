"""Starting a job's batch exactly once, without Prefect: the ledger row first, the batch id
the moment the API names it, reconnection to a known batch, and reconciliation of a start whose
answer was lost. The Prefect task (`tasks.start_or_reconnect`) wraps `start_job`, and so can a
plain loop (the benchmarks)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ..client import (
    ImmediateRun,
    RunStart,
    RunStartUncertainError,
    RuntypeClient,
    RuntypeError,
    ScheduledBatch,
)
from ..warehouse import Intent, StartTakenError, Warehouse
from .jobs import Job, JobRun
from .landing import land_immediate_records
from .outcomes import Outcome, StartUnresolvedError
from .reconcile import check_night_not_run_elsewhere, find_started_batch

_log = logging.getLogger(__name__)


@contextmanager
def _no_slot(flow_id: str) -> Iterator[None]:
    yield


@dataclass(frozen=True)
class Started:
    """Where a job stands after `start_or_reconnect`."""

    batch_id: str
    immediate: ImmediateRun | None = None
    reconnected: bool = False
    #: Set when this run key's batch already landed completely: its outcome, nothing to do.
    landed_outcome: Outcome | None = None
    #: True when this call started the batch (rather than finding or adopting it).
    new: bool = False
    records: int | None = None


def start_job(
    client: RuntypeClient,
    warehouse: Warehouse,
    run: JobRun,
    *,
    slot: Callable[[str], AbstractContextManager[Any]] = _no_slot,
    log: logging.Logger | logging.LoggerAdapter[Any] = _log,
) -> Started:
    """Start the job's batch for its run key unless the ledger shows one; return where it
    stands.

    Never starts a second batch: a known batch id is reconnected to; a start interrupted before
    the id was known, or answered ambiguously, is reconciled through the batch summary
    (`find_started_batch`) while holding ``slot(flow_id)`` (the Prefect layer passes the flow's
    start slot), so at most one start per flow is in doubt at a time. Raises
    `AmbiguousBatchError` when reconciliation cannot tell, `StartUnresolvedError` when the
    look-up fails too, `BatchIdentityError` when the API names a batch the warehouse holds
    for another job, and `NightAlreadyRunError` when the API shows the night's batch that this
    warehouse has no record of (unless ``settings.force``). With a shared warehouse, a start
    another worker claimed first is followed (its batch reconnected to), never repeated.
    """
    job, run_key, force = run.job, run.run_key, run.settings.force
    intent = warehouse.get_intent(run.key)
    if force and intent is not None:
        log.info("settings.force: starting %s again for %s", job.label, run_key)
        warehouse.forget_intent(run.key)
        intent = None
    if intent is not None and intent.batch_id:
        row = warehouse.get_batch(intent.batch_id) or {}
        landed = row.get("landed_at") is not None and row.get("outcome") is not None
        log.info(
            "%s already has batch %s for %s: %s",
            job.label,
            intent.batch_id,
            run_key,
            "landed completely, nothing to do" if landed else "reconnecting",
        )
        return Started(
            intent.batch_id,
            reconnected=True,
            landed_outcome=Outcome(row["outcome"]) if landed else None,
        )
    try:
        return _start(client, warehouse, run, intent, slot=slot, log=log, check_night=not force)
    except StartTakenError as taken:
        # A shared warehouse: another worker claimed this start first. Follow its batch
        # (the ledger is read again, waiting for the batch to be named) instead of starting one.
        log.info("%s: %s; following its batch", job.label, taken)
        unforced = replace(run, settings=run.settings.model_copy(update={"force": False}))
        return start_job(client, warehouse, unforced, slot=slot, log=log)


def _start(
    client: RuntypeClient,
    warehouse: Warehouse,
    run: JobRun,
    intent: Intent | None,
    *,
    slot: Callable[[str], AbstractContextManager[Any]],
    log: logging.Logger | logging.LoggerAdapter[Any],
    check_night: bool = True,
) -> Started:
    """Start the job's batch (reconciling an interrupted start first) under its flow's slot;
    with ``check_night``, a fresh start first asks the API whether the night already ran
    elsewhere (`check_night_not_run_elsewhere`)."""
    job, run_key = run.job, run.run_key
    ids = {"prefect_flow_run_id": run.flow_run_id, "root_flow_run_id": run.root_flow_run_id}
    with slot(job.flow_id):
        if intent is not None:
            found = find_started_batch(client, job, intent, warehouse.claimed_batch_ids())
            if found:
                log.warning(
                    "reconciled an interrupted start of %s: adopting batch %s", job.label, found
                )
                claim(warehouse, job, intent, found, **ids)
                return Started(found, reconnected=True)
        # One small listing call: the type's count for a whole-type start, and the API's
        # clock (its Date) for either kind, which reconciliation compares start times with.
        count = client.count_records(job.record_type)
        chosen = run.record_ids
        expected = count.count if chosen is None else len(chosen)
        if check_night and intent is None and chosen is None:
            check_night_not_run_elsewhere(
                client,
                job,
                run_key,
                count.count,
                warehouse.claimed_batch_ids(),
                where=repr(warehouse),
            )
        intent = warehouse.record_intent(
            run.key,
            requested_at=datetime.now(UTC),
            prefect_flow_run_id=run.flow_run_id,
            job_name=job.label,
            api_requested_at=count.as_of,
            expected_records=expected,
        )
        try:
            answer = _start_call(client, run)
        except RunStartUncertainError as start_error:
            try:
                found = find_started_batch(client, job, intent, warehouse.claimed_batch_ids())
            except RuntypeError as lookup_error:
                raise StartUnresolvedError(start_error, lookup_error) from lookup_error
            if found is None:
                raise
            log.warning(
                "start of %s was ambiguous; the API shows batch %s: adopting it", job.label, found
            )
            claim(warehouse, job, intent, found, **ids)
            return Started(found, reconnected=True)
        batch_id = answer.batch_id or f"immediate-{job.flow_id}-{job.record_type}-{run_key}"
        records = answer.record_count
        immediate = answer if isinstance(answer, ImmediateRun) else None
        claim(
            warehouse,
            job,
            intent,
            batch_id,
            executed_immediately=immediate is not None,
            status="completed" if immediate else "queued",
            total_records=answer.record_count,
            **ids,
        )
    log.info(
        "started %s%s: batch %s, %d records (%s)",
        job.label,
        f" ({run.part})" if run.part else "",
        batch_id,
        records,
        "ran immediately" if immediate else "deferred",
    )
    if immediate is not None:
        # The per-record results of an immediate run exist only in this response: land them now.
        land_immediate_records(warehouse, job, batch_id, immediate)
    return Started(batch_id, immediate=immediate, new=True, records=records)


def _start_call(client: RuntypeClient, run: JobRun) -> RunStart:
    """Ask the API to start ``run``: over the whole record type, or over its chosen records
    (one ``POST /batch/flow``, answered by a batch to follow, like a deferred run)."""
    job = run.job
    if run.record_ids is None:
        return client.run_on_record_type(job.flow_id, job.record_type)
    (submitted,) = client.submit_batch(job.flow_id, list(run.record_ids))
    return ScheduledBatch(
        batch_id=submitted.batch_execution_id,
        flow_id=job.flow_id,
        record_type=job.record_type,
        record_count=len(run.record_ids),
        status=submitted.status,
    )


def claim(warehouse: Warehouse, job: Job, intent: Intent, batch_id: str, **fields: Any) -> None:
    """Attach ``batch_id`` to the job's ledger row and write its batch row (see
    `Warehouse.claim_batch`); raises `BatchIdentityError` for a batch stored as another's."""
    fields.setdefault("status", "queued")
    warehouse.claim_batch(
        intent.key,
        batch_id,
        requested_at=intent.requested_at,
        job_name=job.label,
        **fields,
    )


def adopt_batch(
    client: RuntypeClient,
    warehouse: Warehouse,
    job: Job,
    run_key: str,
    batch_id: str,
    part: str = "",
) -> None:
    """Attribute ``batch_id`` to the job's night (or ``part`` of it) by hand (settling an
    `AmbiguousBatchError`).

    Checks with the API that the batch exists and belongs to the job's flow. Raises
    `NotFoundError` for an unknown batch, ValueError for another flow's batch or a night that
    already has a batch, and `BatchIdentityError` for a batch another job holds.
    """
    status = client.get_batch_status(batch_id)
    if status.flow_id is not None and status.flow_id != job.flow_id:
        raise ValueError(f"batch {batch_id!r} ran flow {status.flow_id!r}, not {job.flow_id!r}")
    intent = warehouse.get_intent(job.key(run_key, part))
    if intent is not None and intent.batch_id:
        raise ValueError(f"{job.label} already has batch {intent.batch_id!r} for {run_key!r}")
    if intent is None:
        intent = warehouse.record_intent(
            job.key(run_key, part),
            requested_at=datetime.now(UTC),
            prefect_flow_run_id=None,
            job_name=job.label,
        )
    claim(
        warehouse,
        job,
        intent,
        batch_id,
        status=status.status.value,
        total_records=status.total_records,
    )


def forget_start(warehouse: Warehouse, job: Job, run_key: str, part: str = "") -> None:
    """Drop the job's unsettled ledger row for ``run_key`` (and ``part``) so the next run
    starts afresh.

    Raises ValueError when the row already names a batch (re-running reconnects to it).
    """
    intent = warehouse.get_intent(job.key(run_key, part))
    if intent is not None and intent.batch_id:
        raise ValueError(
            f"{job.label} has batch {intent.batch_id!r} for {run_key!r}: a re-run reconnects to"
            " it (run with --force to start a new one)"
        )
    warehouse.forget_intent(job.key(run_key, part))
