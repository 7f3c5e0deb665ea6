"""A local production-like stack: a real Prefect server (SQLite, UI on loopback), the sandbox,
`runtype-prefect setup`, the deployments of ``deployments/prefect.yaml`` and a process worker.

``make server`` runs it until Ctrl-C or SIGTERM; the end-to-end test runs it on free ports.
Each piece is a child process in one process group of their own, so stopping signals them
all, and their own children, at once; their output goes to log files under the Prefect home,
except the worker's. The stack refuses ports that are taken rather than adopt whatever answers
there, and sets up and deploys only onto the server it started (or the one ``api_url`` names).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from ..client.sandbox_control import SANDBOX_TEST_KEY as DEFAULT_API_KEY
from ..client.sandbox_control import sandbox_page_template
from .local_prefect import DURABLE_LEASES, server_argv
from .processes import ExitedWhileStarting, wait_until_answering

BIN = Path(sys.executable).parent
#: Seconds children get to exit after SIGTERM before the whole group is killed.
STOP_GRACE_SECONDS = 8.0


def ui_url_for(api_url: str) -> str:
    """Return the Prefect UI's address for a Prefect API URL (the API is served under /api)."""
    return api_url.rstrip("/").removesuffix("/api")


class StackError(RuntimeError):
    """A piece of the stack did not start or a command failed; the message says which."""


