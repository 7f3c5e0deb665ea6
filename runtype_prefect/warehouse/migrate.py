"""Versioned schema migrations (``migrations/NNNN_name.sql``), applied in order on open."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def migrations() -> list[tuple[int, str, str]]:
    """Return (version, name, sql) of every migration file, in version order."""
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        version = int(path.name[:4])
        found.append((version, path.stem[5:], path.read_text()))
    return found


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
