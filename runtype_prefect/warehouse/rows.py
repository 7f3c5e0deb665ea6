"""The one mapping from the API's results to the warehouse's rows: API models → Arrow tables
with the warehouse's column names and types (`LANDED_COLUMNS`; a test holds the DDL to it).

Rows go to Arrow in one C++ pass over the models' own attribute dicts (no per-field Python
work), the cheapest route from parsed models into DuckDB (see benchmarks/bench_landing.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa

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
    ("retry_count", pa.int32()),
    ("user_id", pa.string()),
    ("organization_id", pa.string()),
]
_STEP_SCHEMA = pa.schema(STEP_FIELDS)
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
]


def _fields(step: Any) -> dict[str, Any]:
    # Pydantic models keep their fields in __dict__: reading it avoids a per-field Python call.
    fields: dict[str, Any] = step.__dict__
    return fields


def _fields_exact(step: Any) -> dict[str, Any]:
    cost = step.estimated_cost
    fields: dict[str, Any] = step.__dict__
    if cost is None:
        return fields
    return {**fields, "estimated_cost": cost.quantize(Decimal("0.00000001"))}


def step_results_table(steps: Sequence[Any], *, record_type: str | None) -> pa.Table:
    """Return an Arrow table of step_results rows (without ``landed_at``) for ``steps``.

    Costs with more than 8 decimal places are rounded to 8 (the column's scale).
    """
    try:
        table = pa.Table.from_pylist([_fields(s) for s in steps], schema=_STEP_SCHEMA)
    except pa.ArrowInvalid:  # a cost finer than the column's scale
        table = pa.Table.from_pylist([_fields_exact(s) for s in steps], schema=_STEP_SCHEMA)
    table = table.rename_columns([_RENAMES.get(n, n) for n in table.column_names])
    extras = [(s.model_extra or {}).get("resolvedPrompt") for s in steps]
    return table.append_column("resolved_prompt", pa.array(extras, type=pa.string())).append_column(
        "record_type", pa.array([record_type] * len(steps), type=pa.string())
    )


def record_results_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Return an Arrow table of record_results rows (without ``landed_at``) from plain dicts."""
    return pa.table(
        {name: pa.array([r.get(name) for r in rows], type=dtype) for name, dtype in RECORD_COLUMNS}
    )


def _step_columns() -> list[tuple[str, pa.DataType]]:
    columns = [(_RENAMES.get(name, name), dtype) for name, dtype in STEP_FIELDS]
    return [*columns, ("resolved_prompt", pa.string()), ("record_type", pa.string())]


#: Every landed table's columns, in the order landing writes them (``landed_at`` is added by
#: the warehouse on first landing).
LANDED_COLUMNS: dict[str, list[tuple[str, pa.DataType]]] = {
    "step_results": [*_step_columns(), ("landed_at", TS)],
    "record_results": [*RECORD_COLUMNS, ("landed_at", TS)],
}