class LocalStack:
    """Start with ``with LocalStack(...) as stack:``; everything stops on exit."""

    def __init__(
        self,
        *,
        prefect_port: int = 4200,
        sandbox_port: int = 8765,
        sandbox_url: str | None = None,
        api_url: str | None = None,
        api_key: str = DEFAULT_API_KEY,
        time_scale: float = 0.01,
        home: str | os.PathLike[str] | None = None,
        db_path: str | os.PathLike[str] = "runtype.duckdb",
        project_root: str | os.PathLike[str] | None = None,
        worker_poll_seconds: float = 5.0,
        setup_options: list[str] | None = None,
        log: Callable[[str], object] = print,
    ) -> None:
        self.root = Path(project_root or Path.cwd()).resolve()
        self.home = Path(home or os.environ.get("PREFECT_HOME") or self.root / ".prefect")
        self.home = self.home.expanduser().resolve()
        self.logs = self.home / "logs"
        self.db_path = Path(db_path).resolve()
        self._own_server = api_url is None
        self.api_url = (api_url or f"http://127.0.0.1:{prefect_port}/api").rstrip("/")
        self.ui_url = ui_url_for(self.api_url)
        self.prefect_port = prefect_port
        self.sandbox_port = sandbox_port
        self.sandbox_url = sandbox_url or f"http://127.0.0.1:{sandbox_port}/v1"
        self._own_sandbox = sandbox_url is None
        self.time_scale = time_scale
        self.log = log
        self.setup_options = list(setup_options or [])
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_UI_URL": self.ui_url,  # the links in alert messages
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            **DURABLE_LEASES,
            "PREFECT_WORKER_QUERY_SECONDS": os.environ.get(
                "PREFECT_WORKER_QUERY_SECONDS", str(worker_poll_seconds)
            ),
            # Off by default in Prefect 3.9: without it a cancelled run is only stopped by the
            # server's cleanup loop, tens of seconds later.
            "PREFECT_WORKER_ENABLE_CANCELLATION": "true",
            "RUNTYPE_API_KEY": api_key,
            "RUNTYPE_BASE_URL": self.sandbox_url,
            "RUNTYPE_DASHBOARD_URL_TEMPLATE": sandbox_page_template(self.sandbox_url),
            "RUNTYPE_PREFECT_DB": str(self.db_path),
        }
        self._procs: list[tuple[str, subprocess.Popen]] = []
        #: The process group every child joins (the first child's pid), once one started.
        self.process_group: int | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the Prefect server (unless ``api_url`` names one) and the sandbox, wait for
        both, run setup. Raises `StackError` naming a taken port before starting anything."""
        if self._own_server:
            ensure_port_free(self.prefect_port, "the Prefect server", "--port")
        if self._own_sandbox:
            ensure_port_free(self.sandbox_port, "the sandbox", "--sandbox-port")
        self.logs.mkdir(parents=True, exist_ok=True)
        if self._own_server:
            self.log(f"Prefect server on {self.ui_url} (home {self.home})")
            # Prefect's server app behind the middleware that re-runs SQLite-busy requests
            # (`local_prefect`), served as `prefect server start` serves it: UI and services.
            self._spawn(
                "prefect-server",
                server_argv(self.prefect_port),
                env={"PREFECT__SERVER_FINAL": "1"},
            )
        else:
            self.log(f"Prefect server at {self.api_url} (not started here)")
        if self._own_sandbox:
            self.log(f"sandbox on {self.sandbox_url}")
            self._spawn(
                "sandbox",
                [
                    sys.executable,
                    "-m",
                    "runtype_prefect",
                    "sandbox",
                    "--port",
                    str(self.sandbox_port),
                    "--time-scale",
                    str(self.time_scale),
                ],
            )
            self._wait_http(self.sandbox_url.removesuffix("/v1") + "/openapi.json", "sandbox")
        self._wait_http(self.api_url + "/health", "Prefect server", timeout=120)
        self.run([sys.executable, "-m", "runtype_prefect", "setup", *self.setup_options], "setup")

    def deploy(self) -> None:
        """Apply ``deployments/prefect.yaml`` to the server (``prefect deploy --all``)."""
        self.run(
            [
                str(BIN / "prefect"),
                "--no-prompt",
                "deploy",
                "--all",
                "--prefect-file",
                "deployments/prefect.yaml",
            ],
            "deploy",
        )

    def start_worker(self, pool: str = "runtype-process") -> None:
        """Start a process worker on ``pool`` (its output goes to the terminal)."""
        self.log(f"process worker on pool {pool}")
        self._spawn(
            "worker",
            [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--type", "process"],
            to_terminal=True,
        )

    def wait(self) -> None:
        """Block until Ctrl-C (or SIGTERM, see `stop_on_sigterm`) or until a piece of the stack
        exits (raising `StackError`)."""
        try:
            while True:
                for name, proc in self._procs:
                    if proc.poll() is not None:
                        raise StackError(f"{name} exited ({proc.returncode}); see {self.logs}")
                time.sleep(1)
        except KeyboardInterrupt:
            self.log("stopping")

    def stop(self) -> None:
        """Stop every child and their children: the worker first, then SIGTERM to the process
        group, SIGKILL to what is left after `STOP_GRACE_SECONDS`."""
        if self.process_group is not None:
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            # The worker while the server still answers: stopped together, the server closes
            # the worker's event websocket mid-read and the worker prints a traceback.
            for name, proc in self._procs:
                if name == "worker" and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=max(0.1, deadline - time.monotonic() - 2))
            _signal_group(self.process_group, signal.SIGTERM)
            for _, proc in self._procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            while time.monotonic() < deadline and _group_alive(self.process_group):
                time.sleep(0.1)
            _signal_group(self.process_group, signal.SIGKILL)
            for _, proc in self._procs:
                proc.wait()
        self._procs.clear()
        self.process_group = None

    # --- helpers -------------------------------------------------------------------------------

    def run(self, argv: list[str], what: str, timeout: float = 300) -> str:
        """Run a command with the stack's environment; return its output, raise `StackError`."""
        done = subprocess.run(
            argv,
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        (self.logs / f"{what}.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            raise StackError(
                f"{what} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
            )
        self.log(f"{what}: ok")
        return done.stdout

    def _spawn(
        self,
        name: str,
        argv: list[str],
        *,
        to_terminal: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        out = None if to_terminal else open(self.logs / f"{name}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            argv,
            cwd=self.root,
            env={**self.env, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            # The first child leads a new group (in our session, so the terminal still reaches
            # us); the others join it. Stopping signals the group: grandchildren too.
            process_group=0 if self.process_group is None else self.process_group,
            preexec_fn=_die_with_parent,
        )
        if self.process_group is None:
            self.process_group = proc.pid
        self._procs.append((name, proc))

    def _wait_http(self, url: str, what: str, timeout: float = 60) -> None:
        try:
            if wait_until_answering(url, self._procs, timeout=timeout, interval=0.5):
                return
        except ExitedWhileStarting as exc:
            raise StackError(f"{exc}; see {self.logs / (exc.name + '.log')}") from None
        raise StackError(f"{what} did not answer {url} within {timeout:.0f}s; see {self.logs}")


def ensure_port_free(port: int, what: str, option: str) -> None:
    """Raise `StackError` in one line when ``port`` on loopback is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers bind: a port whose last connections linger in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise StackError(
                f"port {port} for {what} is already in use (another `runtype-prefect server`?):"
                f" stop what holds it, or pass another {option}"
            ) from None


def stop_on_sigterm() -> None:
    """Make SIGTERM stop the stack like Ctrl-C does (call from the main thread)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def api_url_of(url: str) -> str:
    """Return a Prefect API URL ending in ``/api`` (accepts the UI's address too)."""
    parts = urlsplit(url.rstrip("/"))
    return url.rstrip("/") if parts.path.endswith("/api") else url.rstrip("/") + "/api"


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM if the stack's process dies."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
