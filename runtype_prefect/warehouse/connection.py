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


class WarehouseCorruptError(WarehouseError):
    """The file is not a readable DuckDB database (truncated, overwritten, not DuckDB at all).

    It was opened read-only to find out, so its bytes are exactly as they were.
    """

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        super().__init__(
            f"DuckDB file {str(path)!r} cannot be read ({detail}); it was not written to."
            " Restore it from a backup, or move it aside so a run starts a new warehouse."
        )


class SchemaTooNewError(WarehouseError):
    """The file was migrated by a newer runtype-prefect than this one."""

    def __init__(self, path: Path, found: int, known: int) -> None:
        self.path, self.found, self.known = path, found, known
        super().__init__(
            f"DuckDB file {str(path)!r} was written by a newer runtype-prefect (schema {found};"
            f" this one knows up to {known}); upgrade runtype-prefect"
        )


def read_schema_version(
    path: Path, *, lock_timeout: float = 30.0, sleep: Callable[[float], None] = time.sleep
) -> int | None:
    """Open an existing warehouse file read-only, check that it is whole, and return its schema
    version (None when it has no migrations yet, or when this process already holds it open).

    Raises `WarehouseCorruptError` for a file DuckDB cannot read or that is shorter than its
    own block count says, and `WarehouseLockedError` when another process holds it.
    """
    try:
        con = connect(path, read_only=True, lock_timeout=lock_timeout, sleep=sleep)
    except duckdb.ConnectionException as exc:
        if "different configuration" in str(exc):
            return None  # open read-write in this process already: validated when it opened
        raise
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        raise WarehouseCorruptError(path, str(exc).splitlines()[0]) from exc
    try:
        size = con.execute("PRAGMA database_size").fetchone()
        wal = path.with_name(path.name + ".wal")
        # The file holds at least its used blocks (free ones at the end are cut off at a
        # checkpoint); with a write-ahead log, blocks may not have reached the file yet.
        if size is not None and not (wal.exists() and wal.stat().st_size):
            expected = HEADER_BYTES + int(size[2]) * int(size[4])  # block_size × used_blocks
            actual = path.stat().st_size
            if actual < expected:
                raise WarehouseCorruptError(
                    path, f"truncated: {actual:,} bytes where its blocks need {expected:,}"
                )
        has_table = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        ).fetchone()
        if not has_table or not has_table[0]:
            return None
        row = con.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0]) if row and row[0] is not None else None
    except duckdb.Error as exc:
        raise WarehouseCorruptError(path, str(exc).splitlines()[0]) from exc
    finally:
        con.close()


#: DuckDB's file header: three 4 KiB blocks before the data blocks.
HEADER_BYTES = 3 * 4096


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
