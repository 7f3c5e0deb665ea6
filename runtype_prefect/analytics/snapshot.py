"""Opening the analysts' copy of the warehouse: the published snapshot, read-only."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from ..warehouse import default_db_path, open_duckdb, snapshot_path_for
from ..warehouse.migrate import apply_views_temporarily


class AnalyticsUnavailableError(FileNotFoundError):
    """There is no analytics snapshot to read yet."""


def resolve_analytics_path(db: str | os.PathLike | None = None) -> Path:
    """Return the database file analysts read for ``db``.

    ``db`` may name the working database (its snapshot is used) or a snapshot itself; default:
    the snapshot of ``$RUNTYPE_PREFECT_DB`` or ``runtype.duckdb``. Raises
    `AnalyticsUnavailableError` when neither the snapshot nor a given file exists.
    """
    path = default_db_path(db)
    snapshot = path if path.stem.endswith(".analytics") else snapshot_path_for(path)
    if snapshot.exists():
        return snapshot
    if db is not None and path.exists() and path != snapshot:
        # An explicitly named file without a snapshot (e.g. a hand-built test warehouse).
        return path
    raise AnalyticsUnavailableError(
        f"no analytics snapshot at {str(snapshot)!r}: run the nightly flow (or `make demo`) "
        "first; it publishes the snapshot after landing"
    )


def connect(db: str | os.PathLike | None = None) -> duckdb.DuckDBPyConnection:
    """Return a read-only connection to the analysts' database (see `resolve_analytics_path`).

    Read-only, and on the snapshot: an open notebook never blocks a nightly run; reconnect to
    see a newer night. A snapshot published by another version of the models is read through
    this version's (as temporary views), so an upgrade never breaks a notebook or the report
    before the next publish.
    """
    con = open_duckdb(str(resolve_analytics_path(db)), read_only=True)
    try:
        apply_views_temporarily(con)
    except BaseException:
        con.close()
        raise
    return con
