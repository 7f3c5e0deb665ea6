"""Starting servers as child processes: a free port for one, and waiting for it to answer."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterable
from typing import Any

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    """Return a port on ``host`` nothing listens on now (the OS picks it; a server started
    next can bind it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ExitedWhileStarting(Exception):
    """A child process ended before the server came up."""

    def __init__(self, name: str, returncode: int) -> None:
        super().__init__(f"{name} exited ({returncode}) while starting")
        self.name = name
        self.returncode = returncode


def wait_until_answering(
    url: str,
    processes: Iterable[tuple[str, subprocess.Popen[Any]]],
    *,
    timeout: float,
    interval: float,
) -> bool:
    """Poll ``url`` every ``interval`` seconds; return True once it answers 200, False when
    ``timeout`` seconds pass first. Raises `ExitedWhileStarting` when one of the named
    ``processes`` ends meanwhile (no point waiting for a server that is gone)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as http:
        while time.monotonic() < deadline:
            for name, process in processes:
                if process.poll() is not None:
                    raise ExitedWhileStarting(name, process.returncode)
            with contextlib.suppress(httpx.HTTPError):
                if http.get(url).status_code == 200:
                    return True
            time.sleep(interval)
    return False
