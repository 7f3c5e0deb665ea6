"""The landed tables on shared storage, as Delta Lake tables (delta-rs): ``step_results`` and
``record_results`` partitioned by batch, and ``batches``.

A batch's results are committed whole, as one overwrite of its partition: the commit is atomic
(a reader sees all of the batch or none of it), re-committing the same batch replaces it rather
than adding to it, and two writers committing the same batch at once conflict and the loser
retries on the new version (measured: benchmarks/bench_table_formats.py, and three processes
overwriting one partition 60 times ended with exactly one copy). Commits of different batches
touch different partitions, so they do not conflict.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

if TYPE_CHECKING:
    # Imported where a read filters, not here: pyarrow.dataset imports pandas (~50 MB of
    # memory), and every process that imports the warehouse imports this package.
    import pyarrow.dataset as ds

from ..connection import WarehouseError
from .location import SharedLocation

T = TypeVar("T")

#: Each landed table's partition column: a batch's results are one partition.
RESULT_PARTITIONS = {"step_results": "batch_execution_id", "record_results": "batch_id"}
#: Every partitioned table's partition column: the quality gate's verdicts by night, too.
PARTITIONS = {**RESULT_PARTITIONS, "quality_verdicts": "night"}
#: Attempts at a commit that keeps losing to concurrent writers before giving up.
MAX_COMMIT_ATTEMPTS = 50


def _deltalake() -> Any:
    try:
        import deltalake
    except ImportError as exc:  # pragma: no cover - the extra is part of every install here
        raise WarehouseError(
            "a shared warehouse needs the 'shared' extra: pip install 'runtype-prefect[shared]'"
        ) from exc
    return deltalake


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class DeltaTables:
    """The shared location's Delta tables: commit a batch, read what was committed."""

    def __init__(
        self, location: SharedLocation, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.location = location
        self.options = location.storage_options()
        self._sleep = sleep
        #: Tables known to exist (they are never dropped): not looked for before each commit.
        self._known: set[str] = set()

    def _retrying(self, commit: Callable[[], T]) -> T:
        """Run ``commit``, again on a concurrent writer's conflict, with jittered back-off."""
        deltalake = _deltalake()
        for attempt in range(1, MAX_COMMIT_ATTEMPTS + 1):
            try:
                return commit()
            except deltalake.exceptions.CommitFailedError:
                if attempt == MAX_COMMIT_ATTEMPTS:
                    raise
                self._sleep(random.uniform(0.0, min(2.0, 0.05 * 2**attempt)))
        raise AssertionError("unreachable")  # pragma: no cover

    def _table(self, name: str) -> Any | None:
        deltalake = _deltalake()
        uri = self.location.table_uri(name)
        if name not in self._known and not deltalake.DeltaTable.is_deltatable(
            uri, storage_options=self.options
        ):
            return None
        self._known.add(name)
        return deltalake.DeltaTable(uri, storage_options=self.options)

    def _ensure(self, name: str, schema: pa.Schema) -> None:
        """Create table ``name`` empty, with ``schema``, unless it exists (a table once seen is
        not looked for again). Two first writers may race to create it: the loser finds it."""
        deltalake = _deltalake()
        if name in self._known:
            return
        uri = self.location.table_uri(name)
        if not deltalake.DeltaTable.is_deltatable(uri, storage_options=self.options):
            column = PARTITIONS.get(name)
            try:
                deltalake.write_deltalake(
                    uri,
                    schema.empty_table(),
                    mode="append",
                    partition_by=[column] if column else None,
                    storage_options=self.options,
                )
            except deltalake.exceptions.DeltaError:
                if not deltalake.DeltaTable.is_deltatable(uri, storage_options=self.options):
                    raise
        self._known.add(name)

    def replace_partition(self, name: str, value: str, rows: pa.Table) -> None:
        """Replace the partition ``value`` of table ``name`` with ``rows`` in one commit,
        creating the table on first use; retried on conflicts with concurrent writers."""
        deltalake = _deltalake()
        column = PARTITIONS[name]
        self._ensure(name, rows.schema)
        self._retrying(
            lambda: deltalake.write_deltalake(
                self.location.table_uri(name),
                rows,
                mode="overwrite",
                predicate=f"{column} = {_quote(value)}",
                partition_by=[column],
                storage_options=self.options,
            )
        )

    def merge(self, name: str, rows: pa.Table, keys: list[str], update: dict[str, str]) -> None:
        """Merge ``rows`` into table ``name`` on ``keys`` (matched rows get ``update``: column →
        SQL over ``s`` the new row and ``t`` the stored one; new rows are inserted), creating
        the table on first use; retried on conflicts with concurrent writers (each attempt on
        the table's latest version)."""
        on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        self._ensure(name, rows.schema)

        def commit() -> None:
            table = self._table(name)
            assert table is not None
            (
                table.merge(rows, on, source_alias="s", target_alias="t")
                .when_matched_update(update)
                .when_not_matched_insert_all()
                .execute()
            )

        self._retrying(commit)

    def upsert_batch_row(self, row: pa.Table) -> None:
        """Merge one ``batches`` row (keyed by ``batch_id``). A column the row leaves empty
        keeps the shared value (a worker that staged the batch from the ledger knows less than
        the one that started it)."""
        columns = [c for c in row.column_names if c != "batch_id"]
        self.merge("batches", row, ["batch_id"], {c: f"coalesce(s.{c}, t.{c})" for c in columns})

    def merge_records(self, rows: pa.Table, listing: pa.Table) -> None:
        """Merge a record type's listing into ``records`` (a record keeps its first landing
        time and takes the rest from the newest listing) and note it in ``record_listings``."""
        columns = [c for c in rows.column_names if c not in ("record_id", "first_landed_at")]
        self.merge("records", rows, ["record_id"], {c: f"s.{c}" for c in columns})
        self.merge("record_listings", listing, ["record_type", "run_key"], {"records": "s.records"})

    def dataset(self, name: str) -> ds.Dataset | None:
        """Return the latest version of table ``name`` as an Arrow dataset, or None before its
        first commit."""
        table = self._table(name)
        return None if table is None else table.to_pyarrow_dataset()

    def read(self, name: str, where: tuple[str, list[Any]] | None = None) -> pa.Table | None:
        """Return table ``name``, or None before its first commit; ``where=(column, values)``
        keeps the rows whose ``column`` is one of ``values`` (partitions and files that cannot
        hold them are not read)."""
        dataset = self.dataset(name)
        if dataset is None:
            return None
        if where is None:
            return dataset.to_table()
        import pyarrow.dataset as ds

        column, values = where
        return dataset.to_table(filter=ds.field(column).isin(values))
