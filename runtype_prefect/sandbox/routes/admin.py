"""The sandbox's own controls under ``/_sandbox`` (faults, clock, statistics, forced statuses,
reset), which the real service does not have."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from ..common import _authenticate, _batch, _record, _state
from ..faults import FaultConfig
from ..simulation import planted_calendar
from ..state import SandboxState
from ..world import iso

# The controls can wipe every batch: they take the same key as the API (a browser page cannot
# send it cross-site), behind the same Host and Origin guard as everything else.
router = APIRouter(
    prefix="/_sandbox", tags=["sandbox-only controls"], dependencies=[Depends(_authenticate)]
)


class ClockBody(BaseModel):
    now: datetime | None = None
    time_scale: float | None = Field(None, ge=0)


@router.get("/faults")
async def get_faults(request: Request) -> FaultConfig:
    return request.app.state.faults.config


@router.put("/faults")
async def put_faults(request: Request, config: FaultConfig) -> FaultConfig:
    request.app.state.faults.configure(config)
    return config


@router.get("/clock")
async def get_clock(request: Request) -> dict:
    state = _state(request)
    return {"now": iso(state.clock.now()), "timeScale": state.settings.time_scale}


@router.put("/clock")
async def put_clock(request: Request, body: ClockBody) -> dict:
    state = _state(request)
    if body.now is not None:
        state.clock.set(body.now)
    if body.time_scale is not None:
        state.settings.time_scale = state.clock.time_scale = body.time_scale
    return await get_clock(request)


@router.get("/stats")
async def stats(request: Request) -> dict:
    state = _state(request)
    return {
        "runsStarted": state.runs_started,
        "requestsServed": state.requests_served,
        "batches": [b.ground_truth() for b in state.batches.values()],
        "recordTypes": {t: len(state.world.records_of(t)) for t in _record_types(state)},
        "churn": state.settings.churn,
        "flows": [
            {"id": f.id, "name": f.name, "recordType": f.intended_record_type}
            for f in state.world.flows.values()
        ],
    }


@router.get("/calendar")
async def calendar(
    request: Request,
    start: Annotated[date | None, Query()] = None,
    end: Annotated[date | None, Query()] = None,
) -> dict:
    """The regressions the sandbox plants (slow weeks, incident nights) from ``start`` to
    ``end`` (default: the 30 nights up to the sandbox's today), so a replay can score itself."""
    state = _state(request)
    today = state.clock.now().date()
    end = end or today
    start = start or end - timedelta(days=29)
    if (end - start).days > 3660:
        raise HTTPException(400, "at most ten years at a time")
    flows = list(state.world.flows.values())
    return {
        "calm": state.settings.calm,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "nights": planted_calendar(flows, start, end, calm=state.settings.calm),
    }


@router.put("/batches/{batch_id}/status")
async def force_batch_status(request: Request, batch_id: str, status: Annotated[str, Query()]):
    _batch(_state(request), batch_id).forced_status = status
    return {"batchExecutionId": batch_id, "status": status}


@router.post("/records/{record_id}/change")
async def change_record(request: Request, record_id: str) -> dict:
    """Change a record as a user of the real service would (its metadata's ``seats`` is bumped
    and ``updatedAt`` moves to now), so a test can make one record "changed" on demand."""
    state = _state(request)
    record = _record(state, record_id)
    record.metadata = {**record.metadata, "seats": int(record.metadata.get("seats", 0)) + 1}
    record.updated_at = state.clock.now()
    return record.to_api()


@router.post("/reset")
async def reset(request: Request) -> dict:
    _state(request).reset()
    request.app.state.faults.configure(FaultConfig())
    return {"reset": True}


def _record_types(state: SandboxState) -> list[str]:
    return sorted({r.type for r in state.world.records})
