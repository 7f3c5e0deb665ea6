"""Batches (spec §4): summary, status, cancel, cost, and a deferred batch's per-record results."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..common import ApiError, _batch, _flow, _offset_listing, _state, api_router

router = api_router("batch")


class BatchOptions(BaseModel):
    maxRetries: int | None = Field(None, ge=0)
    recordConcurrency: int | None = Field(None, ge=1)


class SubmitBatchBody(BaseModel):
    flowId: str = Field(min_length=1)
    recordIds: list[str]
    options: BatchOptions | None = None


@router.post("/batch/flow")
async def submit_batch(request: Request, body: SubmitBatchBody) -> JSONResponse:
    """Run a flow over chosen records (spec §4.1, decision 10): always 202 and a queued batch."""
    state = _state(request)
    if not state.settings.batch_runs:
        raise ApiError(
            402, "FEATURE_NOT_AVAILABLE", "batch runs over chosen records need a paid plan"
        )
    flow = _flow(state, body.flowId)
    if not body.recordIds:
        raise ApiError(
            400, "VALIDATION_ERROR", "recordIds must not be empty", details=[{"field": "recordIds"}]
        )
    limit = state.settings.max_batch_records
    if len(body.recordIds) > limit:
        raise ApiError(
            400,
            "TOO_MANY_RECORDS",
            f"{len(body.recordIds)} record ids in one batch; at most {limit}",
        )
    by_id = {r.id: r for r in state.world.records}  # one pass, not one scan per id
    wanted = list(dict.fromkeys(body.recordIds))  # a repeated id runs once
    records = [by_id[i] for i in wanted if i in by_id]
    unknown = [i for i in wanted if i not in by_id]
    if unknown:
        raise ApiError(
            400,
            "VALIDATION_ERROR",
            f"{len(unknown)} record id(s) do not exist: {', '.join(unknown[:5])}"
            + (" …" if len(unknown) > 5 else ""),
            details=[{"field": "recordIds", "recordId": record_id} for record_id in unknown],
        )
    remaining = state.executions_remaining()
    if remaining is not None and len(records) > remaining:
        raise ApiError(
            429,
            "DAILY_EXECUTION_LIMIT_EXCEEDED",
            f"daily execution limit reached: {len(records)} executions requested, {remaining} left",
            headers={"Retry-After": "3600", "X-Quota-Remaining": str(remaining)},
        )
    types = {r.type for r in records}
    concurrency = body.options.recordConcurrency if body.options else None
    record_type = types.pop() if len(types) == 1 else "mixed"
    batch = state.start_batch(flow, record_type, records, concurrency=concurrency)
    left = state.executions_remaining()
    headers = {
        "RateLimit-Remaining": "1000",
        "X-Quota-Remaining": str(left) if left is not None else "unlimited",
    }
    return JSONResponse(
        {"batchExecutionId": batch.id, "status": "queued"}, status_code=202, headers=headers
    )


@router.get("/batch/summary")
async def batch_summary(request: Request) -> dict:
    batches = sorted(_state(request).batches.values(), key=lambda b: b.created_at, reverse=True)
    active = [b.summary_item() for b in batches if not b.terminal]
    recent = [b.summary_item() for b in batches if b.terminal][:50]
    return {
        "activeBatches": len(active),
        "recentlyCompleted": len(recent),
        "batches": active,
        "recent": recent,
    }


@router.get("/batch/status/{batch_id}")
async def batch_status(request: Request, batch_id: str) -> dict:
    return _batch(_state(request), batch_id).status_body()


@router.post("/batch/cancel/{batch_id}")
async def cancel_batch(request: Request, batch_id: str) -> dict:
    state = _state(request)
    batch = _batch(state, batch_id)
    if batch.terminal:
        raise ApiError(
            400, "BATCH_NOT_CANCELLABLE", f"batch {batch_id!r} already ended ({batch.status})"
        )
    state.cancel(batch)
    return {
        "success": True,
        "message": f"Batch execution {batch_id} has been successfully cancelled.",
    }


@router.get("/batch/{batch_id}/cost")
async def batch_cost(request: Request, batch_id: str) -> dict:
    state = _state(request)
    batch = _batch(state, batch_id)
    return {"batchExecutionId": batch.id, "totalCostUsd": float(state.batch_cost(batch))}


@router.get("/schedules/batch/{batch_id}/results", tags=["schedules"])
async def batch_results(
    request: Request,
    batch_id: str,
    status: str | None = None,
    limit: str | None = None,
    offset: str | None = None,
) -> dict:
    state = _state(request)
    rows = state.record_result_rows(_batch(state, batch_id))
    if status:
        rows = [r for r in rows if r["status"] == status]
    listing = _offset_listing(rows, limit, offset, 10)
    pag = listing["pagination"]
    listing["pagination"] = {
        "hasMore": pag["hasMore"],
        "limit": pag["limit"],
        "offset": pag["offset"],
        "total": len(rows),
    }
    return listing
