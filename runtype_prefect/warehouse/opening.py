"""One way to open the warehouse a location names: a DuckDB file, or a shared location."""

from __future__ import annotations

import os

from .shared import SharedWarehouse, is_shared_location
from .store import DB_ENV, Warehouse, default_db_path


def location_key(location: str | os.PathLike[str] | None) -> str:
    """Return the canonical name of the warehouse ``location`` names (a URL as given, or the
    DuckDB file's absolute path, ``$RUNTYPE_PREFECT_DB`` and the default applied)."""
    chosen = location or os.environ.get(DB_ENV)
    if is_shared_location(chosen):
        return str(chosen).rstrip("/")
    return str(default_db_path(location))


def open_warehouse(location: str | os.PathLike[str] | None = None) -> Warehouse:
    """Return the warehouse at ``location``: a `SharedWarehouse` for ``s3://…`` or
    ``file:///…``, else the DuckDB file (the argument, ``$RUNTYPE_PREFECT_DB`` or the default).

    Raises what `Warehouse` and `SharedWarehouse` raise (a locked or corrupt file, an
    unreachable location).
    """
    key = location_key(location)
    return SharedWarehouse(key) if is_shared_location(key) else Warehouse(key)
