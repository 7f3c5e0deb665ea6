"""Publishing the analytics snapshot incrementally: what analysts open, built from what changed.

The snapshot is a small DuckDB file (the catalog) beside the working database. It holds copies of
the small tables (batches, ledger, forecasts, verdicts) and views over Parquet parts of the two
result tables, one part per table and UTC day of first landing. A landing marks the days it
touched (`mark_today`, `mark_rows`: appended in the landing's own transaction, so concurrent
landings never conflict); publishing rewrites only
those days' parts, under new file names, then builds a new catalog in a temporary file and renames
it over the old one. So:

- readers never block the writer: it never writes a file a reader has open (parts are
  immutable, the catalog is replaced by a rename);
- a reader never sees half a night: the rename switches every table at once, and a reader that
  opened the previous catalog keeps reading the previous parts (retired parts are deleted only
  after `RETIRED_GRACE`);
- the cost follows the night: a new night writes one new part per table, whatever the history.

Measured by benchmarks/bench_publish.py (the same night published over 1M and 5M rows of history).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import duckdb

from .connection import open_duckdb
from .migrate import apply_views

#: The result tables published as Parquet parts; every other table is copied whole.
PARTITIONED = ("step_results", "record_results")
#: Bookkeeping not copied (the catalog applies the analytics models itself).
BOOKKEEPING = ("unpublished_partitions", "published_parts", "retired_parts", "analytics_models")
#: A part a newer one replaced is deleted this long after (readers of older snapshots use it).
RETIRED_GRACE = timedelta(days=1)
#: The UTC day a row belongs to (the day it was first landed: kept on a re-landing).
DAY_OF_ROW = "CAST(timezone('UTC', landed_at) AS DATE)"


def parts_dir_for(snapshot_path: Path) -> Path:
    """Return the folder of the snapshot's Parquet parts (beside the snapshot file)."""
    return snapshot_path.with_name(f"{snapshot_path.stem}.parts")


def mark_today(cur: duckdb.DuckDBPyConnection, table: str, now: datetime) -> None:
    """Record that ``table`` gained rows first landed at ``now`` (inside the landing's
    transaction)."""
    cur.execute(
        "INSERT INTO unpublished_partitions (table_name, day, dirtied_at) VALUES (?, ?, ?)",
        [table, now.astimezone(UTC).date(), now],
    )


def mark_rows(
    cur: duckdb.DuckDBPyConnection, table: str, where: str, params: list[object], now: datetime
) -> None:
    """Record the days of the rows of ``table`` matching ``where`` as changed (before they
    are updated, inside the same transaction)."""
    cur.execute(
        "INSERT INTO unpublished_partitions (table_name, day, dirtied_at)"
        f" SELECT DISTINCT '{table}', {DAY_OF_ROW}, ?::TIMESTAMPTZ FROM {table} WHERE {where}",
        [now, *params],
    )


@dataclass(frozen=True)
class Published:
    """What one publish wrote."""

    path: Path
    #: Parts rewritten (table, day) and the rows they hold.
    parts: int
    rows: int


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


def _copied_tables(cur: duckdb.DuckDBPyConnection) -> list[str]:
    rows = cur.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
        " AND schema_name = 'main' ORDER BY table_name"
    ).fetchall()
    skip = {*PARTITIONED, *BOOKKEEPING}
    return [r[0] for r in rows if r[0] not in skip]


