"""A local Prefect API server on SQLite that re-runs a request SQLite was too busy for.

Prefect's own temporary server answers a write that lost SQLite's lock (``SQLITE_BUSY``,
``SQLITE_BUSY_SNAPSHOT``: the transaction was rolled back) with a 503 and no ``Retry-After``, so
Prefect's client waits a flat 2 s, then 4 s, before trying again. Four jobs of a night write task
runs and slot leases at the same moment and collide every night: measured, the demo's 7 nights
took 42–62 s on that server, and 19–21 s once a 503 waited 0.1 s instead. This server is
Prefect's own app (``prefect.server.api.server.create_app``) behind one ASGI middleware that
re-runs such a request after a few milliseconds, inside the server, before the client ever sees
a 503. Production runs Prefect on Postgres, which has no such lock; this is the server the CLI
starts when ``PREFECT_API_URL`` is unset, and the one tests and benchmarks run on.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .processes import ExitedWhileStarting, free_port, wait_until_answering

#: What the last attempt's 503 tells Prefect's client to wait (it waits 2 s without one).
RETRY_AFTER_SECONDS = b"0.5"


class RetryBusyDatabase:
    """ASGI middleware: re-run an HTTP request the wrapped app answered with 503.

    Prefect's server answers 503 only for errors its client retries anyway (a rolled-back
    transaction: SQLite busy, a dropped database connection), so re-running the request here is
    what the client would do, minus its 2 s wait. The request body is buffered (Prefect's
    requests are small JSON); a response is streamed through as soon as its status is not 503.
    After ``attempts`` the 503 goes to the client with a short ``Retry-After``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        attempts: int = 8,
        first_delay: float = 0.01,
        max_delay: float = 0.4,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.app = app
        self.attempts = attempts
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.rng = rng

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client went away before it finished sending: nothing to run
            return
        for attempt in range(self.attempts):
            last = attempt == self.attempts - 1
            response = _Response(send, hold_503=not last)
            try:
                # A copy: Starlette's mounts and routes rewrite the scope they are given.
                await self.app(dict(scope), _replay(body, receive), response.send)
            except Exception:
                # Starlette re-raises what its error handler answered (here, with a 503) so the
                # server can log it: a held 503 is re-run instead.
                if not response.held:
                    raise
            if not response.held:
                return
            # Jittered so colliding requests do not collide again on the next attempt.
            delay = min(self.max_delay, self.first_delay * 2**attempt)
            await self.sleep(delay * (0.5 + self.rng()))


class _Response:
    """Forwards a response to ``send`` unless it is a 503 to be held back (and re-run)."""

    def __init__(self, send: Send, *, hold_503: bool) -> None:
        self._send = send
        self._hold_503 = hold_503
        self.held = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 503:
            if self._hold_503:
                self.held = True
                return
            headers = [(k, v) for k, v in message.get("headers", []) if k != b"retry-after"]
            message = {**message, "headers": [*headers, (b"retry-after", RETRY_AFTER_SECONDS)]}
        if not self.held:
            await self._send(message)


