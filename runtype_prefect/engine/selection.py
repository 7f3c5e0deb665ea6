"""Choosing the records of a run over chosen records, without Prefect: an incremental night
runs the records new, changed or failed since their last result from the flow; the choice is
kept in the warehouse before anything starts, so every re-run of the night runs the same
records (or reconnects to their batches) instead of choosing again.

A choice of more records than one ``POST /batch/flow`` takes is run as several parts, each a
start of its own in the ledger ("incremental 1/2", "incremental 2/2").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ..client import NotFoundError, Record, RuntypeClient, split_record_ids
from ..warehouse import Selection, Warehouse
from .jobs import JobRun
from .landing import land_records

INCREMENTAL = "incremental"
REPAIR = "repair"

#: Reasons a record is chosen, in the order the preflight and the logs list them.
CHANGED, NEW, FAILED = "changed", "new", "failed"
#: Reasons an incremental night runs the whole record type instead.
FIRST_RUN, NEW_VERSION = "no earlier results", "flow version changed"


def choose_incremental(client: RuntypeClient, warehouse: Warehouse, run: JobRun) -> Selection:
    """Return the records an incremental night of ``run``'s job runs (not yet kept):

    - the records created or updated since their last successful result from the flow;
    - the records whose last result failed;
    - never a record the listing no longer shows (deleted);
    - every record (``whole_type``) when nothing ran before, or when the flow's published
      version differs from the one its last run over the whole type ran.

    The record type's listing is paged; only results of earlier run keys count. With the
    setting ``records_dimension`` the same listing lands as the night's records dimension, so
    the night pages it once. Raises what the client raises.
    """
    job = run.job
    records = client.list_records(type=job.record_type)
    if run.settings.records_dimension:
        land_records(client, warehouse, job.record_type, run.run_key, listing=records)
    latest = warehouse.latest_results(job.flow_id, job.record_type, before=run.run_key)
    whole_reason = None
    if not latest:
        whole_reason = FIRST_RUN
    else:
        ran = warehouse.last_full_run_version(job.flow_id, job.record_type)
        published = _published_version(client, job.flow_id)
        if ran is not None and published is not None and ran != published:
            whole_reason = NEW_VERSION
    chosen: list[str] = []
    reasons = {CHANGED: 0, NEW: 0, FAILED: 0}
    if whole_reason is None:
        for record in records:
            reason = _reason(record, latest.get(record.id))
            if reason is not None:
                chosen.append(record.id)
                reasons[reason] += 1
    whole = whole_reason is not None or (bool(records) and len(chosen) == len(records))
    if whole:
        chosen, reasons = [], {whole_reason or "every record changed": len(records)}
    return Selection(
        flow_id=job.flow_id,
        record_type=job.record_type,
        run_key=run.run_key,
        scope=INCREMENTAL,
        whole_type=whole,
        record_ids=tuple(chosen),
        reasons=reasons,
        type_records=len(records),
        selection_hash=selection_hash(chosen),
        chosen_at=datetime.now(UTC),
    )


def night_selection(client: RuntypeClient, warehouse: Warehouse, run: JobRun) -> Selection:
    """Return the records ``run``'s incremental night runs: the choice kept for the night, or
    a new one (`choose_incremental`) kept now, before anything starts (`kept_selection`).
    Raises what the client raises, and `WarehouseError` where the warehouse cannot keep a
    choice (a shared location)."""
    return kept_selection(
        warehouse, run, INCREMENTAL, lambda: choose_incremental(client, warehouse, run)
    )


def kept_selection(
    warehouse: Warehouse, run: JobRun, scope: str, choose: Callable[[], Selection]
) -> Selection:
    """Return the choice kept for ``run``'s night in ``scope``, or keep and return the one
    ``choose()`` makes; with ``settings.force``, choose again."""
    key = run.job.key(run.run_key)
    if run.settings.force:
        warehouse.forget_selection(key, scope)
    kept = warehouse.get_selection(key, scope)
    if kept is not None:
        return kept
    return warehouse.fix_selection(choose())


@dataclass(frozen=True)
class Repair:
    """A request to re-run the records that failed in a night's batches of a job."""

    #: Only failures a re-run may cure: timeouts, rate limits, 5xx (`is_transient_error`).
    transient_only: bool = False

    @property
    def scope(self) -> str:
        """The choice's scope, and its parts' name: ``repair`` or ``repair transient``."""
        return REPAIR + (" transient" if self.transient_only else "")


