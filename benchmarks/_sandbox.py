"""The sandbox a benchmark talks to in a process of its own, as the real API is remote: the
benchmark's client and the server then do not share one interpreter (and its GIL)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

API_KEY = "rt_test_sandbox"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def sandbox_process(*options: str, timeout: float = 60.0) -> Iterator[str]:
    """Run ``runtype-prefect sandbox`` with ``options`` until the block ends; yield its base
    URL once it answers. Raises RuntimeError when it exits or stays silent past ``timeout``."""
    port = _free_port()
    cli = Path(sys.executable).with_name("runtype-prefect")
    argv = [str(cli), "sandbox", "--port", str(port), "--api-key", API_KEY, *options]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the sandbox exited ({proc.returncode}) while starting")
            with contextlib.suppress(httpx.TransportError):
                headers = {"Authorization": f"Bearer {API_KEY}"}
                if httpx.get(f"{base_url}/flows", headers=headers, timeout=2).is_success:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox did not answer within {timeout:.0f} s")
            time.sleep(0.2)
        yield base_url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
