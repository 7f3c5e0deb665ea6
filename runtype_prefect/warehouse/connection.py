"""Opening the DuckDB file: brief, retried on lock conflicts, and clear when it cannot.

DuckDB lets one process write *or* many read a file. A conflicting lock is retried with backoff
for ``lock_timeout`` seconds, then raised as `WarehouseLockedError` naming the file and the
process that holds it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

_PID = re.compile(r"PID (\d+)")
#: The most memory each DuckDB database of this process may use ("256MB", "1GB"); unset:
#: DuckDB's default, 80 % of the machine's RAM.
MEMORY_LIMIT_ENV = "RUNTYPE_DUCKDB_MEMORY_LIMIT"


class WarehouseError(Exception):
    """Base class of the warehouse's errors."""


class WarehouseLockedError(WarehouseError):
    """Another process holds a lock on the DuckDB file that conflicts with ours."""

    def __init__(self, path: Path, holder_pid: int | None, waited: float, detail: str) -> None:
        self.path = path
        self.holder_pid = holder_pid
        self.holder = describe_holder(path, holder_pid)
        super().__init__(
            f"DuckDB file {str(path)!r} is held by {self.holder} (waited {waited:.1f}s):"
            f" {detail}. Wait for that run to finish, or close that connection (e.g. a notebook"
            " kernel holding the working database; notebooks should open the analytics snapshot"
            " instead), and re-run: nothing fetched is lost, a re-run lands it."
        )


class WarehouseFolderMissingError(WarehouseError):
    """The warehouse file's folder does not exist: most likely a mistyped path.

    A new warehouse there would have an empty start ledger, and a run would start (and pay
    for) a batch the real warehouse already holds; so the folder is never created implicitly.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"the warehouse's folder {str(path.parent)!r} does not exist (is the path"
            f" {str(path)!r} mistyped?): nothing was created. Create the folder first to start a"
            " new warehouse there."
        )


def holder_path(path: Path) -> Path:
    """Return the file beside the warehouse ``path`` that names the process writing it."""
    return path.with_name(path.name + ".holder")


def write_holder(path: Path, description: str) -> None:
    """Name this process as the writer of ``path`` (read by `describe_holder` in the processes
    that wait for it). Best effort: a folder that refuses the file changes nothing else."""
    with contextlib.suppress(OSError):
        holder_path(path).write_text(json.dumps({"pid": os.getpid(), "what": description}))


def clear_holder(path: Path) -> None:
    """Remove the holder file of ``path`` when it names this process."""
    target = holder_path(path)
    try:
        if json.loads(target.read_text()).get("pid") == os.getpid():
            target.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def describe_holder(path: Path, pid: int | None) -> str:
    """Return who holds ``path``: the run its holder file names when that process is the one
    DuckDB reports (a crashed holder's stale file is ignored), else the process id."""
    try:
        holder = json.loads(holder_path(path).read_text())
    except (OSError, ValueError):
        holder = {}
    process = f"process {pid}" if pid else "another process"
    if (
        isinstance(holder, dict)
        and holder.get("what")
        and (pid is None or holder.get("pid") == pid)
    ):
        return f"{holder['what']} ({process})"
    return process


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
    path: Path,
    *,
    lock_timeout: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    on_wait: Callable[[str, float], None] | None = None,
) -> int | None:
    """Open an existing warehouse file read-only, check that it is whole, and return its schema
    version (None when it has no migrations yet, or when this process already holds it open).

    Raises `WarehouseCorruptError` for a file DuckDB cannot read or that is shorter than its
    own block count says, and `WarehouseLockedError` when another process holds it.
    """
    try:
        con = connect(path, read_only=True, lock_timeout=lock_timeout, sleep=sleep, on_wait=on_wait)
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


class WarehouseSettingError(WarehouseError, ValueError):
    """An environment setting of the warehouse holds a value DuckDB refuses."""


def open_duckdb(path: str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Return ``duckdb.connect(path)`` with the settings every DuckDB database this process
    opens takes from the environment: ``memory_limit`` from ``$RUNTYPE_DUCKDB_MEMORY_LIMIT``,
    when set.

    A landing keeps its appended rows and the table's blocks in memory while DuckDB's limit
    allows; a limit bounds a worker's memory at some of the landing's speed (measured in
    `benchmarks/bench_landing.py`). Raises `WarehouseSettingError` naming the variable when
    DuckDB refuses its value.
    """
    limit = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if not limit:
        return duckdb.connect(path, read_only=read_only)
    try:
        return duckdb.connect(path, read_only=read_only, config={"memory_limit": limit})
    except (duckdb.ParserException, duckdb.InvalidInputException) as exc:
        raise WarehouseSettingError(
            f"{MEMORY_LIMIT_ENV}={limit!r} is not a memory size DuckDB reads"
            f" (for example 512MB or 2GB): {exc}"
        ) from exc


def is_lock_conflict(exc: BaseException) -> bool:
    """Return True when ``exc`` is DuckDB's "Could not set lock on file" error."""
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def connect(
    path: Path,
    *,
    read_only: bool = False,
    lock_timeout: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    on_wait: Callable[[str, float], None] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Return a connection to ``path``, retrying a lock conflict for up to ``lock_timeout`` s;
    ``on_wait(holder, waited)`` hears of every retry (who holds the file, seconds waited).

    Raises `WarehouseLockedError` when the lock is still held at the end.
    """
    waited, delay = 0.0, 0.05
    while True:
        try:
            return open_duckdb(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not is_lock_conflict(exc):
                raise
            match = _PID.search(str(exc))
            pid = int(match.group(1)) if match else None
            if waited >= lock_timeout:
                raise WarehouseLockedError(path, pid, waited, str(exc).splitlines()[0]) from exc
            if on_wait is not None:
                on_wait(describe_holder(path, pid), waited)
            step = min(delay, lock_timeout - waited)
            sleep(step)
            waited += step
            delay = min(delay * 2, 2.0)
