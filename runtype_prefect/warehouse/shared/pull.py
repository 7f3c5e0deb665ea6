"""Pulling the shared tables into a local DuckDB warehouse: the analysts' side of a shared
location (the SQL models, notebooks and report then read it as they read a local one), and the
way a worker's staging database learns a batch another worker landed.

Incremental: a batch is pulled when the shared table says it landed and the local database has
not landed it yet, so the cost follows the new batches, not the history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import pyarrow as pa

from ..rows import RECORD_DIM_COLUMNS
from ..store import BATCH_FIELDS, BatchFields, Intent, JobKey, Warehouse
from .ledger import ObjectLedger
from .tables import PARTITIONS, DeltaTables

#: Rows per local upsert while pulling (one transaction each).
CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class Pulled:
    """What one pull brought into the local warehouse."""

    batches: int
    landed_batches: int
    record_results: int
    step_results: int
    #: Record listings (record type × run key) new to the local warehouse.
    listings: int = 0


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return list(table.to_pylist())


def _chunks(table: pa.Table) -> Iterable[pa.Table]:
    for start in range(0, table.num_rows, CHUNK_ROWS):
        yield table.slice(start, CHUNK_ROWS)


def _results(tables: DeltaTables, name: str, batch_ids: list[str]) -> pa.Table | None:
    column = PARTITIONS[name]
    table = tables.read(name, (column, batch_ids))
    if table is None:
        return None
    return table.drop_columns([c for c in ("landed_at",) if c in table.column_names])


def pull(
    tables: DeltaTables,
    ledger: ObjectLedger,
    warehouse: Warehouse,
    *,
    only: set[str] | None = None,
    with_steps: bool = True,
) -> Pulled:
    """Bring the shared batches (all, or ``only`` these ids) into ``warehouse``: every batch row,
    its ledger row, and the results of each batch that landed in the shared tables but not yet
    locally (without step results when not ``with_steps``: a replica for the quality gate,
    which reads records only); with all batches, the record listings and the quality gate's
    verdicts of nights the local warehouse lacks too; return the counts.

    Raises `WarehouseError` (or `SharedStorageError`) when the location cannot be read.
    """
    listings = 0
    if only is None:
        listings = pull_records(tables, warehouse)
        pull_verdicts(tables, warehouse)
    shared = tables.read("batches", None if only is None else ("batch_id", sorted(only)))
    if shared is None:
        return Pulled(0, 0, 0, 0, listings)
    rows = _rows(shared)
    local = {r[0]: r[1] for r in warehouse.query("SELECT batch_id, landed_at FROM batches")}
    to_land = [
        r["batch_id"]
        for r in rows
        if r.get("landed_at") is not None and local.get(r["batch_id"]) is None
    ]
    records = steps = 0
    if to_land:
        record_rows = _results(tables, "record_results", to_land)
        for chunk in _chunks(record_rows) if record_rows is not None else ():
            records += warehouse.land_record_results(chunk)
        step_rows = _results(tables, "step_results", to_land) if with_steps else None
        for chunk in _chunks(step_rows) if step_rows is not None else ():
            steps += warehouse.land_step_results(chunk)
    for row in rows:
        batch_id = row["batch_id"]
        fields = {k: row.get(k) for k in BATCH_FIELDS if k in row and k != "landed_at"}
        flow_id, record_type, run_key = (
            row.get("flow_id"),
            row.get("record_type"),
            row.get("run_key"),
        )
        intent = (
            ledger.intent_of(JobKey(flow_id, record_type, run_key), batch_id)
            if batch_id not in local and flow_id and record_type and run_key
            else None
        )
        if intent is not None:
            identity = ("flow_id", "record_type", "run_key", "requested_at", "job_name")
            stage_batch(
                warehouse,
                intent,
                batch_id,
                job_name=row.get("job_name"),
                requested_at=row.get("requested_at") or intent.requested_at,
                **{k: v for k, v in fields.items() if k not in identity},
            )
        else:
            warehouse.upsert_batch(batch_id, **cast(BatchFields, fields))
        if batch_id in to_land:
            warehouse.mark_landed(batch_id)
    return Pulled(len(rows), len(to_land), records, steps, listings)


def stage_batch(
    warehouse: Warehouse,
    intent: Intent,
    batch_id: str,
    *,
    job_name: str | None,
    requested_at: datetime,
    **fields: Any,
) -> None:
    """Write the ledger row of ``intent`` and its batch row (``fields``) to ``warehouse``: a
    batch named elsewhere, known here. Raises `BatchIdentityError` for a batch stored as
    another job's."""
    warehouse.record_intent(
        intent.key,
        requested_at=intent.requested_at,
        prefect_flow_run_id=intent.prefect_flow_run_id,
        job_name=job_name,
        api_requested_at=intent.api_requested_at,
        expected_records=intent.expected_records,
    )
    warehouse.claim_batch(
        intent.key,
        batch_id,
        requested_at=requested_at,
        job_name=job_name,
        **fields,
    )


def pull_records(tables: DeltaTables, warehouse: Warehouse) -> int:
    """Bring the record listings the local warehouse lacks, and the shared ``records`` rows of
    their record types, into ``warehouse``; return how many listings were new."""
    shared = tables.read("record_listings")
    if shared is None:
        return 0
    local = set(warehouse.query("SELECT record_type, run_key FROM record_listings"))
    new = [r for r in _rows(shared) if (r["record_type"], r["run_key"]) not in local]
    columns = [name for name, _ in RECORD_DIM_COLUMNS]
    for record_type in sorted({r["record_type"] for r in new}):
        listed = sorted((r for r in new if r["record_type"] == record_type), key=_run_key)
        records = tables.read("records", ("record_type", [record_type]))
        # The records as the newest listing left them, noted under that listing; the older
        # new listings are noted with the counts they had.
        latest = listed[-1]
        if records is not None:
            warehouse.land_records(records.select(columns), record_type, latest["run_key"])
        with warehouse.transaction() as cur:
            for listing in listed:
                cur.execute(
                    "INSERT OR REPLACE INTO record_listings VALUES (?, ?, ?, ?)",
                    [record_type, listing["run_key"], listing["records"], listing["landed_at"]],
                )
    return len(new)


def pull_verdicts(tables: DeltaTables, warehouse: Warehouse) -> int:
    """Bring the quality gate's verdicts of the nights the local warehouse has none of into
    ``warehouse``; return how many nights."""
    shared = tables.read("quality_verdicts")
    if shared is None:
        return 0
    local = {r[0] for r in warehouse.query("SELECT DISTINCT night FROM quality_verdicts")}
    nights: dict[Any, list[dict[str, Any]]] = {}
    for row in _rows(shared):
        if row["night"] not in local:
            nights.setdefault(row["night"], []).append(row)
    for night, rows in sorted(nights.items()):
        warehouse.record_verdicts(night, rows)
    return len(nights)


def _run_key(listing: dict[str, Any]) -> str:
    return str(listing["run_key"])
