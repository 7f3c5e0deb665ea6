"""`SharedWarehouse`: a worker's view of a shared location. It lands into a private staging
DuckDB file exactly as a local run does (the same chunked, exactly-once upserts), and the
moment a batch has landed completely commits the batch's results to the shared Delta tables
in one atomic commit per table. The run ledger lives on the shared store (`ObjectLedger`), so a
start is claimed by one worker among many before Runtype is asked for anything.

It is a `Warehouse` (the staging file: every read and landing method is the local one) composed
with two collaborators: the `ObjectLedger`, which arbitrates starts between workers, and the
`Replicator`, which copies what landed to the shared tables. What it pulls from the shared
location is written through `staging`, the staging file's plain view, so nothing pulled is
replicated back.

A worker killed mid-landing loses only its staging file: the shared ledger names the batch, so
the re-run (on any machine) reconnects to it, pages its results again and commits them; the
commit replaces the batch's partition, so nothing is doubled.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Unpack

import pyarrow as pa

from ..connection import WarehouseError
from ..store import BatchFields, Intent, JobKey, Selection, Warehouse
from .ledger import Attempt, ObjectLedger
from .location import SharedLocation
from .objects import object_store
from .pull import Pulled, pull, stage_batch
from .replicator import Replicator
from .tables import DeltaTables

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
        #: The latest attempt get_intent saw per job-night: a start claims the one after it.
        self._seen: dict[JobKey, int] = {}
        super().__init__(root / "staging.duckdb", sleep=sleep)
        #: The staging file alone: what is pulled from the shared location is written here.
        self.staging = self.local_view()
        self.replicator = Replicator(self.staging, self.tables)

    def __repr__(self) -> str:
        return f"SharedWarehouse({self.location.url!r})"

    def close(self) -> None:
        """Close the staging database (and delete it when this object created it)."""
        super().close()
        if self._own_staging:
            shutil.rmtree(self.path.parent, ignore_errors=True)

    # --- the ledger, on the shared store -----------------------------------------------------

    def _settled(self, key: JobKey) -> Attempt | None:
        """Return the job's latest attempt once no other live worker is mid-start: a start
        another worker claimed is waited on until it names its batch or its lease runs out."""
        while True:
            attempt = self.ledger.latest(key)
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

    def get_intent(self, key: JobKey) -> Intent | None:
        """Return the job's ledger row for ``run_key`` from the shared ledger (waiting while
        another worker is starting it), or None if it never started. A batch another worker
        landed is pulled into the staging database, so its numbers can be summarised here."""
        attempt = self._settled(key)
        self._seen[key] = attempt.number if attempt else 0
        if attempt is None or attempt.forgotten:
            return None
        intent = attempt.intent
        if intent.batch_id:
            if self.staging.get_batch(intent.batch_id) is None:
                # Known from the ledger: its shared row may not exist yet.
                stage_batch(
                    self.staging,
                    intent,
                    intent.batch_id,
                    job_name=attempt.job_name,
                    requested_at=intent.requested_at,
                    status="queued",
                )
            self.pull(only={intent.batch_id})
        return intent

    def record_intent(self, key: JobKey, **fields: Any) -> Intent:
        """Claim the job's start on the shared ledger (the attempt after the one `get_intent`
        last saw), then write the staging ledger row (`Warehouse.record_intent`, same fields);
        return the intent. Raises `StartTakenError` when another worker claimed it first."""
        self.ledger.claim_start(key, after=self._seen.get(key, 0), **fields)
        return super().record_intent(key, **fields)

    def claim_batch(self, key: JobKey, batch_id: str, **fields: Any) -> None:
        """Name the batch on the shared ledger, write it to the staging database
        (`Warehouse.claim_batch`, same fields) and its row to the shared ``batches`` table.
        Raises `BatchIdentityError` for a batch named otherwise."""
        self.ledger.name_batch(key, batch_id)
        super().claim_batch(key, batch_id, **fields)
        self.replicator.batch_row(batch_id)

    def forget_intent(self, key: JobKey) -> None:
        """Drop the job's latest attempt on the shared ledger and in the staging database."""
        self.ledger.forget(key)
        super().forget_intent(key)
        latest = self.ledger.latest(key)
        self._seen[key] = latest.number if latest else 0

    def fix_selection(self, selection: Selection) -> Selection:
        """Refuse: the records a run over chosen records runs are kept in one warehouse file,
        and workers sharing a location could each choose differently. Raises
        `WarehouseError` naming the way out."""
        raise WarehouseError(
            f"{self.location.url}: incremental and repair runs need a local warehouse (the"
            " records they choose are kept in it); run this job with mode 'full' here"
        )

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
        if "outcome" in fields:
            self.replicator.batch_row(batch_id)

    def mark_landed(self, batch_id: str) -> None:
        """Stamp the batch landed, then commit its results and row to the shared tables."""
        super().mark_landed(batch_id)
        self.replicator.landed_batch(batch_id)

    def land_records(self, table: pa.Table, record_type: str, run_key: str) -> int:
        """Land a record type's listing into the staging ``records`` dimension, then merge it
        into the shared one; return the rows landed."""
        landed = super().land_records(table, record_type, run_key)
        self.replicator.records(record_type, run_key)
        return landed

    def record_verdicts(self, night: date, rows: list[dict[str, Any]]) -> None:
        """Store the quality gate's verdicts of ``night`` in staging and replace that night's
        partition of the shared ``quality_verdicts`` (a later night's gate reads them)."""
        super().record_verdicts(night, rows)
        self.replicator.verdicts(night)

    def pull(self, *, only: set[str] | None = None, with_steps: bool = True) -> Pulled:
        """Bring batches landed at the shared location (all, or ``only`` these) into the
        staging database; return the counts. ``with_steps=False`` leaves step results out."""
        return pull(self.tables, self.ledger, self.staging, only=only, with_steps=with_steps)

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
