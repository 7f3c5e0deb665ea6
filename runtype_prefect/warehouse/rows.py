"""The one mapping from the API's results to the warehouse's rows: Arrow pages → Arrow tables
with the warehouse's column names and types (`LANDED_COLUMNS`; a test holds the DDL to it).

Pages arrive as Arrow batches (the client validates them by its models' schema), so a result
row never becomes a Python object here: columns are renamed, cast to the warehouse's types and
completed with what the job knows (see benchmarks/bench_landing.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

TS = pa.timestamp("us", tz="UTC")

#: step_results columns as the API model names them (StepResult field -> Arrow type).
STEP_FIELDS: list[tuple[str, pa.DataType]] = [
    ("id", pa.string()),
    ("batch_execution_id", pa.string()),
    ("execution_session_id", pa.string()),
    ("flow_id", pa.string()),
    ("flow_version_id", pa.string()),
    ("record_id", pa.string()),
    ("record_name", pa.string()),
    ("step_id", pa.string()),
    ("step_name", pa.string()),
    ("step_type", pa.string()),
    ("order", pa.int32()),
    ("status", pa.string()),
    ("started_at", TS),
    ("completed_at", TS),
    ("created_at", TS),
    ("duration_ms", pa.int64()),
    ("output_preview", pa.string()),
    ("model_used", pa.string()),
    ("prompt_tokens", pa.int32()),
    ("completion_tokens", pa.int32()),
    ("total_tokens", pa.int32()),
    ("estimated_cost", pa.decimal128(18, 8)),
    ("error_message", pa.string()),
    ("resolved_prompt", pa.string()),
    ("retry_count", pa.int32()),
    ("user_id", pa.string()),
    ("organization_id", pa.string()),
]
#: Warehouse names that differ from the model's (``order`` is an SQL keyword).
_RENAMES = {"order": "step_order"}

RECORD_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("batch_id", pa.string()),
    ("record_id", pa.string()),
    ("record_name", pa.string()),
    ("record_type", pa.string()),
    ("flow_id", pa.string()),
    ("status", pa.string()),
    ("success", pa.bool_()),
    ("error", pa.string()),
    ("execution_id", pa.string()),
    ("execution_time_s", pa.float64()),
    ("context_steps", pa.int32()),
    ("prompts_executed", pa.int32()),
    ("executed_at", TS),
    ("failed_at", TS),
    ("reported_execution_time_s", pa.float64()),
    ("reported_context_steps", pa.int32()),
    ("reported_prompts_executed", pa.int32()),
]
#: Derived from the batch's steps once they land (`Warehouse.derive_record_metrics`, defined
#: by analytics/07_record_step_totals.sql): never in a landed page, so an upsert keeps them.
DERIVED_RECORD_COLUMNS = ("execution_time_s", "context_steps", "prompts_executed")


def _column(table: pa.Table, name: str, dtype: pa.DataType) -> pa.ChunkedArray:
    """Return ``name`` cast to the warehouse's type."""
    column = table[name]
    if pa.types.is_decimal(dtype) and column.type != dtype:
        column = pc.round(column, dtype.scale)  # a cost finer than the column's scale
    return column.cast(dtype)


def step_results_table(table: pa.Table, *, record_type: str | None) -> pa.Table:
    """Return step_results rows (without ``landed_at``) from Arrow step results named as the
    API model's fields (what the client's ``iter_step_result_tables`` yields).

    Costs with more than 8 decimal places are rounded to 8 (the column's scale); integers that
    do not fit the column raise `pyarrow.ArrowInvalid` (nothing is truncated).
    """
    columns = {_RENAMES.get(name, name): _column(table, name, dtype) for name, dtype in STEP_FIELDS}
    columns["record_type"] = pa.repeat(pa.scalar(record_type, pa.string()), table.num_rows)
    return pa.table(columns)


def batch_record_results_table(
    table: pa.Table, *, batch_id: str, record_type: str, flow_id: str
) -> pa.Table:
    """Return record_results rows (without ``landed_at``) from Arrow per-record results of a
    deferred batch, named as the API model's fields (``record`` a struct with ``name``)."""
    n = table.num_rows
    status = table["status"]

    def constant(value: str) -> pa.Array:
        return pa.repeat(pa.scalar(value, pa.string()), n)

    columns = {
        "batch_id": constant(batch_id),
        "record_id": table["record_id"],
        "record_name": pc.struct_field(table["record"], "name"),
        "record_type": constant(record_type),
        "flow_id": constant(flow_id),
        "status": status,
        "success": pc.equal(status, "completed"),
        "error": table["error"],
        "execution_id": _column(table, "execution_id", pa.string()),
        "executed_at": _column(table, "executed_at", TS),
        "failed_at": _column(table, "failed_at", TS),
    }
    return pa.table(columns).cast(pa.schema([c for c in RECORD_COLUMNS if c[0] in columns]))


def _from_dicts(rows: Sequence[dict[str, Any]], columns: list[tuple[str, pa.DataType]]) -> pa.Table:
    return pa.table({name: pa.array([r.get(name) for r in rows], type=t) for name, t in columns})


def record_results_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Return an Arrow table of record_results rows (without ``landed_at``) from plain dicts.
    A derived column (`DERIVED_RECORD_COLUMNS`) no row names is left out, so upserting the
    table keeps what the steps gave it."""
    named = {key for row in rows for key in row}
    return _from_dicts(
        rows, [c for c in RECORD_COLUMNS if c[0] not in DERIVED_RECORD_COLUMNS or c[0] in named]
    )


#: records columns (the dimension) as landing writes them; metadata is JSON text.
RECORD_DIM_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("record_id", pa.string()),
    ("record_type", pa.string()),
    ("name", pa.string()),
    ("metadata", pa.string()),
    ("created_at", TS),
    ("updated_at", TS),
]


def records_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Return an Arrow table of ``records`` rows (the dimension) from plain dicts, ``metadata``
    already JSON text."""
    return _from_dicts(rows, RECORD_DIM_COLUMNS)


def _step_columns() -> list[tuple[str, pa.DataType]]:
    columns = [(_RENAMES.get(name, name), dtype) for name, dtype in STEP_FIELDS]
    return [*columns, ("record_type", pa.string())]


#: Every landed table's columns, in the order landing writes them (``landed_at`` is added by
#: the warehouse on first landing).
LANDED_COLUMNS: dict[str, list[tuple[str, pa.DataType]]] = {
    "step_results": [*_step_columns(), ("landed_at", TS)],
    "record_results": [*RECORD_COLUMNS, ("landed_at", TS)],
}
