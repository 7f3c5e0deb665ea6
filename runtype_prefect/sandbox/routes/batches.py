"""Batches (spec §4): summary, status, cancel, cost, and a deferred batch's per-record results."""

from __future__ import annotations

from fastapi import Request

from ..common import ApiError, _batch, _offset_listing, _state, api_router

router = api_router("batch")


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
