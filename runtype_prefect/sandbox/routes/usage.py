"""Usage limits (spec §6): the execution quota per day and month."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import Request

from ..common import _state, api_router
from ..state import SandboxState
from ..world import iso

router = api_router("usage")


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


@router.get("/usage-limits/daily")
async def usage_daily(request: Request) -> dict:
    state = _state(request)
    return {"daily": _usage_period(state, "daily"), "monthly": _usage_period(state, "monthly")}


@router.get("/usage-limits")
async def usage(request: Request) -> dict:
    return {"usage": await usage_daily(request)}
