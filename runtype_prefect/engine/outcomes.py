"""Typed outcomes of a job, and the errors the orchestration layer raises."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from ..client import (
    BatchState,
    BatchStatus,
    BatchWaitTimeout,
    RuntypeError,
    RuntypeTimeoutError,
)
from .errors import RunError, StopError
from .jobs import Job


class Outcome(StrEnum):
    """How a job ended, as the platform engineer needs to read it."""

    COMPLETED = "completed"
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    NO_RECORDS = "no_records"
    #: The batch said it ended but not every record result could be landed (yet): a re-run
    #: reconnects and lands the rest.
    INCOMPLETE = "incomplete"
    #: The preflight's cost forecast exceeded a budget: the job was not started.
    OVER_BUDGET = "over_budget"
    #: Landed in full, but fewer records succeeded than the job's floor: a bad night.
    BELOW_FLOOR = "below_floor"
    ERROR = "error"  # the job itself failed (bad key, unknown flow, ...) before an outcome
    #: A run over chosen records found none to run (nothing changed, nothing to repair).
    NOTHING_TO_RUN = "nothing_to_run"

    @property
    def ok(self) -> bool:
        """True when the job needs no attention (clean success)."""
        return self in (Outcome.COMPLETED, Outcome.NOTHING_TO_RUN)

    @property
    def failed(self) -> bool:
        """True when the job did not produce a complete result."""
        return self in (
            Outcome.FAILED,
            Outcome.CANCELLED,
            Outcome.TIMED_OUT,
            Outcome.INCOMPLETE,
            Outcome.BELOW_FLOOR,
            Outcome.ERROR,
        )


def outcome_of(
    status: BatchStatus, *, complete: bool = True, min_success_rate: float = 0.0
) -> Outcome:
    """Return the outcome of a batch in a terminal remote status whose landing was (or was
    not) ``complete``; a landed batch whose records succeeded less often than
    ``min_success_rate`` is `Outcome.BELOW_FLOOR`."""
    if status.status is BatchState.COMPLETED and not complete:
        return Outcome.INCOMPLETE
    if status.status is BatchState.CANCELLED:
        return Outcome.CANCELLED
    if status.status is BatchState.FAILED:
        return Outcome.FAILED
    if status.total_records == 0:
        return Outcome.NO_RECORDS
    if not status.failed_records:
        return Outcome.COMPLETED
    succeeded = status.total_records - status.failed_records
    if succeeded < min_success_rate * status.total_records:
        return Outcome.BELOW_FLOOR
    return Outcome.COMPLETED_WITH_FAILURES


def outcome_of_error(exc: BaseException) -> Outcome:
    """Return the outcome of a job that an error ended before it had one: ``timed_out`` when
    waiting for the batch ran out of time, else ``error``."""
    return Outcome.TIMED_OUT if isinstance(exc, BatchWaitTimeout) else Outcome.ERROR


class JobResult(BaseModel):
    """What one job produced: the batch, its outcome and the numbers behind it."""

    job: str
    flow_id: str
    record_type: str
    run_key: str
    batch_id: str | None = None
    outcome: Outcome
    reconnected: bool = False
    records: int = 0
    succeeded: int = 0
    failed: int = 0
    p50_seconds: float | None = None
    p95_seconds: float | None = None
    tokens: int = 0
    #: The sum of the steps' cost estimates.
    estimated_cost_usd: float = 0.0
    #: The cost the API reports for the batch (None when it reported none).
    billed_cost_usd: float | None = None
    message: str = ""

    @classmethod
    def of(cls, job: Job, run_key: str, **fields: Any) -> JobResult:
        """Return the result of ``job`` for ``run_key`` with the given numbers."""
        return cls(
            job=job.label,
            flow_id=job.flow_id,
            record_type=job.record_type,
            run_key=run_key,
            **fields,
        )

    @property
    def success_rate(self) -> float | None:
        """Succeeded records over all records, or None without records."""
        return self.succeeded / self.records if self.records else None


#: Which outcome a job of several parts takes: the first of these that any part had.
_WORST_FIRST = (
    Outcome.ERROR,
    Outcome.CANCELLED,
    Outcome.TIMED_OUT,
    Outcome.FAILED,
    Outcome.INCOMPLETE,
    Outcome.BELOW_FLOOR,
    Outcome.OVER_BUDGET,
    Outcome.COMPLETED_WITH_FAILURES,
    Outcome.COMPLETED,
    Outcome.NO_RECORDS,
)


def combine(job: Job, run_key: str, parts: list[JobResult]) -> JobResult:
    """Return one result for a job-night run as several parts (a run over more chosen records
    than one call takes): counts, tokens and costs added up, the worst outcome of any part,
    the slowest part's percentiles, every part's message; ``batch_id`` the first part's."""
    outcome = next(o for o in _WORST_FIRST if any(p.outcome is o for p in parts))
    billed = [p.billed_cost_usd for p in parts if p.billed_cost_usd is not None]
    p50s = [p.p50_seconds for p in parts if p.p50_seconds is not None]
    p95s = [p.p95_seconds for p in parts if p.p95_seconds is not None]
    return JobResult.of(
        job,
        run_key,
        batch_id=parts[0].batch_id,
        outcome=outcome,
        reconnected=all(p.reconnected for p in parts),
        records=sum(p.records for p in parts),
        succeeded=sum(p.succeeded for p in parts),
        failed=sum(p.failed for p in parts),
        p50_seconds=max(p50s) if p50s else None,
        p95_seconds=max(p95s) if p95s else None,
        tokens=sum(p.tokens for p in parts),
        estimated_cost_usd=sum(p.estimated_cost_usd for p in parts),
        billed_cost_usd=sum(billed) if billed else None,
        message="; ".join(f"{p.batch_id}: {p.message or p.outcome.value}" for p in parts),
    )


class AmbiguousBatchError(StopError):
    """Reconciliation found more than one batch that could be the one this job started."""


class NightAlreadyRunError(StopError):
    """The API shows a batch of this job's night that the warehouse has no record of: the
    night ran into another warehouse. Nothing was started; a stop, not a retry."""


class StartUnresolvedError(RunError):
    """A start's answer was lost and looking for the batch failed too; nothing else started.

    The message names the start's failure first (the call that failed first), then the
    look-up's. ``retryable`` is False when the look-up timed out: the endpoint is not
    answering, so retrying the task would only spend more of the night.
    """

    def __init__(self, start_error: Exception, lookup_error: RuntypeError) -> None:
        self.start_error = start_error
        self.lookup_error = lookup_error
        self.retryable = lookup_error.retryable and not isinstance(
            lookup_error, RuntypeTimeoutError
        )
        super().__init__(
            f"{start_error}; looking for the batch in the batch summary failed too"
            f" ({type(lookup_error).__name__}: {lookup_error}). Nothing else was started:"
            " a re-run reconciles first."
        )
