"""Versioned schema migrations (``migrations/NNNN_name.sql``), applied in order on open."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from datetime import UTC, datetime
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import duckdb

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: The SQL models live in the repository's top-level ``analytics/`` folder; a wheel carries a
#: copy of it as package data (``pyproject.toml``: force-include).
MODELS_FOLDER = "analytics"
PACKAGED_MODELS = "_analytics"
DISTRIBUTION = "runtype-prefect"


def source_tree() -> Path | None:
    """Return the checkout this package is installed from in editable mode (``uv sync``,
    ``pip install -e``), read from the install's PEP 610 record (``direct_url.json``); None
    for a regular install."""
    try:
        record = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    info = json.loads(record) if record else {}
    url = str(info.get("url", ""))
    if not info.get("dir_info", {}).get("editable") or not url.startswith("file:"):
        return None
    return Path(url2pathname(urlsplit(url).path))


def analytics_dir() -> Traversable:
    """Return the folder of the analytics SQL models: the checkout's ``analytics/`` for an
    editable install (edits there apply on the next open), else the wheel's copy.

    Raises FileNotFoundError naming where it looked."""
    tree = source_tree()
    candidates: list[Traversable] = [tree / MODELS_FOLDER] if tree else []
    candidates.append(resources.files("runtype_prefect").joinpath(PACKAGED_MODELS))
    for folder in candidates:
        if folder.is_dir() and any(f.name.endswith(".sql") for f in folder.iterdir()):
            return folder
    raise FileNotFoundError(
        "no analytics SQL models in " + " or ".join(str(folder) for folder in candidates)
    )


def view_files() -> list[Traversable]:
    """Return the analytics SQL files in the order they are applied (by file name)."""
    return sorted(
        (f for f in analytics_dir().iterdir() if f.name.endswith(".sql")), key=lambda f: f.name
    )


def _models() -> tuple[list[tuple[str, str]], str]:
    models = [(f.name, f.read_text()) for f in view_files()]
    digest = hashlib.sha256("\0".join(f"{n}\0{t}" for n, t in models).encode()).hexdigest()
    return models, digest


def applied_digest(con: duckdb.DuckDBPyConnection) -> str | None:
    """Return the digest of the models a database was given (None when it has none)."""
    try:
        row = con.execute("SELECT digest FROM analytics_models").fetchone()
    except duckdb.CatalogException:
        return None
    return row[0] if row else None


#: ``CREATE OR REPLACE VIEW|MACRO`` at the start of a statement (every model file's form).
_CREATE = re.compile(r"^CREATE OR REPLACE (VIEW|MACRO) ", re.MULTILINE)


@functools.cache
def _latest_schema() -> dict[str, tuple[tuple[str, str], ...]]:
    """Return each table of the latest schema with its (column, type) pairs in order: the
    migrations applied to an empty in-memory database."""
    with duckdb.connect() as memory:
        apply_migrations(memory)
        rows = memory.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns()"
            " WHERE database_name = current_database() ORDER BY table_name, column_index"
        ).fetchall()
    schema: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        schema.setdefault(table, []).append((column, kind))
    return {table: tuple(columns) for table, columns in schema.items()}


def _stand_in_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Give ``con`` what a newer schema added that its database lacks (a snapshot published
    before it existed), so today's models bind: a missing table as an empty temporary table,
    a table missing columns as a temporary view of it with those columns NULL. Return the
    names of the tables stood in for."""
    (database,) = con.execute("SELECT current_database()").fetchone() or ("",)
    have: dict[str, set[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns()"
        " WHERE database_name = current_database() AND NOT internal"
    ).fetchall():
        have.setdefault(table, set()).add(column)
    views = {row[0] for row in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    made = []
    for table, columns in _latest_schema().items():
        if table in views:
            continue
        if table not in have:
            listed = ", ".join(f'"{c}" {kind}' for c, kind in columns)
            con.execute(f'CREATE TEMP TABLE "{table}" ({listed})')
        elif missing := [(c, kind) for c, kind in columns if c not in have[table]]:
            added = ", ".join(f'CAST(NULL AS {kind}) AS "{c}"' for c, kind in missing)
            con.execute(
                f'CREATE TEMP VIEW "{table}" AS SELECT *, {added} FROM "{database}".main."{table}"'
            )
        else:
            continue
        made.append(table)
    return made


def apply_views_temporarily(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Give a read-only connection this package's models as temporary views and macros, when
    its database holds other ones (a snapshot published by an older version); return the file
    names applied (none when the database's are current).

    Temporary objects shadow the database's own for this connection only, so an upgraded
    notebook or report reads a snapshot published before the upgrade with today's models.
    Raises duckdb.Error naming the file whose SQL failed.
    """
    models, digest = _models()
    if applied_digest(con) == digest:
        return []
    _stand_in_tables(con)
    for name, sql in models:
        try:
            con.execute(_CREATE.sub(r"CREATE OR REPLACE TEMP \1 ", sql))
        except duckdb.Error as exc:
            raise type(exc)(f"analytics model {name}: {exc}") from exc
    return [name for name, _ in models]


def apply_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """(Re)create every analytics view and macro in one transaction, unless the database
    already holds exactly these SQL texts; return the file names applied (none when unchanged).

    Raises duckdb.Error naming the file whose SQL failed.
    """
    models, digest = _models()
    con.execute(
        "CREATE TABLE IF NOT EXISTS analytics_models (digest VARCHAR, applied_at TIMESTAMPTZ)"
    )
    if applied_digest(con) == digest:
        return []
    applied = []
    con.begin()
    try:
        for name, sql in models:
            try:
                con.execute(sql)
            except duckdb.Error as exc:
                raise type(exc)(f"analytics model {name}: {exc}") from exc
            applied.append(name)
        con.execute("DELETE FROM analytics_models")
        con.execute("INSERT INTO analytics_models VALUES (?, ?)", [digest, datetime.now(UTC)])
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