def repair_selection(
    client: RuntypeClient, warehouse: Warehouse, run: JobRun, repair: Repair
) -> Selection:
    """Return the records a repair of ``run``'s night re-runs (kept like an incremental
    night's, so a second identical repair starts nothing): the records that failed in the
    night's batches of the job (`Warehouse.failed_in_night`), less those the records listing
    no longer shows (deleted since). Raises what the client raises."""

    def choose() -> Selection:
        failed, batches = warehouse.failed_in_night(
            run.job.key(run.run_key), transient_only=repair.transient_only
        )
        listing = client.list_records(type=run.job.record_type) if failed else []
        existing = {r.id for r in listing}
        chosen = [record_id for record_id in failed if record_id in existing]
        reasons = {"failed (transient)" if repair.transient_only else FAILED: len(chosen)}
        if len(chosen) < len(failed):  # counted, not run: the API would refuse their ids
            reasons["deleted since"] = len(failed) - len(chosen)
        return Selection(
            flow_id=run.job.flow_id,
            record_type=run.job.record_type,
            run_key=run.run_key,
            scope=repair.scope,
            whole_type=False,
            record_ids=tuple(chosen),
            reasons=reasons,
            type_records=len(existing),
            selection_hash=selection_hash(chosen),
            chosen_at=datetime.now(UTC),
            repairs=tuple(batches),
        )

    return kept_selection(warehouse, run, repair.scope, choose)


def _reason(record: Record, latest: tuple[bool, datetime | None] | None) -> str | None:
    """Return why an incremental night runs ``record`` (None: it is up to date)."""
    if latest is None:
        return NEW
    succeeded, last_success = latest
    if not succeeded:
        return FAILED
    changed_at = record.updated_at or record.created_at
    if last_success is None or (changed_at is not None and changed_at > last_success):
        return CHANGED
    return None


def _published_version(client: RuntypeClient, flow_id: str) -> str | None:
    """Return the flow's published version id, or None when it has none or the API does not
    say."""
    try:
        return client.get_published_version(flow_id).id
    except NotFoundError:
        return None


def selection_hash(record_ids: list[str] | tuple[str, ...]) -> str:
    """Return a short digest of a record set (order-independent), kept with the choice as its
    identity (the parts of a night are named by scope and number)."""
    digest = hashlib.sha256("\n".join(sorted(record_ids)).encode())
    return digest.hexdigest()[:16]


def part_runs(run: JobRun, selection: Selection) -> list[JobRun]:
    """Return the runs that start ``selection``: the run itself (the whole record type) when
    it chose every record, else one run per part of at most one ``POST /batch/flow``, each
    with its records and its part's name ("incremental 1/2"); none for an empty choice."""
    if selection.whole_type:
        return [run]
    parts = split_record_ids(list(selection.record_ids))
    return [
        replace(run, part=f"{selection.scope} {i}/{len(parts)}", record_ids=tuple(ids))
        for i, ids in enumerate(parts, start=1)
    ]


def describe(selection: Selection) -> str:
    """Return the choice in words: "312 of 1,200 records: 240 changed, 60 failed, 12 new"."""
    if selection.whole_type:
        (reason,) = selection.reasons
        return f"every record ({selection.type_records:,}): {reason}"
    reasons = ", ".join(f"{n:,} {why}" for why, n in selection.reasons.items() if n)
    chosen = len(selection.record_ids)
    if not chosen:
        nothing = "nothing to repair" if selection.scope.startswith(REPAIR) else "nothing changed"
        return f"0 of {selection.type_records:,} records: {nothing}"
    return f"{chosen:,} of {selection.type_records:,} records: {reasons}"
