"""The Prefect server a benchmark runs on: the one ``PREFECT_API_URL`` names when it is set
(for example a server on Postgres, production's configuration), else the local SQLite server
the CLI starts (`runtype_prefect.cli.local_prefect`) on a temporary database, as `make bench`
runs it."""

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
    from runtype_prefect.cli.local_prefect import local_prefect_server

    with local_prefect_server(temporary_database=True):
        yield "the CLI's local Prefect server (SQLite, a temporary database)"
