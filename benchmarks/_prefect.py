"""The Prefect server a benchmark runs on: the one ``PREFECT_API_URL`` names when it is set
(for example a server on Postgres, production's configuration), else a temporary local one
(SQLite), as `make bench` runs it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def prefect_server() -> Iterator[str]:
    """Yield a description of the Prefect server in use, running for the duration."""
    if url := os.environ.get("PREFECT_API_URL"):
        yield f"the Prefect server at {url}"
        return
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield "a temporary local Prefect server (SQLite)"