async def _read_body(receive: Receive) -> bytes | None:
    """Return the whole request body, or None when the client disconnects first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the buffered body once, then waits on the real one (which
    reports the client's disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def create_app() -> ASGIApp:
    """Return Prefect's server app behind `RetryBusyDatabase` (a uvicorn ``--factory``), with
    the lease repossessor and the late-runs marker running even on the temporary server
    (`services_when_ephemeral`)."""
    from prefect.server.api.server import create_app as create_prefect_app

    services_when_ephemeral()
    return RetryBusyDatabase(create_prefect_app())


def services_when_ephemeral() -> None:
    """Run two of Prefect's services on a temporary (``EPHEMERAL``) server too (the suite's
    killed-holder and missed-night tests fail if a Prefect upgrade renames them).

    - The lease repossessor. A concurrency slot is leased: its holder renews the lease while
      it runs, and the repossessor frees the slot once a lease expires (a holder killed, a
      Ctrl-C mid-start). Prefect runs it only on a full server, so on its temporary one a
      crashed holder's slot stayed taken for good, and every later start of that flow waited.
    - The late-runs marker: a scheduled run that has not started is marked ``Late``, the
      event the missed-night alert waits on. Automations themselves (the triggers and their
      actions) already run on a temporary server.
    """
    from prefect.server.services import perpetual_services
    from prefect.server.services.late_runs import monitor_late_runs
    from prefect.server.services.repossessor import monitor_expired_leases

    wanted = {monitor_expired_leases.__name__, monitor_late_runs.__name__}
    for config in perpetual_services.get_perpetual_services():
        if getattr(config.function, "__name__", "") in wanted:
            config.run_in_ephemeral = True


#: What Prefect's own temporary server sets: no UI, no scheduler or other services.
EPHEMERAL = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}

#: Slot leases kept in files under the server's ``PREFECT_HOME`` (``concurrency_leases/``),
#: not in its memory: a server restarted while a slot was held still knows the lease, so its
#: repossessor frees the slot when the lease expires (from memory, a restart forgot the lease
#: and the slot stayed taken in the database for good). Every server this product starts sets
#: these; the repossessor looks for expired leases every few seconds instead of 15.
DURABLE_LEASES = {
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": (
        "prefect.server.concurrency.lease_storage.filesystem"
    ),
    "PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS": "5",
}


def server_argv(port: int, host: str = "127.0.0.1") -> list[str]:
    """Return the command that serves `create_app` on ``host:port`` (uvicorn, as ``prefect
    server start`` runs Prefect's app). With ``EPHEMERAL`` in its environment it is the
    temporary server; without, the full server (UI, scheduler, automations) of ``make server``.
    """
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        f"{__name__}:create_app",
        "--host",
        host,
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]


class ServerStartError(RuntimeError):
    """The local Prefect server did not answer its health check in time (its log is named)."""


@contextlib.contextmanager
def local_prefect_server(
    *,
    temporary_database: bool = False,
    startup_timeout: float = 180.0,
    log_path: os.PathLike[str] | None = None,
    server_env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Run the local Prefect server (no UI, no scheduler: what Prefect's temporary server runs,
    plus the lease repossessor over leases kept in files, see `DURABLE_LEASES`) on a free
    loopback port and point this process's Prefect settings at it; yield its API URL.

    Its database is Prefect's configured one (under ``PREFECT_HOME``), or with
    ``temporary_database`` a new one deleted afterwards (tests, benchmarks); the server's output
    is appended to ``log_path`` (default: this terminal); ``server_env`` is added to the
    server's environment (its settings: e.g. how soon a run is late). Raises
    `ServerStartError` when the server does not answer within ``startup_timeout`` seconds (a
    first start on a fresh ``PREFECT_HOME`` creates the database: ~20 s on 2 cores).
    """
    from prefect.context import _temporary_global_settings_context, get_settings_context
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_SERVER_DATABASE_CONNECTION_URL,
        get_current_settings,
        temporary_settings,
    )

    with contextlib.ExitStack() as stack:
        if temporary_database:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="prefect-"))
            url = f"sqlite+aiosqlite:///{folder}/prefect.db"
            stack.enter_context(
                temporary_settings(updates={PREFECT_SERVER_DATABASE_CONNECTION_URL: url})
            )
        port = free_port()
        api_url = f"http://127.0.0.1:{port}/api"
        env = {
            **os.environ,
            **EPHEMERAL,
            **DURABLE_LEASES,
            **get_current_settings().to_environment_variables(exclude_unset=True),
        }
        env.pop("PREFECT_API_URL", None)
        env.update(server_env or {})
        # Links in alert messages point at this server's pages.
        env.setdefault("PREFECT_UI_URL", f"http://127.0.0.1:{port}")
        if temporary_database:  # its leases go with its database
            env["PREFECT_HOME"] = folder
        out = stack.enter_context(open(log_path, "ab")) if log_path else None
        process = subprocess.Popen(
            server_argv(port),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
        )
        stack.callback(_stop, process)
        where = f" (its log: {log_path})" if log_path else ""
        try:
            answered = wait_until_answering(
                f"{api_url}/health", [("the local Prefect server", process)],
                timeout=startup_timeout, interval=0.1,
            )  # fmt: skip
        except ExitedWhileStarting as exc:
            raise ServerStartError(f"{exc}{where}") from None
        if not answered:
            raise ServerStartError(
                f"the local Prefect server did not answer in {startup_timeout:.0f} s{where}"
            )
        stack.callback(_drain_prefect_workers)  # runs first: logs and events still queued
        # No flow-run heartbeats: they feed a server's zombie-run automations, and this
        # server runs no services and lives only as long as the command. Prefect 3.9's sync
        # engine joins its heartbeat thread at the end of every flow run, and that thread
        # sleeps in whole seconds: measured, an empty flow took 1.07 s with heartbeats,
        # 0.07-0.19 s without.
        stack.enter_context(
            temporary_settings(
                updates={PREFECT_API_URL: api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
            )
        )
        # As Prefect's test harness does: threads started without a copy of this context
        # (they read the process-global settings) must not start a server of their own.
        stack.enter_context(_temporary_global_settings_context(get_settings_context()))
        yield api_url


def _drain_prefect_workers() -> None:
    """Send the log lines and events this process still queues while the server is up."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        for worker in (APILogWorker, EventsWorker):
            result = worker.drain_all()
            if inspect.isawaitable(result):
                await result

    run_coro_as_sync(drain())


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
