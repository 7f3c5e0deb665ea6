"""The sandbox's HTTP API: a FastAPI app implementing the Runtype ``/v1`` spec.

Routes follow ``shared/runtype-api.md`` and its "Decisions for this project"; routes under
``/_sandbox`` are sandbox-only controls (faults, clock, statistics, reset) that the real
service does not have.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..client.sandbox_control import SANDBOX_TEST_KEY
from .faults import FaultConfig, FaultInjector, FaultMiddleware
from .state import Batch, SandboxSettings, SandboxState
from .world import SANDBOX_ORG, SANDBOX_USER, Flow, Record, Step, iso, type_id

DEFAULT_API_KEY = SANDBOX_TEST_KEY
#: Host names a loopback sandbox answers to.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
TICK_SECONDS = 0.02
log = logging.getLogger("runtype_prefect.sandbox")


class ApiError(Exception):
    """An error answered with the spec's body: ``{"error": {"code", "message"[, "details"]}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status, self.code, self.message = status, code, message
        self.details, self.headers = details, headers or {}


def _error_response(exc: ApiError) -> JSONResponse:
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.details is not None:
        error["details"] = exc.details
    return JSONResponse({"error": error}, status_code=exc.status, headers=exc.headers)


# --- request bodies ----------------------------------------------------------------------------


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


class RecordBody(BaseModel):
    type: str = Field(min_length=1, max_length=255)
    name: str = Field(min_length=1, max_length=500)
    metadata: dict = Field(default_factory=dict)
    messages: list | None = None


class ClockBody(BaseModel):
    now: datetime | None = None
    time_scale: float | None = Field(None, ge=0)


# --- helpers -----------------------------------------------------------------------------------


def _state(request: Request) -> SandboxState:
    return request.app.state.sandbox


def _authenticate(request: Request) -> None:
    state = _state(request)
    header = request.headers.get("authorization", "").strip()
    key = header[7:].strip() if header.lower().startswith("bearer ") else header
    if not key or key not in state.settings.api_keys:
        reason = "missing API key" if not key else "invalid or revoked API key"
        raise ApiError(401, "UNAUTHORIZED", reason, headers={"WWW-Authenticate": "Bearer"})


def _flow(state: SandboxState, flow_id: str) -> Flow:
    flow = state.world.flows.get(flow_id)
    if flow is None:
        raise ApiError(404, "FLOW_NOT_FOUND", f"flow {flow_id!r} not found")
    return flow


def _batch(state: SandboxState, batch_id: str) -> Batch:
    batch = state.batches.get(batch_id)
    if batch is None:
        raise ApiError(404, "BATCH_NOT_FOUND", f"batch {batch_id!r} not found")
    return batch


def _record(state: SandboxState, record_id: str) -> Record:
    for record in state.world.records:
        if record.id == record_id:
            return record
    raise ApiError(404, "RECORD_NOT_FOUND", f"record {record_id!r} not found")


def _limit(value: str | None, default: int, maximum: int) -> int:
    if value is None:
        return default
    try:
        limit = int(value)
    except ValueError:
        raise ApiError(
            400, "VALIDATION_ERROR", f"limit must be an integer, got {value!r}"
        ) from None
    if not 1 <= limit <= maximum:
        raise ApiError(400, "VALIDATION_ERROR", f"limit must be between 1 and {maximum}")
    return limit


def _offset(value: str | None) -> int:
    try:
        offset = int(value or 0)
    except ValueError:
        raise ApiError(
            400, "VALIDATION_ERROR", f"offset must be an integer, got {value!r}"
        ) from None
    if offset < 0:
        raise ApiError(400, "VALIDATION_ERROR", "offset must be >= 0")
    return offset


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["offset"])
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "INVALID_CURSOR", "cursor is not one this API issued") from None


