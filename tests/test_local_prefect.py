"""The local Prefect server's middleware: a request SQLite was too busy for is re-run inside the
server (sleeping through an injected sleep, never for real), the client sees one answer."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from runtype_prefect.cli.local_prefect import RETRY_AFTER_SECONDS, RetryBusyDatabase


class BusyApp:
    """Answers 503 (then raises, as Starlette's error middleware does) ``busy`` times, then 200
    with the request body; rewrites the scope as Starlette's mounts do."""

    def __init__(self, busy: int) -> None:
        self.busy = busy
        self.calls: list[tuple[str, bytes]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.calls.append((scope["root_path"], body))
        scope["root_path"] += "/api"  # what a mount does to the scope it is handed
        if len(self.calls) <= self.busy:
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b'{"busy": true}'})
            raise RuntimeError("database is locked")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


def post(middleware: RetryBusyDatabase, body: bytes) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=middleware, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://prefect") as http:
            headers = {"content-type": "application/json"}
            return await http.post("/api/task_runs/", content=body, headers=headers)

    return asyncio.run(go())


def middleware(app: BusyApp, slept: list[float], attempts: int = 8) -> RetryBusyDatabase:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return RetryBusyDatabase(app, attempts=attempts, sleep=sleep, rng=lambda: 0.5)


def test_a_busy_request_is_run_again_with_its_body_and_a_fresh_scope() -> None:
    app, slept = BusyApp(busy=3), []
    response = post(middleware(app, slept), b'{"name": "start"}')
    assert response.status_code == 200 and response.content == b'{"name": "start"}'
    assert app.calls == [("", b'{"name": "start"}')] * 4, "each attempt: the body, the scope"
    assert slept == pytest.approx([0.01, 0.02, 0.04]), "short waits, doubling"


def test_after_its_attempts_the_client_gets_the_503_with_a_short_retry_after() -> None:
    app, slept = BusyApp(busy=100), []
    response = post(middleware(app, slept, attempts=3), b"{}")
    assert response.status_code == 503
    assert response.headers["retry-after"] == RETRY_AFTER_SECONDS.decode()
    assert len(app.calls) == 3 and len(slept) == 2


def test_the_wait_between_attempts_is_capped() -> None:
    app, slept = BusyApp(busy=7), []
    post(middleware(app, slept), b"{}")
    assert max(slept) == pytest.approx(0.4)


def test_an_answer_that_is_not_503_goes_through_at_once() -> None:
    app, slept = BusyApp(busy=0), []
    response = post(middleware(app, slept), b"x" * 100_000)
    assert response.status_code == 200 and len(response.content) == 100_000
    assert len(app.calls) == 1 and slept == []


