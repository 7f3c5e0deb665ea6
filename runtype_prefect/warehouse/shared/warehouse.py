"""`SharedWarehouse`: a worker's view of a shared location. It lands into a private staging
DuckDB file exactly as a local run does (the same chunked, exactly-once upserts), and the
moment a batch has landed completely commits the batch's results to the shared Delta tables
in one atomic commit per table. The run ledger lives on the shared store (`ObjectLedger`), so a
start is claimed by one worker among many before Runtype is asked for anything.

A worker killed mid-landing loses only its staging file: the shared ledger names the batch, so
the re-run (on any machine) reconnects to it, pages its results again and commits them; the
commit replaces the batch's partition, so nothing is doubled.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Unpack

import pyarrow as pa

from ..store import BatchFields, Intent, Warehouse
from .ledger import Attempt, ObjectLedger
from .location import SharedLocation
from .objects import object_store
from .pull import Pulled, pull, stage_batch
from .tables import RESULT_PARTITIONS, DeltaTables

#: How long another worker's claimed start may go without naming its batch before this one
#: treats it as abandoned (and reconciles it with the API, as a local run does after a crash).
#: Longer than any start call with its retries.
DEFAULT_LEASE_SECONDS = 600.0
#: How often a worker waiting on another's start looks at the ledger again.
LEDGER_POLL_SECONDS = 1.0


class SharedWarehouse(Warehouse):
    """A `Warehouse` whose ledger and landed batches live at a shared location (``s3://…`` or
    ``file:///…``), for workers on a pool landing concurrently, exactly once.

    Raises `SharedStorageError` when the location cannot be reached, and ValueError for a
    URL that names no shared location.
    """

    def __init__(
        self,
        url: str,
        *,
        staging: str | os.PathLike[str] | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.location = SharedLocation.parse(url)
        self._own_staging = staging is None
        root = Path(staging) if staging else Path(tempfile.mkdtemp(prefix="runtype-staging-"))
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.tables = DeltaTables(self.location, sleep=sleep)
        self.ledger = ObjectLedger(object_store(self.location), owner)
        self._lease = lease_seconds
        self._wait = sleep
        self._clock = clock
        # Per thread: concurrent jobs of one process share this object, and one job pulling into
        # staging must not turn off another's shared writes.
        self._mode = threading.local()
        #: The latest attempt get_intent saw per job-night: a start claims the one after it.
        self._seen: dict[tuple[str, str, str], int] = {}
        super().__init__(root / "staging.duckdb", sleep=sleep)

    def __repr__(self) -> str:
        return f"SharedWarehouse({self.location.url!r})"

    def close(self) -> None:
        """Close the staging database (and delete it when this object created it)."""
        super().close()
        if self._own_staging:
            shutil.rmtree(self.path.parent, ignore_errors=True)

    @property
    def _local_only(self) -> bool:
        return bool(getattr(self._mode, "staging_only", False))

    @contextmanager
    def _staging_only(self) -> Iterator[None]:
        """Write to the staging database only, in this thread (pulling what the shared tables
        already hold)."""
        self._mode.staging_only = True
        try:
            yield
        finally:
            self._mode.staging_only = False

    # --- the ledger, on the shared store -----------------------------------------------------

    def _settled(self, flow_id: str, record_type: str, run_key: str) -> Attempt | None:
        """Return the job's latest attempt once no other live worker is mid-start: a start
        another worker claimed is waited on until it names its batch or its lease runs out."""
        while True:
            attempt = self.ledger.latest(flow_id, record_type, run_key)
            if (
                attempt is None
                or attempt.forgotten
                or attempt.intent.batch_id
                or attempt.owner == self.ledger.owner
            ):
                return attempt
            age = (self._clock() - attempt.intent.requested_at).total_seconds()
            if age >= self._lease:
                return attempt  # abandoned mid-start: the caller reconciles it with the API
            self._wait(LEDGER_POLL_SECONDS)

    def get_intent(self, flow_id: str, record_type: str, run_key: str) -> Intent | None:
        """Return the job's ledger row for ``run_key`` from the shared ledger (waiting while
        another worker is starting it), or None if it never started. A batch another worker
        landed is pulled into the staging database, so its numbers can be summarised here."""
        attempt = self._settled(flow_id, record_type, run_key)
        self._seen[(flow_id, record_type, run_key)] = attempt.number if attempt else 0
        if attempt is None or attempt.forgotten:
            return None
        if attempt.intent.batch_id:
            if super().get_batch(attempt.intent.batch_id) is None:
                self._stage(attempt)  # known from the ledger: its shared row may not exist yet
            self.pull(only={attempt.intent.batch_id})
        return attempt.intent

    def _stage(self, attempt: Attempt) -> None:
        """Write a named attempt's ledger row and a queued batch row to the staging database."""
        intent = attempt.intent
        assert intent.batch_id is not None
        with self._staging_only():
            stage_batch(
                self,
                intent,
                intent.batch_id,
                job_name=attempt.job_name,
                requested_at=intent.requested_at,
                status="queued",
            )

    def record_intent(self, flow_id: str, record_type: str, run_key: str, **fields: Any) -> Intent:
        """Claim the job's start on the shared ledger (the attempt after the one `get_intent`
        last saw), then write the staging ledger row (`Warehouse.record_intent`, same fields);
        return the intent. Raises `StartTakenError` when another worker claimed it first."""
        if not self._local_only:
            seen = self._seen.get((flow_id, record_type, run_key), 0)
            self.ledger.claim_start(flow_id, record_type, run_key, after=seen, **fields)
        return super().record_intent(flow_id, record_type, run_key, **fields)

    def claim_batch(
        self, flow_id: str, record_type: str, run_key: str, batch_id: str, **fields: Any
    ) -> None:
        """Name the batch on the shared ledger, write it to the staging database
        (`Warehouse.claim_batch`, same fields) and its row to the shared ``batches`` table.
        Raises `BatchIdentityError` for a batch named otherwise."""
        if not self._local_only:
            self.ledger.name_batch(flow_id, record_type, run_key, batch_id)
        super().claim_batch(flow_id, record_type, run_key, batch_id, **fields)
        if not self._local_only:
            self._push_batch(batch_id)

    def forget_intent(self, flow_id: str, record_type: str, run_key: str) -> None:
        """Drop the job's latest attempt on the shared ledger and in the staging database."""
        self.ledger.forget(flow_id, record_type, run_key)
        super().forget_intent(flow_id, record_type, run_key)
        latest = self.ledger.latest(flow_id, record_type, run_key)
        self._seen[(flow_id, record_type, run_key)] = latest.number if latest else 0

    def claimed_batch_ids(self) -> set[str]:
        """Return every batch id the shared ledger, the shared batches or staging attribute."""
        shared = self.tables.read("batches")
        ids = set() if shared is None else set(shared["batch_id"].to_pylist())
        return ids | self.ledger.batch_ids() | super().claimed_batch_ids()

    # --- batches and results -----------------------------------------------------------------

    def upsert_batch(self, batch_id: str, **fields: Unpack[BatchFields]) -> None:
        """Update the staging batch row; an outcome is also written to the shared row (progress
        updates stay local: one shared commit per poll would be waste)."""
        super().upsert_batch(batch_id, **fields)
        if "outcome" in fields and not self._local_only:
            self._push_batch(batch_id)

    def mark_landed(self, batch_id: str) -> None:
        """Stamp the batch landed, commit its results to the shared tables (one atomic commit
        per table, replacing the batch's partition), then its shared row, so a reader that sees
        the batch landed finds all of its results."""
        super().mark_landed(batch_id)
        if self._local_only:
            return
        for name, column in RESULT_PARTITIONS.items():
            self.tables.replace_partition(name, batch_id, self._batch_rows(name, column, batch_id))
        self._push_batch(batch_id)

    def land_records(self, table: pa.Table, record_type: str, run_key: str) -> int:
        """Land a record type's listing into the staging ``records`` dimension, then merge it
        into the shared one; return the rows landed."""
        landed = super().land_records(table, record_type, run_key)
        if not self._local_only:
            records = self.query_arrow(
                "SELECT * REPLACE (metadata::VARCHAR AS metadata) FROM records"
                " WHERE record_type = ?",
                [record_type],
            )
            listing = self.query_arrow(
                "SELECT * FROM record_listings WHERE record_type = ? AND run_key = ?",
                [record_type, run_key],
            )
            self.tables.merge_records(records, listing)
        return landed

    def _batch_rows(self, name: str, column: str, batch_id: str) -> pa.Table:
        return self.query_arrow(f"SELECT * FROM {name} WHERE {column} = ?", [batch_id])

    def _push_batch(self, batch_id: str) -> None:
        row = self._batch_rows("batches", "batch_id", batch_id)
        if row.num_rows:
            self.tables.upsert_batch_row(row)

    def record_verdicts(self, night: date, rows: list[dict[str, Any]]) -> None:
        """Store the quality gate's verdicts of ``night`` in staging and replace that night's
        partition of the shared ``quality_verdicts`` (a later night's gate reads them)."""
        super().record_verdicts(night, rows)
        if not self._local_only:
            verdicts = self.query_arrow("SELECT * FROM quality_verdicts WHERE night = ?", [night])
            self.tables.replace_partition("quality_verdicts", night.isoformat(), verdicts)

    def pull(self, *, only: set[str] | None = None, with_steps: bool = True) -> Pulled:
        """Bring batches landed at the shared location (all, or ``only`` these) into the
        staging database; return the counts. ``with_steps=False`` leaves step results out."""
        with self._staging_only():
            return pull(self.tables, self.ledger, self, only=only, with_steps=with_steps)

    def refresh(self) -> None:
        """Bring every batch other workers landed (record results and batch rows, not step
        results) and the earlier nights' verdicts into staging: what the quality gate judges a
        night against."""
        self.pull(with_steps=False)

    def publish_snapshot(self, *, full: bool = False) -> Path:
        """Publish nothing: the staging database holds only this worker's batches. The shared
        location is published for analysts by ``runtype-prefect pull`` (see `pull`). Returns
        where the staging snapshot would be."""
        return self.snapshot_path