def _sql_list(paths: Iterable[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def publish(
    con: duckdb.DuckDBPyConnection,
    snapshot_path: Path,
    *,
    now: datetime | None = None,
    grace: timedelta = RETIRED_GRACE,
    full: bool = False,
) -> Published:
    """Publish what changed since the last publish into ``snapshot_path``; return what was
    written. ``con`` is the writer's connection; ``full`` rewrites every day (for rows written
    around the landing functions, e.g. by hand). Raises duckdb.Error (the previous snapshot is
    then unchanged) when a file cannot be written.
    """
    started = now or datetime.now(UTC)
    generation = f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    parts_dir = parts_dir_for(snapshot_path)
    scratch = parts_dir / "_tables"
    for folder in (scratch, *(parts_dir / t for t in PARTITIONED)):
        folder.mkdir(parents=True, exist_ok=True)

    cur = con.cursor()
    written: dict[tuple[str, date], tuple[str, int] | None] = {}
    copies: dict[str, str] = {}
    try:
        cur.begin()  # one consistent view of every table for the whole publish
        if full:
            for table in PARTITIONED:
                mark_rows(cur, table, "true", [], started)
        marks = cur.execute(
            "SELECT mark_id, table_name, day FROM unpublished_partitions"
        ).fetchall()
        dirty = sorted({(table, day) for _, table, day in marks})
        for table, day in dirty:
            path = parts_dir / table / f"{day}.{generation}.parquet"
            (count,) = cur.execute(  # type: ignore[misc]
                f"COPY (SELECT * FROM {table} WHERE landed_at >= ? AND landed_at < ?)"
                f" TO '{path}' (FORMAT parquet, COMPRESSION zstd)",
                list(_day_bounds(day)),
            ).fetchone()
            if count:
                written[(table, day)] = (str(path), int(count))
            else:  # the day has no rows left: it leaves the snapshot
                path.unlink(missing_ok=True)
                written[(table, day)] = None
        for table in [*_copied_tables(cur), *PARTITIONED]:
            path = scratch / f"{table}.{generation}.parquet"
            limit = " LIMIT 0" if table in PARTITIONED else ""  # the result tables' schema
            cur.execute(f"COPY (SELECT * FROM {table}{limit}) TO '{path}' (FORMAT parquet)")
            copies[table] = str(path)
        current = {
            (t, d): p
            for t, d, p in cur.execute(
                "SELECT table_name, day, path FROM published_parts"
            ).fetchall()
        }
        cur.commit()
    except BaseException:
        cur.rollback()
        cur.close()
        raise

    try:
        parts = dict(current)
        for key, new in written.items():
            if new is None:
                parts.pop(key, None)
            else:
                parts[key] = new[0]
        _build_catalog(snapshot_path, copies, parts)
        _record(cur, written, current, [str(m[0]) for m in marks], started)
        _collect_retired(cur, started - grace)
    finally:
        for path in copies.values():
            Path(path).unlink(missing_ok=True)
        cur.close()
    rows = sum(new[1] for new in written.values() if new)
    return Published(snapshot_path, sum(1 for new in written.values() if new), rows)


def _build_catalog(
    snapshot_path: Path, copies: dict[str, str], parts: dict[tuple[str, date], str]
) -> None:
    tmp = snapshot_path.with_name(snapshot_path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    catalog = open_duckdb(str(tmp))
    try:
        for table, path in copies.items():
            files = sorted(p for (t, _), p in parts.items() if t == table)
            if table in PARTITIONED and files:
                catalog.execute(
                    # By name: a part written before a column was added reads it as NULL.
                    f"CREATE VIEW {table} AS SELECT * FROM"
                    f" read_parquet({_sql_list(files)}, union_by_name = true)"
                )
            else:
                catalog.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet('{path}')")
        apply_views(catalog)
        catalog.execute("CHECKPOINT")
    finally:
        catalog.close()
    os.replace(tmp, snapshot_path)


def _record(
    cur: duckdb.DuckDBPyConnection,
    written: dict[tuple[str, date], tuple[str, int] | None],
    current: dict[tuple[str, date], str],
    marks: list[str],
    started: datetime,
) -> None:
    cur.begin()
    try:
        for (table, day), new in written.items():
            if (old := current.get((table, day))) is not None:
                cur.execute("INSERT OR REPLACE INTO retired_parts VALUES (?, ?)", [old, started])
            if new is None:
                cur.execute(
                    "DELETE FROM published_parts WHERE table_name = ? AND day = ?", [table, day]
                )
            else:
                cur.execute(
                    "INSERT OR REPLACE INTO published_parts VALUES (?, ?, ?, ?, ?)",
                    [table, day, new[0], new[1], started],
                )
        # Only the marks this publish read: a landing that committed meanwhile stays marked.
        cur.execute(
            "DELETE FROM unpublished_partitions WHERE mark_id::VARCHAR IN (SELECT unnest(?))",
            [marks],
        )
        cur.commit()
    except BaseException:
        cur.rollback()
        raise


def _collect_retired(cur: duckdb.DuckDBPyConnection, before: datetime) -> None:
    """Delete retired parts older than ``before`` (no reader of a current catalog uses them)."""
    old = cur.execute("SELECT path FROM retired_parts WHERE retired_at < ?", [before]).fetchall()
    for (path,) in old:
        Path(path).unlink(missing_ok=True)
    if old:
        cur.execute("DELETE FROM retired_parts WHERE retired_at < ?", [before])
