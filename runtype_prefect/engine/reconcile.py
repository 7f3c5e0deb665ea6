"""Recognising the batch an interrupted start became, from what the API shows in the spec's
shapes only (the batch summary names a flow by its *name* and carries no record type).

A batch is adopted only when exactly one fits every rule: same flow; started after the
intent was written, by the API's own clock (with a small margin); not attributed to another
job already; as many records as the record type had when the start was asked for. Anything
else ends the job with `AmbiguousBatchError` naming the candidates and the command that settles
it, because adopting the wrong batch loses a night silently and starting again pays twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from ..client import BatchSummaryItem, RuntypeClient
from ..warehouse import Intent
from .jobs import Job
from .outcomes import AmbiguousBatchError, NightAlreadyRunError

#: Margin on the API's clock: its ``Date`` header has whole seconds.
API_CLOCK_MARGIN = timedelta(seconds=5)
#: Margin when the API sent no ``Date`` and our clock stands in for it (machine clock skew).
LOCAL_CLOCK_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class Candidate:
    """A batch of the job's flow from the summary, and why it may not be ours."""

    item: BatchSummaryItem
    problems: tuple[str, ...]

    def describe(self) -> str:
        """Return one line: id, records, start, status and any problems."""
        i = self.item
        started = i.started_at.isoformat() if i.started_at else "start unknown"
        why = f" — {', '.join(self.problems)}" if self.problems else ""
        return f"{i.id} ({i.total_records} records, {started}, {i.status}){why}"


def adopt_command(job: Job, run_key: str, batch_id: str = "BATCH", part: str = "") -> str:
    """Return the command that settles an ambiguous start (of ``part`` of the night) by hand."""
    return (
        f"runtype-prefect adopt --flow-id {job.flow_id} --record-type {job.record_type}"
        f" --run-key {run_key}" + (f" --part '{part}'" if part else "") + f" --batch-id {batch_id}"
    )


def batches_of_flow(client: RuntypeClient, job: Job) -> list[BatchSummaryItem]:
    """Return the batches the summary shows (active and recent) of the job's flow: by its id,
    or by its name where the summary gives only names (the flow is read once for its name)."""
    summary = client.get_batch_summary()
    items = [*summary.batches, *summary.recent]
    flow_name = None
    if any(i.flow_id is None for i in items):
        flow_name = client.get_flow(job.flow_id).name
    return [
        i
        for i in items
        if (i.flow_id == job.flow_id if i.flow_id is not None else i.flow_name == flow_name)
    ]


def judge(item: BatchSummaryItem, *, intent: Intent, claimed: set[str]) -> Candidate:
    """Return a batch of the job's flow as a candidate with its problems."""
    problems = []
    if item.id in claimed:
        problems.append("already another job's")
    if intent.expected_records is not None and item.total_records != intent.expected_records:
        problems.append(f"{intent.expected_records} records expected")
    since, margin = (
        (intent.api_requested_at, API_CLOCK_MARGIN)
        if intent.api_requested_at is not None
        else (intent.requested_at, LOCAL_CLOCK_MARGIN)
    )
    if item.started_at is not None and item.started_at < since - margin:
        problems.append(f"started before the intent ({since.isoformat()})")
    return Candidate(item, tuple(problems))


def find_started_batch(
    client: RuntypeClient, job: Job, intent: Intent, claimed: set[str]
) -> str | None:
    """Return the id of the batch ``intent`` became, or None when the API shows none.

    ``claimed`` holds the batch ids already attributed to jobs. Raises `AmbiguousBatchError`
    when more than one batch fits, or one fits but its start time is unknown.
    """
    judged = [judge(i, intent=intent, claimed=claimed) for i in batches_of_flow(client, job)]
    fitting = [c for c in judged if not c.problems]
    if len(fitting) == 1 and fitting[0].item.started_at is not None:
        return fitting[0].item.id
    if not fitting:
        return None
    reason = (
        f"{len(fitting)} batches fit"
        if len(fitting) > 1
        else "one batch fits but the API does not say when it started"
    )
    lines = "\n".join(f"  - {c.describe()}" for c in judged)
    raise AmbiguousBatchError(
        f"cannot tell which batch {job.label} started for {intent.run_key!r}"
        + (f" ({intent.part})" if intent.part else "")
        + f" ({reason}); "
        f"nothing was adopted or started. Batches of its flow:\n{lines}\n"
        f"Settle it by hand: {adopt_command(job, intent.run_key, part=intent.part)}, or with"
        " --start-new"
        " instead of --batch-id when none of them is it"
    )


def night_of(run_key: str) -> tuple[datetime, datetime] | None:
    """Return the UTC day a run key names (a scheduled night), or None for another key."""
    try:
        night = date.fromisoformat(run_key)
    except ValueError:
        return None
    start = datetime.combine(night, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


def check_night_not_run_elsewhere(
    client: RuntypeClient, job: Job, run_key: str, records: int, claimed: set[str], where: str
) -> None:
    """Refuse a fresh start of the job for a night the API shows as already run: a batch of the
    job's flow over ``records`` records, started on that night (its UTC day, by the API's
    clock), that no ledger entry here (``claimed``) attributes to a job. That is the night's
    batch landed into another warehouse (``where`` names this one): starting again would pay
    twice. A run key that is not a date names no night: nothing to check.

    Raises `NightAlreadyRunError` naming the batches and the ways out.
    """
    night = night_of(run_key)
    if night is None:
        return
    found = [
        i
        for i in batches_of_flow(client, job)
        if i.id not in claimed
        and i.total_records == records
        and i.started_at is not None
        and night[0] <= i.started_at < night[1]
    ]
    if found:
        batches = ", ".join(
            f"{i.id} ({i.total_records} records, started {i.started_at:%Y-%m-%d %H:%M} UTC,"
            f" {i.status})"
            for i in found
        )
        raise NightAlreadyRunError(
            f"{job.label}: the API shows {batches} for the night {run_key}, and the warehouse"
            f" {where} has no record of it: the night already ran into another warehouse"
            " (a mistyped --db?). Nothing was started. Point --db at that warehouse; or attribute"
            f" the batch to this one: {adopt_command(job, run_key, found[0].id)}; or run again"
            " with --force to start a new batch (paid again)."
        )
