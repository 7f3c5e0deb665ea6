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
from datetime import timedelta

from ..client import BatchSummaryItem, RuntypeClient
from ..warehouse import Intent
from .jobs import Job
from .outcomes import AmbiguousBatchError

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


def adopt_command(job: Job, run_key: str, batch_id: str = "BATCH") -> str:
    """Return the command that settles an ambiguous start by hand."""
    return (
        f"runtype-prefect adopt --flow-id {job.flow_id} --record-type {job.record_type}"
        f" --run-key {run_key} --batch-id {batch_id}"
    )


def judge(
    item: BatchSummaryItem,
    *,
    job: Job,
    flow_name: str | None,
    intent: Intent,
    claimed: set[str],
) -> Candidate | None:
    """Return the item as a candidate with its problems, or None when it is another flow's."""
    if item.flow_id is not None:
        if item.flow_id != job.flow_id:
            return None
    elif item.flow_name is None or item.flow_name != flow_name:
        return None
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
    summary = client.get_batch_summary()
    items = [*summary.batches, *summary.recent]
    flow_name = None
    if any(i.flow_id is None for i in items):
        flow_name = client.get_flow(job.flow_id).name
    judged = [
        c
        for i in items
        if (c := judge(i, job=job, flow_name=flow_name, intent=intent, claimed=claimed))
    ]
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
        f"cannot tell which batch {job.label} started for {intent.run_key!r} ({reason}); "
        f"nothing was adopted or started. Batches of its flow:\n{lines}\n"
        f"Settle it by hand: {adopt_command(job, intent.run_key)}, or with --start-new"
        " instead of --batch-id when none of them is it"
    )
