"""What every sandbox route shares: the spec's error body, authentication, look-ups and the
pagination envelopes (spec §1.4: cursor style A, offset styles B and C)."""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from .state import Batch, SandboxState
from .world import Flow, Record


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


def _state(request: Request) -> SandboxState:
    """Return the sandbox's state with its records brought up to the simulated day."""
    state: SandboxState = request.app.state.sandbox
    state.sync_world()
    return state


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
    record = state.world.record(record_id)
    if record is None:
        raise ApiError(404, "RECORD_NOT_FOUND", f"record {record_id!r} not found")
    return record


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


def api_router(tag: str) -> APIRouter:
    """Return a router under ``/v1`` that authenticates every request."""
    return APIRouter(prefix="/v1", tags=[tag], dependencies=[Depends(_authenticate)])
