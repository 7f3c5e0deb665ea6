"""Opening the DuckDB file: brief, retried on lock conflicts, and clear when it cannot.

DuckDB lets one process write *or* many read a file. A conflicting lock is retried with backoff
for ``lock_timeout`` seconds, then raised as `WarehouseLockedError` naming the file and the
process that holds it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

_PID = re.compile(r"PID (\d+)")


class WarehouseError(Exception):
    """Base class of the warehouse's errors."""


class WarehouseLockedError(WarehouseError):
    """Another process holds a lock on the DuckDB file that conflicts with ours."""

    def __init__(self, path: Path, holder_pid: int | None, waited: float, detail: str) -> None:
        self.path = path
        self.holder_pid = holder_pid
        holder = f"process {holder_pid}" if holder_pid else "another process"
        super().__init__(
            f"DuckDB file {str(path)!r} is locked by {holder} (waited {waited:.1f}s): {detail}."
            " Close that connection (e.g. a notebook kernel holding the working database; "
            "notebooks should open the analytics snapshot instead) and re-run: nothing fetched "
            "is lost, a re-run lands it."
        )


def is_lock_conflict(exc: BaseException) -> bool:
    """Return True when ``exc`` is DuckDB's "Could not set lock on file" error."""
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def connect(
    path: Path,
    *,
    read_only: bool = False,
    lock_timeout: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> duckdb.DuckDBPyConnection:
    """Return a connection to ``path``, retrying a lock conflict for up to ``lock_timeout`` s.

    Raises `WarehouseLockedError` when the lock is still held at the end.
    """
    waited, delay = 0.0, 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not is_lock_conflict(exc):
                raise
            if waited >= lock_timeout:
                match = _PID.search(str(exc))
                raise WarehouseLockedError(
                    path, int(match.group(1)) if match else None, waited, str(exc).splitlines()[0]
                ) from exc
            step = min(delay, lock_timeout - waited)
            sleep(step)
            waited += step
            delay = min(delay * 2, 2.0)
