"""Landing a batch's results: the API pages → the warehouse, without Prefect.

The Prefect tasks wrap these functions; the benchmarks call them directly, so both measure
and run exactly the same work.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow as pa

from ..client import BatchState, BatchStatus, ImmediateRun, Record, RuntypeClient
from ..warehouse import (
    Warehouse,
    batch_record_results_table,
    record_results_table,
    records_table,
    step_results_table,
)
from .jobs import Job


@dataclass(frozen=True)
class Landing:
    """What one landing of a batch wrote, and whether the warehouse now holds all of it."""

    records: int
    steps: int
    #: Record results the batch should have in the warehouse, and how many it has.
    expected_records: int
    landed_records: int

    @property
    def complete(self) -> bool:
        """True when every record the batch processed (all of them, for a completed batch)
        is in the warehouse."""
        return self.landed_records >= self.expected_records

    @property
    def missing(self) -> str:
        """Return what is missing, in words ("" when complete)."""
        if self.complete:
            return ""
        return f"{self.landed_records} of {self.expected_records} record results landed"


def expected_records(status: BatchStatus) -> int:
    """Return how many record results a batch in ``status`` must have landed to be complete:
    every record for a completed batch (even one that says so early), what was processed for
    a failed or cancelled one."""
    if status.status is BatchState.COMPLETED:
        return status.total_records
    return status.processed_records


#: The GIL switch interval while a landing runs (Python's default is 5 ms).
LANDING_SWITCH_INTERVAL = 0.001
_switching = threading.Lock()
_landings = 0
_usual_interval = sys.getswitchinterval()


@contextmanager
def _prompt_handoffs() -> Iterator[None]:
    """Lower the interpreter's GIL switch interval while at least one landing runs.

    The writer thread needs the GIL for a moment several times per chunk (register, execute,
    commit) while the fetching thread runs Python for every page; at the default 5 ms each of
    those moments waits out the fetcher's slice. Measured landing 1M step results in 8 MiB
    chunks: 158,000 rows/s at 5 ms, 194,000 at 1 ms.
    """
    global _landings, _usual_interval
    with _switching:
        if _landings == 0:
            _usual_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(_usual_interval, LANDING_SWITCH_INTERVAL))
        _landings += 1
    try:
        yield
    finally:
        with _switching:
            _landings -= 1
            if _landings == 0:
                sys.setswitchinterval(_usual_interval)


def land_overlapped(chunks: Iterable[pa.Table], land: Callable[[pa.Table], int]) -> int:
    """Land each of ``chunks`` in order with ``land`` (one transaction each) while the next
    chunk is fetched and parsed; return the sum of what ``land`` returned.

    Fetching (sockets, Arrow's JSON reader) and landing (DuckDB) both run outside the GIL,
    so on two cores the two overlap (`_prompt_handoffs`); at most one chunk lands while one more
    is built. An error on either side is raised once the chunk in flight has committed or
    rolled back.
    """
    total = 0
    with _prompt_handoffs(), ThreadPoolExecutor(1, thread_name_prefix="landing") as writer:
        landing: Future[int] | None = None
        try:
            for chunk in chunks:
                if landing is not None:
                    total += landing.result()
                landing = writer.submit(land, chunk)
        finally:
            if landing is not None:
                # Wait for the chunk in flight even when fetching failed, so it ends whole.
                total += landing.result()
    return total


def land_immediate_records(warehouse: Warehouse, job: Job, batch_id: str, run: ImmediateRun) -> int:
    """Land the per-record results carried by an immediate run's response; return the count."""
    rows = [
        {
            "batch_id": batch_id,
            "record_id": r.record_id,
            "record_name": r.record_name,
            "record_type": job.record_type,
            "flow_id": job.flow_id,
            "status": "completed" if r.success else "failed",
            "success": r.success,
            "error": r.error,
            "execution_id": r.execution_id,
            "reported_execution_time_s": r.execution_time,
            "reported_context_steps": r.context_steps,
            "reported_prompts_executed": r.prompts_executed,
            "executed_at": run.completed_at,
            "failed_at": None if r.success else run.completed_at,
        }
        for r in run.results
    ]
    return warehouse.land_record_results(record_results_table(rows))


def immediate_status(batch_id: str, run: ImmediateRun) -> BatchStatus:
    """Return the terminal status an immediate run's response implies."""
    failed = run.failure_count
    return BatchStatus(
        batch_execution_id=batch_id,
        flow_id=run.flow_id,
        status=BatchState.COMPLETED,
        total_records=run.record_count,
        processed_records=run.record_count,
        failed_records=failed,
        success_count=run.record_count - failed,
        progress=100,
        started_at=run.completed_at,
        completed_at=run.completed_at,
    )


def land_batch_results(
    client: RuntypeClient,
    warehouse: Warehouse,
    job: Job,
    batch_id: str,
    status: BatchStatus,
    *,
    immediate: bool,
) -> Landing:
    """Page the batch's per-record and per-step results into the warehouse, record its numbers
    and, only when the warehouse now holds every record result the batch should have, stamp
    it landed; return what was landed.

    Pages stream through as Arrow tables of about 8 MiB of JSON each (the client's byte
    budget), one transaction each, so memory stays bounded whatever the batch's size and a
    crash leaves no partial chunk; the next chunk is fetched while one is landing, and the
    record results are paged beside the step results. Idempotent: re-landing leaves the tables
    identical, and an incomplete batch landed again later gains only what is new. An
    immediate run's records came with its response (see `land_immediate_records`), so only its
    steps are paged here.
    """

    def land_record_pages() -> int:
        return land_overlapped(
            client.iter_batch_record_result_tables(batch_id),
            lambda chunk: warehouse.land_record_results(
                batch_record_results_table(
                    chunk, batch_id=batch_id, record_type=job.record_type, flow_id=job.flow_id
                )
            ),
        )

    with ThreadPoolExecutor(1, thread_name_prefix="record-results") as beside:
        # The two listings are paged at once: against a remote API each page is mostly
        # waiting, and their transactions write different tables.
        pending = None if immediate else beside.submit(land_record_pages)
        try:
            steps = land_overlapped(
                client.iter_step_result_tables(job.flow_id, batch_execution_id=batch_id),
                lambda chunk: warehouse.land_step_results(
                    step_results_table(chunk, record_type=job.record_type)
                ),
            )
        finally:
            records = 0 if pending is None else pending.result()
    warehouse.derive_record_metrics(batch_id)
    cost = client.get_batch_cost(batch_id).total_cost_usd if status.total_records else 0.0
    warehouse.upsert_batch(
        batch_id,
        status=status.status.value,
        total_records=status.total_records,
        processed_records=status.processed_records,
        failed_records=status.failed_records,
        success_count=status.success_count,
        started_at=status.started_at,
        completed_at=status.completed_at,
        total_cost_usd=cost,
    )
    landed_records, _ = warehouse.landed_counts(batch_id)
    landing = Landing(records, steps, expected_records(status), landed_records)
    if landing.complete:
        warehouse.mark_landed(batch_id)
    return landing


def land_records(
    client: RuntypeClient,
    warehouse: Warehouse,
    record_type: str,
    run_key: str,
    listing: Sequence[Record] | None = None,
) -> int | None:
    """Land the records of ``record_type`` (``listing`` when the caller paged it already, else
    the records listing, paged within the client's limits) into the ``records`` dimension, once
    per run key; return how many, or None when this run key's listing was landed already
    (another job over the same type, a re-run, an incremental night's choice) and nothing was
    paged.

    Raises what the client raises (`RuntypeError`).
    """
    if warehouse.records_listed(record_type, run_key):
        return None
    records = client.list_records(type=record_type) if listing is None else listing
    rows = [
        {
            "record_id": r.id,
            "record_type": r.type or record_type,
            "name": r.name,
            "metadata": json.dumps(r.metadata, default=str),
            "created_at": r.created_at,
            "updated_at": r.updated_at,
        }
        for r in records
    ]
    return warehouse.land_records(records_table(rows), record_type, run_key)
