"""Columnar batches for landing: API models → Arrow tables with the warehouse's column types.

Columns are built with one pass per column over a page (no per-row dicts), the cheapest
route from parsed models into DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

#: step_results columns: (name, Arrow type, how to read it from a StepResult).
STEP_COLUMNS: list[tuple[str, pa.DataType, Callable[[Any], Any]]] = [
    ("id", pa.string(), lambda s: s.id),
    ("batch_execution_id", pa.string(), lambda s: s.batch_execution_id),
    ("execution_session_id", pa.string(), lambda s: s.execution_session_id),
    ("flow_id", pa.string(), lambda s: s.flow_id),
    ("flow_version_id", pa.string(), lambda s: s.flow_version_id),
    ("record_id", pa.string(), lambda s: s.record_id),
    ("record_name", pa.string(), lambda s: s.record_name),
    ("step_id", pa.string(), lambda s: s.step_id),
    ("step_name", pa.string(), lambda s: s.step_name),
    ("step_type", pa.string(), lambda s: s.step_type),
    ("step_order", pa.int32(), lambda s: s.order),
    ("status", pa.string(), lambda s: s.status),
    ("started_at", TS, lambda s: s.started_at),
    ("completed_at", TS, lambda s: s.completed_at),
    ("created_at", TS, lambda s: s.created_at),
    ("duration_ms", pa.int64(), lambda s: s.duration_ms),
    ("output_preview", pa.string(), lambda s: s.output_preview),
    ("resolved_prompt", pa.string(), lambda s: (s.model_extra or {}).get("resolvedPrompt")),
    ("model_used", pa.string(), lambda s: s.model_used),
    ("prompt_tokens", pa.int32(), lambda s: s.prompt_tokens),
    ("completion_tokens", pa.int32(), lambda s: s.completion_tokens),
    ("total_tokens", pa.int32(), lambda s: s.total_tokens),
    ("estimated_cost", pa.decimal128(18, 8), lambda s: s.estimated_cost),
    ("error_message", pa.string(), lambda s: s.error_message),
    ("retry_count", pa.int32(), lambda s: s.retry_count),
    ("user_id", pa.string(), lambda s: s.user_id),
    ("organization_id", pa.string(), lambda s: s.organization_id),
]

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


def _exact(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("0.00000001"))


def step_results_table(steps: Sequence[Any], *, record_type: str | None) -> pa.Table:
    """Return an Arrow table of step_results rows (without ``landed_at``) for ``steps``."""
    arrays = {}
    for name, dtype, read in STEP_COLUMNS:
        values = [read(s) for s in steps]
        if name == "estimated_cost":
            values = [_exact(v) for v in values]
        arrays[name] = pa.array(values, type=dtype)
    arrays["record_type"] = pa.array([record_type] * len(steps), type=pa.string())
    return pa.table(arrays)


def record_results_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Return an Arrow table of record_results rows (without ``landed_at``) from plain dicts."""
    return pa.table(
        {name: pa.array([r.get(name) for r in rows], type=dtype) for name, dtype in RECORD_COLUMNS}
    )
