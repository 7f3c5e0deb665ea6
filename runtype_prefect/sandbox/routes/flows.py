"""Flows (spec §2): list, create, get, update, delete, publish, run over a record type, and
step results."""

from __future__ import annotations

import asyncio

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..common import (
    ApiError,
    _cursor_page,
    _filter_steps,
    _flow,
    _limit,
    _offset_listing,
    _state,
    api_router,
)
from ..world import SANDBOX_ORG, SANDBOX_USER, Flow, Step, iso, type_id

router = api_router("flows")


class RunOnRecordTypeBody(BaseModel):
    recordType: str = Field(min_length=1, max_length=255)


class StepBody(BaseModel):
    id: str | None = None
    type: str
    name: str
    order: int | None = None
    enabled: bool = True
    config: dict = Field(default_factory=dict)


class FlowBody(BaseModel):
    name: str | None = Field(None, min_length=1)
    flowSteps: list[StepBody] | None = None
    steps: list[StepBody] | None = None


def _flow_summary(flow: Flow) -> dict:
    return {
        "id": flow.id,
        "name": flow.name,
        "status": "active",
        "createdAt": iso(flow.created_at),
        "updatedAt": iso(flow.updated_at),
        "lastRunAt": iso(flow.last_run_at),
    }


def _flow_body(flow: Flow) -> dict:
    return {
        **_flow_summary(flow),
        "flowSteps": [s.to_api() for s in flow.steps],
        "stepCount": len(flow.steps),
        "organizationId": SANDBOX_ORG,
        "userId": SANDBOX_USER,
        "dashboardUrl": f"https://dashboard.runtype.com/flows/{flow.id}",
        "sampleMetadata": {"source": "sandbox"},
    }


def _steps_from(body: list[StepBody]) -> list[Step]:
    return [
        Step(
            id=s.id or f"step_{i + 1:02d}",
            type=s.type,
            name=s.name,
            order=s.order or i + 1,
            model=s.config.get("model"),
        )
        for i, s in enumerate(body)
    ]


@router.get("/flows")
async def list_flows(
    request: Request,
    limit: str | None = None,
    cursor: str | None = None,
    search: str | None = None,
) -> dict:
    flows = list(_state(request).world.flows.values())
    if search:
        flows = [f for f in flows if search.lower() in f.name.lower()]
    return _cursor_page([_flow_summary(f) for f in flows], cursor, _limit(limit, 10, 100))


@router.post("/flows", status_code=201)
async def create_flow(request: Request, body: FlowBody) -> dict:
    if not body.name:
        raise ApiError(400, "VALIDATION_ERROR", "name is required", details=[{"field": "name"}])
    state = _state(request)
    now = state.clock.now()
    version = type_id("flowver", state._ids, state.id_salt)
    flow = Flow(
        id=type_id("flow", state._ids, state.id_salt),
        name=body.name,
        steps=_steps_from(body.flowSteps or body.steps or []),
        created_at=now,
        updated_at=now,
        version_id=version,
        draft_versions=[version],
    )
    state.world.flows[flow.id] = flow
    return _flow_body(flow)


@router.get("/flows/{flow_id}")
async def get_flow(request: Request, flow_id: str) -> dict:
    return _flow_body(_flow(_state(request), flow_id))


@router.put("/flows/{flow_id}")
async def update_flow(request: Request, flow_id: str, body: FlowBody) -> dict:
    state = _state(request)
    flow = _flow(state, flow_id)
    if body.name:
        flow.name = body.name
    new_steps = body.flowSteps if body.flowSteps is not None else body.steps
    if new_steps is not None:
        flow.steps = _steps_from(new_steps)
    flow.updated_at = state.clock.now()
    draft = type_id("flowver", state._ids, state.id_salt)
    flow.draft_versions.append(draft)
    return {**_flow_body(flow), "draftVersionId": draft}


@router.delete("/flows/{flow_id}")
async def delete_flow(request: Request, flow_id: str) -> dict:
    state = _state(request)
    _flow(state, flow_id)
    del state.world.flows[flow_id]
    return {"success": True, "message": f"Flow {flow_id} has been deleted."}