def _cursor_page(rows: list[Any], cursor: str | None, limit: int) -> dict:
    """Return a pagination style A listing of ``rows`` (spec §1.4)."""
    offset = _decode_cursor(cursor)
    page = rows[offset : offset + limit]
    has_more = offset + limit < len(rows)
    return {
        "data": page,
        "pagination": {
            "currentOffset": offset,
            "hasMore": has_more,
            "hasPrev": offset > 0,
            "limit": limit,
            "nextCursor": _encode_cursor(offset + limit) if has_more else None,
            "prevCursor": _encode_cursor(max(0, offset - limit)) if offset > 0 else None,
            "currentPage": offset // limit + 1,
            "totalCount": len(rows),
            "totalPages": -(-len(rows) // limit),
        },
    }


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


# --- the /v1 API -------------------------------------------------------------------------------

api = APIRouter(prefix="/v1", dependencies=[Depends(_authenticate)])


@api.get("/flows", tags=["flows"])
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


@api.post("/flows", tags=["flows"], status_code=201)
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


@api.get("/flows/{flow_id}", tags=["flows"])
async def get_flow(request: Request, flow_id: str) -> dict:
    return _flow_body(_flow(_state(request), flow_id))


@api.put("/flows/{flow_id}", tags=["flows"])
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


@api.delete("/flows/{flow_id}", tags=["flows"])
async def delete_flow(request: Request, flow_id: str) -> dict:
    state = _state(request)
    _flow(state, flow_id)
    del state.world.flows[flow_id]
    return {"success": True, "message": f"Flow {flow_id} has been deleted."}


@api.post("/flows/{flow_id}/publish", tags=["flows"])
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


@api.post("/flows/{flow_id}/run-on-record-type", tags=["flows"])
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


def _offset_listing(rows: list[dict], limit: str | None, offset: str | None, default: int) -> dict:
    """Return a pagination style B listing (``limit/offset/returned/hasMore``)."""
    lim, off = _limit(limit, default, 100), _offset(offset)
    page = rows[off : off + lim]
    return {
        "data": page,
        "pagination": {
            "limit": lim,
            "offset": off,
            "returned": len(page),
            "hasMore": off + len(page) < len(rows),
        },
    }


def _filter_steps(rows: list[dict], **filters: str | None) -> list[dict]:
    active = {k: v for k, v in filters.items() if v is not None}
    if not active:
        return rows
    return [r for r in rows if all(r.get(k) == v for k, v in active.items())]


@api.get("/flows/{flow_id}/step-results", tags=["flows"])
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


@api.get("/batch/summary", tags=["batch"])
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


@api.get("/batch/status/{batch_id}", tags=["batch"])
async def batch_status(request: Request, batch_id: str) -> dict:
    return _batch(_state(request), batch_id).status_body()


@api.post("/batch/cancel/{batch_id}", tags=["batch"])
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


@api.get("/batch/{batch_id}/cost", tags=["batch"])
async def batch_cost(request: Request, batch_id: str) -> dict:
    state = _state(request)
    batch = _batch(state, batch_id)
    return {"batchExecutionId": batch.id, "totalCostUsd": float(state.batch_cost(batch))}


@api.get("/schedules/batch/{batch_id}/results", tags=["schedules"])
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


@api.get("/records", tags=["records"])
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


@api.post("/records", tags=["records"], status_code=201)
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


@api.get("/records/schema", tags=["records"])
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


@api.get("/records/{record_id}", tags=["records"])
async def get_record(request: Request, record_id: str) -> dict:
    return _record(_state(request), record_id).to_api()


@api.get("/records/{record_id}/costs", tags=["records"])
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


@api.get("/records/{record_id}/step-results", tags=["records"])
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


def _usage_period(state: SandboxState, period: str) -> dict:
    now = state.clock.now()
    limit = state.settings.daily_execution_limit
    if period == "daily":
        used = state.executions_by_day[now.date().isoformat()]
        resets = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    else:
        month = now.strftime("%Y-%m")
        used = sum(v for k, v in state.executions_by_day.items() if k.startswith(month))
        limit = limit * 30 if limit is not None else None
        nxt = (now.replace(day=1) + timedelta(days=32)).replace(day=1)
        resets = datetime.combine(nxt.date(), datetime.min.time(), UTC)
    remaining = None if limit is None else max(0, limit - used)
    return {
        "periodType": period,
        "executionLimit": limit,
        "executionsUsed": used,
        "remaining": remaining,
        "percentUsed": None if limit is None else round(100 * used / limit, 1),
        "isUnlimited": limit is None,
        "isAtLimit": remaining == 0,
        "isNearLimit": limit is not None and used >= 0.8 * limit,
        "inSlowMode": False,
        "resetsAt": iso(resets),
        "tier": "sandbox",
        "date": now.date().isoformat(),
    }


@api.get("/usage-limits/daily", tags=["usage"])
async def usage_daily(request: Request) -> dict:
    state = _state(request)
    return {"daily": _usage_period(state, "daily"), "monthly": _usage_period(state, "monthly")}


@api.get("/usage-limits", tags=["usage"])
async def usage(request: Request) -> dict:
    return {"usage": await usage_daily(request)}


# --- sandbox-only controls -----------------------------------------------------------------------

# The controls can wipe every batch: they take the same key as the API (a browser page cannot
# send it cross-site), behind the same Host and Origin guard as everything else.
admin = APIRouter(
    prefix="/_sandbox", tags=["sandbox-only controls"], dependencies=[Depends(_authenticate)]
)


@admin.get("/faults")
async def get_faults(request: Request) -> FaultConfig:
    return request.app.state.faults.config


@admin.put("/faults")
async def put_faults(request: Request, config: FaultConfig) -> FaultConfig:
    request.app.state.faults.configure(config)
    return config


@admin.get("/clock")
async def get_clock(request: Request) -> dict:
    state = _state(request)
    return {"now": iso(state.clock.now()), "timeScale": state.settings.time_scale}


@admin.put("/clock")
async def put_clock(request: Request, body: ClockBody) -> dict:
    state = _state(request)
    if body.now is not None:
        state.clock.set(body.now)
    if body.time_scale is not None:
        state.settings.time_scale = state.clock.time_scale = body.time_scale
    return await get_clock(request)


@admin.get("/stats")
async def stats(request: Request) -> dict:
    state = _state(request)
    return {
        "runsStarted": state.runs_started,
        "requestsServed": state.requests_served,
        "batches": [b.ground_truth() for b in state.batches.values()],
        "recordTypes": {t: len(state.world.records_of(t)) for t in _record_types(state)},
        "flows": [
            {"id": f.id, "name": f.name, "recordType": f.intended_record_type}
            for f in state.world.flows.values()
        ],
    }


@admin.put("/batches/{batch_id}/status")
async def force_batch_status(request: Request, batch_id: str, status: Annotated[str, Query()]):
    _batch(_state(request), batch_id).forced_status = status
    return {"batchExecutionId": batch_id, "status": status}


@admin.post("/reset")
async def reset(request: Request) -> dict:
    _state(request).reset()
    request.app.state.faults.configure(FaultConfig())
    return {"reset": True}


def _record_types(state: SandboxState) -> list[str]:
    return sorted({r.type for r in state.world.records})


# --- the app -----------------------------------------------------------------------------------


def create_app(
    settings: SandboxSettings | None = None,
    faults: FaultConfig | None = None,
    *,
    allowed_hosts: tuple[str, ...] | None = LOOPBACK_HOSTS,
) -> FastAPI:
    """Return the sandbox ASGI app with its own state, background worker and fault injector.

    ``allowed_hosts`` are the host names a request's ``Host`` (and ``Origin``, when sent) may
    name; others are refused, which keeps DNS rebinding and cross-site pages out. None allows
    any (a sandbox bound beyond loopback with ``--public``).
    """
    settings = settings or SandboxSettings()
    if not settings.api_keys:
        settings.api_keys = (DEFAULT_API_KEY,)
    state = SandboxState(settings)
    injector = FaultInjector(faults)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def work() -> None:
            while True:
                state.tick()
                await asyncio.sleep(TICK_SECONDS)

        worker = asyncio.create_task(work())
        try:
            yield
        finally:
            worker.cancel()

    app = FastAPI(
        title="Runtype sandbox",
        version=__version__,
        description="A Runtype-compatible API for demos and tests (runtype-prefect).",
        lifespan=lifespan,
    )
    app.state.sandbox = state
    app.state.faults = injector

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in e["loc"][1:]), "message": e["msg"]}
            for e in exc.errors()
        ]
        return _error_response(
            ApiError(400, "VALIDATION_ERROR", "invalid request", details=details)
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        return _error_response(ApiError(exc.status_code, code, str(exc.detail)))

    app.include_router(api)
    app.include_router(admin)
    app.add_middleware(FaultMiddleware, injector=injector)
    app.add_middleware(RequestIdMiddleware, state=state)  # faults get ids too
    if allowed_hosts is not None:
        app.add_middleware(HostGuardMiddleware, allowed=allowed_hosts)  # outermost
    return app


class HostGuardMiddleware:
    """Refuses requests whose ``Host`` is not an allowed name (400: DNS rebinding) or that carry
    an ``Origin`` of another host (403: a cross-site page)."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...]) -> None:
        self.app = app
        self.allowed = set(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = _hostname(headers.get("host", ""))
        origin = headers.get("origin")
        if host not in self.allowed:
            problem = ApiError(400, "HOST_NOT_ALLOWED", f"host {host!r} is not this sandbox")
        elif origin is not None and _hostname(urlsplit(origin).netloc) not in self.allowed:
            problem = ApiError(403, "CROSS_SITE_REFUSED", f"cross-site request from {origin!r}")
        else:
            await self.app(scope, receive, send)
            return
        await _error_response(problem)(scope, receive, send)


def _hostname(netloc: str) -> str:
    """Return the host of ``host[:port]`` or ``[v6]:port``, lowercased, without brackets."""
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")].lower()
    return netloc.rsplit(":", 1)[0].lower() if netloc.count(":") == 1 else netloc.lower()


class RequestIdMiddleware:
    """Counts requests and stamps every response with an ``X-Request-Id`` and a ``Date``.

    The ``Date`` header is the API's clock, which in the sandbox is the simulated one: clients
    compare it with the batches' timestamps, which are simulated too (uvicorn's own wall-clock
    ``Date`` header is switched off where the server is configured).
    """

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.state.requests_served += 1
        request_id = ("req_" + secrets.token_hex(8)).encode()
        date = format_datetime(self.state.clock.now(), usegmt=True).encode()

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [
                        *message["headers"],
                        (b"x-request-id", request_id),
                        (b"date", date),
                    ],
                }
            await send(message)

        await self.app(scope, receive, stamped)