def test_a_client_gone_before_its_body_arrived_runs_nothing() -> None:
    app, slept = BusyApp(busy=0), []
    sent: list[dict[str, Any]] = []
    messages = iter([{"type": "http.request", "body": b"{", "more_body": True}])

    async def receive() -> dict[str, Any]:
        return next(messages, {"type": "http.disconnect"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/logs/", "root_path": ""}
    asyncio.run(middleware(app, slept)(scope, receive, send))
    assert app.calls == [] and sent == []


def test_prefects_own_busy_answer_is_run_again_behind_a_mount() -> None:
    """Prefect's error handler answers a SQLite-busy error with 503 and Starlette then re-raises
    it; the API is mounted under /api (a mount rewrites the scope): the request still succeeds."""
    import sqlite3

    import sqlalchemy
    from fastapi import FastAPI
    from prefect.server.api.server import custom_internal_exception_handler

    calls: list[dict[str, Any]] = []
    api = FastAPI(exception_handlers={Exception: custom_internal_exception_handler})

    @api.post("/task_runs/")
    async def create_task_run(body: dict[str, Any]) -> dict[str, int]:
        calls.append(body)
        if len(calls) < 3:
            busy = sqlite3.OperationalError("database is locked")
            busy.sqlite_errorname = "SQLITE_BUSY"  # type: ignore[attr-defined]
            raise sqlalchemy.exc.OperationalError("INSERT INTO task_run", {}, busy)
        return {"attempts": len(calls)}

    app = FastAPI()
    app.mount("/api", api)
    slept: list[float] = []
    response = post(middleware(app, slept), b'{"name": "land"}')  # type: ignore[arg-type]
    assert response.status_code == 200 and response.json() == {"attempts": 3}
    assert calls == [{"name": "land"}] * 3 and len(slept) == 2


HOLDER = """
import sys, time
from prefect.concurrency.sync import rate_limit
from runtype_prefect.orchestration.limits import start_slot
rate_limit(sys.argv[2], occupy=4, strict=True)
with start_slot(sys.argv[1], timeout_seconds=30):
    print("held", flush=True)
    time.sleep(300)
"""


@pytest.mark.e2e
def test_a_slot_whose_holder_was_killed_comes_back_after_its_lease_across_a_restart(tmp_path):
    """A process holding a flow's start slot (and API rate-limit tokens) is SIGKILLed inside
    the start; the local server is restarted on the same ``PREFECT_HOME``; the next start gets
    the slot once the lease has expired (60 s, the server's minimum), not never."""
    import os
    import subprocess
    import sys
    import time

    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import rate_limit
    from prefect.settings import (
        PREFECT_HOME,
        PREFECT_SERVER_DATABASE_CONNECTION_URL,
        temporary_settings,
    )

    from runtype_prefect.cli.local_prefect import local_prefect_server
    from runtype_prefect.orchestration.limits import START_LEASE_SECONDS, start_slot

    home = tmp_path / "prefect-home"
    home.mkdir()
    flow, api_limit = "flow_killed_mid_start", "runtype-api-killed"
    database = f"sqlite+aiosqlite:///{home}/prefect.db"
    updates = {PREFECT_HOME: str(home), PREFECT_SERVER_DATABASE_CONNECTION_URL: database}
    with temporary_settings(updates=updates):
        with local_prefect_server() as api_url:
            with get_client(sync_client=True) as client:
                client.upsert_global_concurrency_limit_by_name(
                    name=api_limit, limit=4, slot_decay_per_second=2.0
                )
            holder = subprocess.Popen(
                [sys.executable, "-c", HOLDER, flow, api_limit],
                env={**os.environ, "PREFECT_API_URL": api_url},
                stdout=subprocess.PIPE,
                text=True,
            )
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            holder.kill()  # SIGKILL: no release, no clean-up
            holder.wait()
        with local_prefect_server():  # restarted on the same home and database
            waited = time.monotonic()
            rate_limit(api_limit, occupy=4, timeout_seconds=20, strict=True)  # decayed
            tokens_back = time.monotonic() - waited
            with start_slot(flow, timeout_seconds=START_LEASE_SECONDS + 45):
                slot_back = time.monotonic() - waited
    assert tokens_back < 10, tokens_back
    assert slot_back <= START_LEASE_SECONDS + 20, slot_back


@pytest.mark.usefixtures("prefect_api")
def test_doctor_lists_slots_a_server_forgot_and_frees_them_when_no_run_is_active(monkeypatch):
    """A server that kept its leases in memory and restarted: the slot stays taken with no
    lease to expire. `doctor` names it; `--release` refuses while a run of ours is active (it
    may hold the slot), and frees it once none is."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    from prefect.settings import get_current_settings
    from typer.testing import CliRunner

    from runtype_prefect.cli import app
    from runtype_prefect.orchestration import limits

    name = "runtype-start-flow_forgotten"
    monkeypatch.setenv("PREFECT_API_URL", str(get_current_settings().api.url))
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name=name, limit=1)
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=1))
    try:
        listed = CliRunner().invoke(app, ["doctor"])
        assert listed.exit_code == 0, listed.output
        assert f"{name}: 1 of 1 slots taken" in listed.stdout
        assert f"runs of this project pending or running: {limits.active_runs()}" in listed.stdout
        monkeypatch.setattr(limits, "active_runs", lambda: 1)
        refused = CliRunner().invoke(app, ["doctor", "--release"])
        assert refused.exit_code == 2 and "1 run(s) of this project are active" in refused.output
        monkeypatch.setattr(limits, "active_runs", lambda: 0)
        freed = CliRunner().invoke(app, ["doctor", "--release"])
        assert freed.exit_code == 0, freed.output
        assert "freed the slots of" in freed.stdout
        with get_client(sync_client=True) as client:
            assert client.read_global_concurrency_limit_by_name(name).active_slots == 0
    finally:
        with get_client(sync_client=True) as client:
            client.delete_global_concurrency_limit_by_name(name)
