"""Running the sandbox: in the foreground (the CLI) or on a background thread (demo, tests)."""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from .app import create_app
from .faults import DroppedConnection, FaultConfig
from .state import SandboxSettings


class _QuietDrops(logging.Filter):
    """Hide the traceback uvicorn logs for connections the fault injector drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, DroppedConnection):
                return False
            exc = exc.__cause__ or exc.__context__
            if isinstance(exc, BaseExceptionGroup):
                exc = exc.exceptions[0]
        return True


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


class PortInUseError(OSError):
    """The sandbox's port is taken by another process."""


def bind(host: str, port: int) -> socket.socket:
    """Return a listening socket on ``host:port`` (port 0 picks a free one).

    Raises `PortInUseError` naming the address when the port is taken.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only for that proto,
    # and without it small responses on kept-alive connections stall ~40 ms (Nagle vs ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                exc.errno,
                f"port {port} on {host} is already in use: stop what holds it or pass"
                " another --port (0 picks a free one)",
            ) from None
        raise
    sock.listen(128)
    return sock


def uvicorn_server(app: ASGIApp) -> uvicorn.Server:
    """Return the uvicorn server the sandbox runs under (quiet; the app sends its own
    simulated-clock ``Date`` header)."""
    return uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", date_header=False)
    )


class SandboxServer:
    """The sandbox on a free loopback port, served by uvicorn on a daemon thread.

    ``with SandboxServer() as sandbox:`` starts it and waits until it accepts connections;
    ``sandbox.base_url`` and ``sandbox.api_key`` point a client at it. Raises RuntimeError when
    the server does not come up within ``startup_timeout`` seconds.
    """

    def __init__(
        self,
        settings: SandboxSettings | None = None,
        faults: FaultConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 10.0,
    ) -> None:
        self.app = create_app(settings, faults)
        self.settings: SandboxSettings = self.app.state.sandbox.settings
        self._socket = bind(host, port)
        self.host, self.port = self._socket.getsockname()[:2]
        self._server = uvicorn_server(self.app)
        self._thread = threading.Thread(target=self._run, name="runtype-sandbox", daemon=True)
        self._startup_timeout = startup_timeout

    @property
    def base_url(self) -> str:
        """The API base URL, ``http://127.0.0.1:<port>/v1``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def root_url(self) -> str:
        """The server's root URL (the sandbox-only controls live under ``/_sandbox``)."""
        return self.base_url.removesuffix("/v1")

    @property
    def api_key(self) -> str:
        """The first key the sandbox accepts."""
        return self.settings.api_keys[0]

    def _run(self) -> None:
        self._server.run(sockets=[self._socket])

    def start(self) -> SandboxServer:
        """Start serving and return self once the server is ready."""
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox did not start on {self.base_url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
