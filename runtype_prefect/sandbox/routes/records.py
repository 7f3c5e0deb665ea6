"""Records (spec §5): list, create, schema, get, costs, step results."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from pydantic import BaseModel, Field

from ..common import (
    ApiError,
    _cursor_page,
    _filter_steps,
    _limit,
    _offset_listing,
    _record,
    _state,
    api_router,
)
from ..world import Record, iso, type_id

router = api_router("records")


class RecordBody(BaseModel):
    type: str = Field(min_length=1, max_length=255)
    name: str = Field(min_length=1, max_length=500)
    metadata: dict = Field(default_factory=dict)
    messages: list | None = None


@router.get("/records")
async def list_records(
    request: Request,
    type: str | None = None,
    search: str | None = None,
    limit: str | None = None,
    cursor: str | None = None,
) -> dict:
    records = _state(request).world.records
    if type is not None:
        records = [r for r in records if r.type == type]
    if search:
        records = [r for r in records if search.lower() in r.name.lower()]
    return _cursor_page([r.to_api() for r in records], cursor, _limit(limit, 50, 100))


@router.post("/records", status_code=201)
async def create_record(request: Request, body: RecordBody) -> dict:
    state = _state(request)
    if any(r.type == body.type and r.name == body.name for r in state.world.records):
        raise ApiError(
            409, "RECORD_EXISTS", f"a record of type {body.type!r} named {body.name!r} exists"
        )
    record = Record(
        id=type_id("record", state._ids, state.id_salt),
        type=body.type,
        name=body.name,
        metadata=body.metadata,
        created_at=state.clock.now(),
    )
    state.world.records.append(record)
    return record.to_api()


_JSON_TYPES = {bool: "boolean", int: "number", float: "number"}


@router.get("/records/schema")
async def record_schema(
    request: Request,
    record_type: Annotated[str, Query(alias="type", min_length=1)],
    sample: str | None = None,
) -> dict:
    state = _state(request)
    records = state.world.records_of(record_type)
    sampled = records[: _limit(sample, 50, 1000)]
    fields: dict[str, dict] = {}
    for record in sampled:
        for key, value in record.metadata.items():
            kind = _JSON_TYPES.get(type(value), "string")
            fields.setdefault(key, {"name": key, "type": kind, "example": value, "count": 0})
            fields[key]["count"] += 1
    return {
        "type": record_type,
        "totalRecords": len(records),
        "sampledRecords": len(sampled),
        "sampledAt": iso(state.clock.now()),
        "fields": [
            {
                "name": f["name"],
                "type": f["type"],
                "required": f["count"] == len(sampled),
                "example": f["example"],
                "description": None,
            }
            for f in fields.values()
        ],
    }


@router.get("/records/{record_id}")
async def get_record(request: Request, record_id: str) -> dict:
    return _record(_state(request), record_id).to_api()


class RecordUpdate(BaseModel):
    type: str | None = Field(None, min_length=1, max_length=255)
    name: str | None = Field(None, min_length=1, max_length=500)
    metadata: dict | None = None
    messages: list | None = None


@router.put("/records/{record_id}")
async def update_record(request: Request, record_id: str, body: RecordUpdate) -> dict:
    """Update a record (spec §5.4); a change of type, name or metadata moves ``updatedAt``."""
    state = _state(request)
    record = _record(state, record_id)
    new_type, new_name = body.type or record.type, body.name or record.name
    if (new_type, new_name) != (record.type, record.name) and any(
        r.type == new_type and r.name == new_name for r in state.world.records
    ):
        raise ApiError(
            409, "RECORD_EXISTS", f"a record of type {new_type!r} named {new_name!r} exists"
        )
    metadata = record.metadata if body.metadata is None else body.metadata
    if (new_type, new_name, metadata) != (record.type, record.name, record.metadata):
        record.type, record.name, record.metadata = new_type, new_name, metadata
        record.updated_at = state.clock.now()
    return record.to_api()


@router.delete("/records/{record_id}")
async def delete_record(request: Request, record_id: str) -> dict:
    """Delete a record (spec §5.5): it leaves every listing; its past results stay."""
    state = _state(request)
    state.world.records.remove(_record(state, record_id))
    return {"success": True, "message": f"Record {record_id} has been deleted."}


@router.get("/records/{record_id}/costs")
async def record_costs(request: Request, record_id: str) -> dict:
    state = _state(request)
    _record(state, record_id)
    rows = state.steps(state.steps_by_record, record_id)
    by_model: dict[str, dict] = {}
    total_cost = 0.0
    prompt = completion = 0
    for r in rows:
        if not r["modelUsed"]:
            continue
        cost = float(r["estimatedCost"] or 0)
        total_cost += cost
        prompt += r["promptTokens"] or 0
        completion += r["completionTokens"] or 0
        entry = by_model.setdefault(
            r["modelUsed"], {"model": r["modelUsed"], "cost": 0.0, "tokens": 0, "count": 0}
        )
        entry["cost"] += cost
        entry["tokens"] += r["totalTokens"] or 0
        entry["count"] += 1
    return {
        "totalCost": round(total_cost, 6),
        "totalTokens": prompt + completion,
        "promptTokens": prompt,
        "completionTokens": completion,
        "executionCount": len({r["executionSessionId"] for r in rows}),
        "modelBreakdown": list(by_model.values()),
    }


@router.get("/records/{record_id}/step-results")
async def record_step_results(
    request: Request,
    record_id: str,
    batchExecutionId: str | None = None,
    status: str | None = None,
    stepType: str | None = None,
    limit: str | None = None,
    offset: str | None = None,
) -> dict:
    state = _state(request)
    _record(state, record_id)
    rows = _filter_steps(
        state.steps(state.steps_by_record, record_id),
        batchExecutionId=batchExecutionId,
        status=status,
        stepType=stepType,
    )
    return _offset_listing(rows, limit, offset, 25)
