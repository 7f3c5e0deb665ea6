"""Process-wide shared resources: one `Warehouse` per database file for concurrent jobs."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from ..warehouse import Warehouse, location_key, open_warehouse

_lock = threading.Lock()
_open: dict[str, tuple[Warehouse, int]] = {}
_kept: Counter[str] = Counter()


@contextmanager
def shared_warehouse(db_path: str | os.PathLike[str] | None = None) -> Iterator[Warehouse]:
    """Yield the process's `Warehouse` for ``db_path`` (a DuckDB file or a shared location's
    URL, see `open_warehouse`), opening it on first use.

    Jobs running concurrently in one process share one connection (DuckDB allows one writer
    process); the file is closed when the last user leaves. Raises `WarehouseLockedError`
    when another process holds the file.
    """
    path = location_key(db_path)
    with _lock:
        if path in _open:
            warehouse, users = _open[path]
        else:
            warehouse, users = open_warehouse(path), 0
        _open[path] = (warehouse, users + 1)
    try:
        yield warehouse
    finally:
        with _lock:
            warehouse, users = _open[path]
            if users == 1 and not _kept[path]:
                del _open[path]
                warehouse.close()
            else:
                _open[path] = (warehouse, users - 1)


@contextmanager
def kept_open(db_path: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Keep the `shared_warehouse` of ``db_path`` open between its users until this ends.

    Opens nothing itself, so what runs first (a preflight's read-only check of the file) still
    meets it closed; a nightly holds it from its preflight's forecasts to its last job, and
    opens the file (and pulls a shared location's history) once instead of twice.
    """
    path = location_key(db_path)
    with _lock:
        _kept[path] += 1
    try:
        yield
    finally:
        with _lock:
            _kept[path] -= 1
            if not _kept[path]:
                del _kept[path]
                if path in _open and _open[path][1] == 0:
                    _open.pop(path)[0].close()