@router.post("/flows/{flow_id}/publish")
async def publish_flow(request: Request, flow_id: str) -> dict:
    flow = _flow(_state(request), flow_id)
    flow.published_version_id = flow.version_id = flow.draft_versions[-1]
    return {
        "success": True,
        "publishedVersionId": flow.published_version_id,
        "message": (
            f"Flow draft version {len(flow.draft_versions)} has been successfully published."
        ),
    }


@router.get("/flow-versions/{flow_id}/published")
async def published_version(request: Request, flow_id: str) -> dict:
    """The flow's published version (spec §3); 404 when it has none."""
    flow = _flow(_state(request), flow_id)
    if flow.published_version_id is None:
        raise ApiError(404, "VERSION_NOT_FOUND", f"flow {flow_id!r} has no published version")
    return {
        "id": flow.published_version_id,
        "flowId": flow.id,
        "versionNumber": flow.draft_versions.index(flow.published_version_id) + 1,
        "versionType": "published",
        "flowConfig": {"steps": [s.to_api() for s in flow.steps]},
        "label": None,
        "notes": None,
        "createdAt": iso(flow.updated_at),
    }


@router.post("/flows/{flow_id}/run-on-record-type")
async def run_on_record_type(request: Request, flow_id: str, body: RunOnRecordTypeBody):
    state = _state(request)
    flow = _flow(state, flow_id)
    count = len(state.world.records_of(body.recordType))
    remaining = state.executions_remaining()
    if remaining is not None and count > remaining:
        raise ApiError(
            429,
            "SLOW_MODE_HOURLY_LIMIT_EXCEEDED",
            f"daily execution limit reached: {count} executions requested, {remaining} left",
            headers={"Retry-After": "3600", "X-Quota-Remaining": str(remaining)},
        )
    batch = state.start_batch(flow, body.recordType)
    headers = {"RateLimit-Remaining": "1000"}
    left = state.executions_remaining()
    headers["X-Quota-Remaining"] = str(left) if left is not None else "unlimited"
    common = {
        "success": True,
        "batchId": batch.id,
        "flowId": flow.id,
        "recordType": body.recordType,
        "recordCount": batch.total,
    }
    if not batch.immediate:
        deferred = {**common, "status": "queued", "executedImmediately": False, "completedAt": None}
        return JSONResponse(deferred, status_code=202, headers=headers)
    if state.settings.time_scale > 0 and batch.outcomes:
        makespan = (batch.completed_at - batch.created_at).total_seconds()  # type: ignore[operator]
        # Capped well below client timeouts: an immediate run answers within seconds.
        await asyncio.sleep(min(3.0, makespan * state.settings.time_scale))
    results = [
        {
            "recordId": o.record.id,
            "recordName": o.record.name,
            "success": o.success,
            "executionId": o.execution_id,
            "executionTime": round(o.execution_time, 3),
            "contextSteps": len(o.steps),
            "promptsExecuted": o.prompts_executed,
            "error": o.error or "",
        }
        for o in batch.outcomes
    ]
    immediate = {
        **common,
        "status": "completed",
        "executedImmediately": True,
        "successCount": batch.total - batch.failed,
        "failureCount": batch.failed,
        "completedAt": iso(batch.completed_at),
        "results": results,
    }
    return JSONResponse(immediate, status_code=200, headers=headers)


@router.get("/flows/{flow_id}/step-results")
async def flow_step_results(
    request: Request,
    flow_id: str,
    batchExecutionId: str | None = None,
    recordId: str | None = None,
    executionSessionId: str | None = None,
    status: str | None = None,
    stepType: str | None = None,
    limit: str | None = None,
    offset: str | None = None,
) -> dict:
    state = _state(request)
    _flow(state, flow_id)
    if batchExecutionId is not None:
        rows = [
            r for r in state.steps(state.steps_by_batch, batchExecutionId) if r["flowId"] == flow_id
        ]
    else:
        rows = state.steps(state.steps_by_flow, flow_id)
    rows = _filter_steps(
        rows,
        recordId=recordId,
        executionSessionId=executionSessionId,
        status=status,
        stepType=stepType,
    )
    return _offset_listing(rows, limit, offset, 25)
