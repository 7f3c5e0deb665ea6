"""Versioned schema migrations (``migrations/NNNN_name.sql``), applied in order on open."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_PACKAGE = Path(__file__).resolve().parents[1]
#: The SQL models: the repository's analytics/ folder, or its copy inside an installed wheel.
ANALYTICS_DIRS = (_PACKAGE.parent / "analytics", _PACKAGE / "_analytics")


def analytics_dir() -> Path:
    """Return the folder of the analytics SQL models; raise FileNotFoundError if missing."""
    for folder in ANALYTICS_DIRS:
        if folder.is_dir() and any(folder.glob("*.sql")):
            return folder
    raise FileNotFoundError(f"no analytics SQL models in {[str(d) for d in ANALYTICS_DIRS]}")


def view_files() -> list[Path]:
    """Return the analytics SQL files in the order they are applied (by file name)."""
    return sorted(analytics_dir().glob("*.sql"))


def apply_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """(Re)create every analytics view and macro in one transaction; return the file names.

    Raises duckdb.Error naming the file whose SQL failed.
    """
    applied = []
    con.begin()
    try:
        for path in view_files():
            try:
                con.execute(path.read_text())
            except duckdb.Error as exc:
                raise type(exc)(f"analytics model {path.name}: {exc}") from exc
            applied.append(path.name)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return applied


def migrations() -> list[tuple[int, str, str]]:
    """Return (version, name, sql) of every migration file, in version order."""
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        version = int(path.name[:4])
        found.append((version, path.stem[5:], path.read_text()))
    return found


def latest_version() -> int:
    """Return the newest schema version this package knows."""
    return max(version for version, _, _ in migrations())


def apply_migrations(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply the migrations ``con`` has not seen, each in its own transaction; return them."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ)"
    )
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, name, sql in migrations():
        if version in done:
            continue
        con.begin()
        try:
            con.execute(sql)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, datetime.now(UTC)]
            )
            con.commit()
        except BaseException:
            con.rollback()
            raise
        applied.append(version)
    return applied
