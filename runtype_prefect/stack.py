"""A local production-like stack: a real Prefect server (SQLite, UI on loopback), the sandbox,
`runtype-prefect setup`, the deployments of ``deployments/prefect.yaml`` and a process worker.

``make server`` runs it until Ctrl-C; the end-to-end test runs it on free ports. Each piece is
a child process; their output goes to log files under the Prefect home, except the worker's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from .sandbox import DEFAULT_API_KEY

BIN = Path(sys.executable).parent


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
        api_key: str = DEFAULT_API_KEY,
        time_scale: float = 0.01,
        home: str | os.PathLike | None = None,
        db_path: str | os.PathLike = "runtype.duckdb",
        project_root: str | os.PathLike | None = None,
        worker_poll_seconds: float = 5.0,
        log: Callable[[str], object] = print,
    ) -> None:
        self.root = Path(project_root or Path.cwd()).resolve()
        self.home = Path(home or self.root / ".prefect").resolve()
        self.logs = self.home / "logs"
        self.db_path = Path(db_path).resolve()
        self.api_url = f"http://127.0.0.1:{prefect_port}/api"
        self.ui_url = f"http://127.0.0.1:{prefect_port}"
        self.prefect_port = prefect_port
        self.sandbox_port = sandbox_port
        self.sandbox_url = sandbox_url or f"http://127.0.0.1:{sandbox_port}/v1"
        self._own_sandbox = sandbox_url is None
        self.time_scale = time_scale
        self.log = log
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": str(worker_poll_seconds),
            # Off by default in Prefect 3.9: without it a cancelled run is only stopped by the
            # server's cleanup loop, tens of seconds later.
            "PREFECT_WORKER_ENABLE_CANCELLATION": "true",
            "RUNTYPE_API_KEY": api_key,
            "RUNTYPE_BASE_URL": self.sandbox_url,
            "RUNTYPE_PREFECT_DB": str(self.db_path),
        }
        self._procs: list[tuple[str, subprocess.Popen]] = []

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
        """Start the Prefect server and the sandbox, wait for both, run setup."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.log(f"Prefect server on {self.ui_url} (home {self.home})")
        self._spawn(
            "prefect-server",
            [
                str(BIN / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.prefect_port),
            ],
        )
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
            self._wait_http(self.sandbox_url.removesuffix("/v1") + "/_sandbox/clock", "sandbox")
        self._wait_http(self.api_url + "/health", "Prefect server", timeout=120)
        self.run([sys.executable, "-m", "runtype_prefect", "setup"], "setup")

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
        """Block until Ctrl-C or until a piece of the stack exits."""
        try:
            while True:
                for name, proc in self._procs:
                    if proc.poll() is not None:
                        raise StackError(f"{name} exited ({proc.returncode}); see {self.logs}")
                time.sleep(1)
        except KeyboardInterrupt:
            self.log("stopping")

    def stop(self) -> None:
        """Stop every child process (SIGTERM, then SIGKILL after 15 s)."""
        for _, proc in reversed(self._procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in reversed(self._procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()

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

    def _spawn(self, name: str, argv: list[str], *, to_terminal: bool = False) -> None:
        out = None if to_terminal else open(self.logs / f"{name}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            argv, cwd=self.root, env=self.env, stdout=out, stderr=subprocess.STDOUT if out else None
        )
        self._procs.append((name, proc))

    def _wait_http(self, url: str, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self._procs:
                if proc.poll() is not None:
                    raise StackError(
                        f"{name} exited ({proc.returncode}) while starting; "
                        f"see {self.logs / (name + '.log')}"
                    )
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise StackError(f"{what} did not answer {url} within {timeout:.0f}s; see {self.logs}")
