"""`Replicator`: what a worker landed in its staging database, copied to the shared Delta
tables — a batch's row, its results once it landed (one atomic commit per table), a record
type's listing, a night's verdicts. It reads staging and writes the shared tables; it never
writes staging."""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from ..store import Warehouse
from .tables import RESULT_PARTITIONS, DeltaTables


class Replicator:
    """Copies rows from ``staging`` to ``tables``. Raises what `DeltaTables` raises."""

    def __init__(self, staging: Warehouse, tables: DeltaTables) -> None:
        self.staging = staging
        self.tables = tables

    def _rows(self, name: str, column: str, value: object) -> pa.Table:
        return self.staging.query_arrow(f"SELECT * FROM {name} WHERE {column} = ?", [value])

    def batch_row(self, batch_id: str) -> None:
        """Upsert the batch's row into the shared ``batches`` table (if staging has it)."""
        row = self._rows("batches", "batch_id", batch_id)
        if row.num_rows:
            self.tables.upsert_batch_row(row)

    def landed_batch(self, batch_id: str) -> None:
        """Commit the batch's results (replacing its partition of each results table), then
        its row: a reader that sees the batch landed finds all of its results."""
        for name, column in RESULT_PARTITIONS.items():
            self.tables.replace_partition(name, batch_id, self._rows(name, column, batch_id))
        self.batch_row(batch_id)

    def records(self, record_type: str, run_key: str) -> None:
        """Merge the record type's rows of the ``records`` dimension and this listing into
        the shared ones."""
        records = self.staging.query_arrow(
            "SELECT * REPLACE (metadata::VARCHAR AS metadata) FROM records WHERE record_type = ?",
            [record_type],
        )
        listing = self.staging.query_arrow(
            "SELECT * FROM record_listings WHERE record_type = ? AND run_key = ?",
            [record_type, run_key],
        )
        self.tables.merge_records(records, listing)

    def verdicts(self, night: date) -> None:
        """Replace the night's partition of the shared ``quality_verdicts``."""
        rows = self._rows("quality_verdicts", "night", night)
        self.tables.replace_partition("quality_verdicts", night.isoformat(), rows)
