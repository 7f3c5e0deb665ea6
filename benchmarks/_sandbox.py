"""The sandbox a benchmark talks to in a process of its own, as the real API is remote: the
benchmark's client and the server then do not share one interpreter (and its GIL)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from runtype_prefect.cli.processes import free_port, wait_until_answering

API_KEY = "rt_test_sandbox"


@contextlib.contextmanager
def sandbox_process(*options: str, timeout: float = 60.0) -> Iterator[str]:
    """Run ``runtype-prefect sandbox`` with ``options`` until the block ends; yield its base
    URL once it answers (as `runtype-prefect server` waits for it). Raises RuntimeError when
    it stays silent past ``timeout``, `ExitedWhileStarting` when it exits first."""
    port = free_port()
    cli = Path(sys.executable).with_name("runtype-prefect")
    argv = [str(cli), "sandbox", "--port", str(port), "--api-key", API_KEY, *options]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_answering(
            f"{root}/openapi.json", [("sandbox", proc)], timeout=timeout, interval=0.2
        ):
            raise RuntimeError(f"the sandbox did not answer within {timeout:.0f} s")
        yield f"{root}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
