"""Switchable faults for the sandbox: latency, 429 (random or a burst limit), 5xx, dropped
connections and malformed JSON. All are off by default.

Random faults draw from a seeded generator; scripted faults (`FaultAction`) fire on the next
matching requests, so tests can provoke exactly one failure where they need it.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from typing import Literal

from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class FaultAction(BaseModel):
    """One scripted fault: fires on the next ``times`` requests that match. ``pass`` lets
    them through untouched, so a script can aim a fault past the first matching requests."""

    kind: Literal["status", "drop", "malformed", "pass"]
    status: int = 503
    retry_after: float | None = None
    method: str | None = None
    path_prefix: str = "/v1/"
    times: int = 1
    body: str | None = None  # raw body for "status" (e.g. an HTML proxy page); JSON otherwise

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and path.startswith(
            self.path_prefix
        )


class FaultConfig(BaseModel):
    """The sandbox's fault switches (also served and replaced at ``/_sandbox/faults``)."""

    latency_ms: float = Field(0.0, ge=0)
    rate_429: float = Field(0.0, ge=0, le=1)
    retry_after_seconds: float = Field(1.0, ge=0)
    burst_limit: int | None = Field(None, ge=1, description="API requests allowed per 10 s")
    rate_5xx: float = Field(0.0, ge=0, le=1)
    rate_drop: float = Field(0.0, ge=0, le=1)
    rate_malformed: float = Field(0.0, ge=0, le=1)
    seed: int = 0
    script: list[FaultAction] = Field(default_factory=list)


class DroppedConnection(Exception):
    """Raised inside the app to make the server abort a response half-way."""


class FaultInjector:
    """Decides, per API request, which fault (if any) to inject."""

    BURST_WINDOW = 10.0

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        """Replace the switches (and restart the random stream and the burst window)."""
        self.config = config
        self._rng = random.Random(config.seed)
        self._window_start = 0.0
        self._window_count = 0

    def pick(self, method: str, path: str) -> FaultAction | None:
        """Return the fault for this request, consuming scripted ones; None for no fault."""
        for action in self.config.script:
            if action.times > 0 and action.matches(method, path):
                action.times -= 1
                if action.times == 0:
                    self.config.script.remove(action)
                return action
        c = self.config
        if c.burst_limit is not None:
            now = time.monotonic()
            if now - self._window_start >= self.BURST_WINDOW:
                self._window_start, self._window_count = now, 0
            self._window_count += 1
            if self._window_count > c.burst_limit:
                wait = math.ceil(self._window_start + self.BURST_WINDOW - now)
                return FaultAction(kind="status", status=429, retry_after=max(1, wait))
        draw = self._rng.random()
        for kind, rate, status in (
            ("status", c.rate_429, 429),
            ("status", c.rate_5xx, 503),
            ("drop", c.rate_drop, 0),
            ("malformed", c.rate_malformed, 0),
        ):
            if draw < rate:
                retry = c.retry_after_seconds if status == 429 else None
                return FaultAction(kind=kind, status=status, retry_after=retry)
            draw -= rate
        return None


class FaultMiddleware:
    """ASGI middleware applying `FaultInjector` decisions to ``/v1`` requests."""

    def __init__(self, app: ASGIApp, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        if self.injector.config.latency_ms:
            await asyncio.sleep(self.injector.config.latency_ms / 1000)
        action = self.injector.pick(scope["method"], scope["path"])
        if action is None or action.kind == "pass":
            await self.app(scope, receive, send)
        elif action.kind == "status":
            await _send_error(send, action)
        else:
            messages = await _capture(self.app, scope, receive)
            await _replay_broken(send, messages, action.kind)


async def _send_error(send: Send, action: FaultAction) -> None:
    if action.body is not None:
        body, ctype = action.body.encode(), b"text/html"
    else:
        code = "RATE_LIMIT_EXCEEDED" if action.status == 429 else "SANDBOX_INJECTED_FAULT"
        message = f"sandbox fault injection: HTTP {action.status}"
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        ctype = b"application/json"
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    if action.retry_after is not None:
        headers.append((b"retry-after", str(math.ceil(action.retry_after)).encode()))
    await send({"type": "http.response.start", "status": action.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _capture(app: ASGIApp, scope: Scope, receive: Receive) -> list[Message]:
    messages: list[Message] = []

    async def collect(message: Message) -> None:
        messages.append(message)

    await app(scope, receive, collect)
    return messages


async def _replay_broken(send: Send, messages: list[Message], kind: str) -> None:
    """Send the handled response with a damaged body: cut off (drop) or invalid JSON."""
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
    if kind == "malformed":
        broken = body[: max(1, len(body) // 2)] or b"{"
        headers.append((b"content-length", str(len(broken)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": broken})
        return
    headers.append((b"content-length", str(max(len(body), 2)).encode()))
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    raise DroppedConnection("sandbox fault injection: connection dropped mid-response")
