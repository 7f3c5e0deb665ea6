"""The sandbox's HTTP API: a FastAPI app implementing the Runtype ``/v1`` spec.

Routes follow ``shared/runtype-api.md`` and its "Decisions for this project" (see `routes`);
routes under ``/_sandbox`` are sandbox-only controls that the real service does not have. This
module builds the app: state, background worker, error handlers and middleware.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from email.utils import format_datetime
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..client.sandbox_control import SANDBOX_TEST_KEY
from .common import ApiError, _error_response
from .faults import FaultConfig, FaultInjector, FaultMiddleware
from .routes import ROUTERS
from .state import SandboxSettings, SandboxState

DEFAULT_API_KEY = SANDBOX_TEST_KEY
#: Host names a loopback sandbox answers to.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
TICK_SECONDS = 0.02
log = logging.getLogger("runtype_prefect.sandbox")


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

    for router in ROUTERS:
        app.include_router(router)
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
