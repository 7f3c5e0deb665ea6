"""Process-wide shared resources: one `Warehouse` per database file for concurrent jobs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..warehouse import Warehouse, location_key, open_warehouse

_lock = threading.Lock()
_open: dict[str, tuple[Warehouse, int]] = {}


@contextmanager
def shared_warehouse(db_path: str | None = None) -> Iterator[Warehouse]:
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
            if users == 1:
                del _open[path]
                warehouse.close()
            else:
                _open[path] = (warehouse, users - 1)
