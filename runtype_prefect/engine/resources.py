"""Process-wide shared resources: one `Warehouse` per database file for concurrent jobs, open
only while someone writes, so runs in other processes take their turn between writes."""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..warehouse import Warehouse, is_shared_location, location_key, open_warehouse

#: Longest a writer waits for the warehouse file while another process writes it
#: (``$RUNTYPE_PREFECT_WAREHOUSE_WAIT_SECONDS``): runs hold the file only while they write, so a
#: wait lasts one landing at most, unless a notebook or a stuck process keeps the file open.
DEFAULT_WAREHOUSE_WAIT_SECONDS = 600.0
WAREHOUSE_WAIT_ENV = "RUNTYPE_PREFECT_WAREHOUSE_WAIT_SECONDS"
#: How often a waiting writer says again that it is waiting.
WAIT_NOTICE_SECONDS = 30.0

_lock = threading.Lock()
_open: dict[str, tuple[Warehouse, int]] = {}
#: One opener per file at a time; waiting for another process holds only this file's lock.
_opening: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_kept: Counter[str] = Counter()
_log = logging.getLogger(__name__)


def warehouse_wait_seconds() -> float:
    """Return how long a writer waits for a warehouse file another process holds."""
    value = os.environ.get(WAREHOUSE_WAIT_ENV)
    return float(value) if value else DEFAULT_WAREHOUSE_WAIT_SECONDS


def _no_run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    return _log


def _no_run() -> str:
    return "runtype-prefect"


#: Where waiting notices go and who this process writes for (the warehouse's holder file): the
#: module's logger and the product's name until the Prefect layer points them at the current
#: run (`use_run_context`), so the notice reaches the run's logs in the UI.
_context: dict[str, Callable[..., Any]] = {"logger": _no_run_logger, "identity": _no_run}


def use_run_context(
    logger: Callable[[], logging.Logger | logging.LoggerAdapter[logging.Logger]],
    identity: Callable[[], str],
) -> None:
    """Make waiting notices go to ``logger()`` and holder files name ``identity()`` (both
    called at the moment of use): how the orchestration layer lends the engine its run."""
    _context["logger"], _context["identity"] = logger, identity


def waiting_notice(path: str, limit: float) -> Callable[[str, float], None]:
    """Return an ``on_wait`` hook that logs, in the run's logs (the UI), that this run waits
    for the warehouse and who holds it: at once, then every `WAIT_NOTICE_SECONDS`."""
    last = [-WAIT_NOTICE_SECONDS]

    def notice(holder: str, waited: float) -> None:
        if waited - last[0] < WAIT_NOTICE_SECONDS:
            return
        last[0] = waited
        _context["logger"]().info(
            "waiting for the warehouse %s, held by %s (%.0f s so far, up to %.0f s)",
            path,
            holder,
            waited,
            limit,
        )

    return notice


def _open_for_writing(path: str) -> Warehouse:
    if is_shared_location(path):
        return open_warehouse(path)
    limit = warehouse_wait_seconds()
    return Warehouse(
        path, lock_timeout=limit, on_wait=waiting_notice(path, limit), holder=_context["identity"]()
    )


@contextmanager
def process_warehouse(db_path: str | os.PathLike[str] | None = None) -> Iterator[Warehouse]:
    """Yield the process's `Warehouse` for ``db_path`` (a DuckDB file or a shared location's
    URL, see `open_warehouse`), opening it on first use.

    Jobs running concurrently in one process share one connection (DuckDB allows one writer
    process); the file is closed when the last user leaves, so hold it only while writing.
    Opening waits its turn while another process writes the file (up to
    `warehouse_wait_seconds`, logging who holds it), then raises `WarehouseLockedError`.
    """
    path = location_key(db_path)
    with _lock:
        opening = _opening[path]
    with opening:
        with _lock:
            entry = _open.get(path)
            if entry is not None:
                _open[path] = (entry[0], entry[1] + 1)
        if entry is not None:
            warehouse = entry[0]
        else:
            # Opened outside the registry's lock: a wait for another process stalls only the
            # users of this file. Only openers add entries, and they hold ``opening``.
            warehouse = _open_for_writing(path)
            with _lock:
                _open[path] = (warehouse, 1)
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
    """Keep the `process_warehouse` of a shared location (``s3://…``) open between its users
    until this ends; a DuckDB file is left to close between writes (others wait for it).

    Opens nothing itself; a nightly on a shared location holds its staging warehouse from its
    preflight's forecasts to its last job, and pulls the location's history once.
    """
    path = location_key(db_path)
    if not is_shared_location(path):
        yield
        return
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
