"""`Warehouse`: the DuckDB file the nightly writer lands into, and its analytics snapshot.

The writer alone opens the working database. After landing it publishes a snapshot beside it
(what changed, as Parquet parts, under a catalog file renamed over the previous one: see
`publish`), which notebooks, the report and the analytics module open read-only: an analyst's
open connection never blocks a nightly run, and reconnecting shows the new night.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Self, TypedDict, Unpack

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from . import publish as publishing
from .connection import (
    SchemaTooNewError,
    WarehouseError,
    WarehouseFolderMissingError,
    clear_holder,
    connect,
    read_schema_version,
    write_holder,
)
from .migrate import apply_migrations, apply_views, latest_version

DB_ENV = "RUNTYPE_PREFECT_DB"
DEFAULT_DB = "runtype.duckdb"


class BatchFields(TypedDict, total=False):
    """The columns of a ``batches`` row besides its id, as `Warehouse.upsert_batch` takes
    them: a misspelt or mistyped one is a type error, not a surprise at run time."""

    flow_id: str
    flow_name: str | None
    record_type: str
    job_name: str | None
    run_key: str | None
    prefect_flow_run_id: str | None
    root_flow_run_id: str | None
    executed_immediately: bool | None
    status: str
    outcome: str | None
    total_records: int | None
    processed_records: int | None
    failed_records: int | None
    success_count: int | None
    total_cost_usd: float | None
    requested_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    error: str | None
    landed_at: datetime | None


#: The names of `BatchFields`, for callers that build a row from data (a pull).
BATCH_FIELDS: tuple[str, ...] = tuple(BatchFields.__annotations__)


def default_db_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Return the working database path: the argument, ``$RUNTYPE_PREFECT_DB`` or the default."""
    return Path(path or os.environ.get(DB_ENV) or DEFAULT_DB).expanduser().resolve()


def _has_duplicate_keys(table: pa.Table, key: list[str]) -> bool:
    rows: int = table.num_rows
    if len(key) == 1:
        return bool(pc.count_distinct(table[key[0]]).as_py() != rows)
    return bool(table.group_by(key).aggregate([]).num_rows != rows)


def snapshot_path_for(db_path: Path) -> Path:
    """Return where the analytics snapshot of ``db_path`` is published."""
    return db_path.with_name(f"{db_path.stem}.analytics{db_path.suffix or '.duckdb'}")


@dataclass(frozen=True)
class JobKey:
    """One start of a job-night: a Runtype flow over a record type for a run key, and which
    part of the night (``""``: the run over the whole record type; ``"incremental 1/2"``: the
    first of two runs over chosen records). The start ledger holds at most one live attempt
    per key."""

    flow_id: str
    record_type: str
    run_key: str
    part: str = ""

    def __str__(self) -> str:
        part = f" ({self.part})" if self.part else ""
        return f"{self.flow_id} × {self.record_type} for {self.run_key!r}{part}"

    @property
    def values(self) -> list[str]:
        """The key as SQL parameters, in column order (flow_id, record_type, run_key, part)."""
        return [self.flow_id, self.record_type, self.run_key, self.part]


#: The ledger's key columns, as a WHERE clause taking `JobKey.values`.
_KEY_WHERE = "flow_id = ? AND record_type = ? AND run_key = ? AND part = ?"


@dataclass(frozen=True)
class Intent:
    """A ledger row: this job was asked to run for ``run_key`` (and which batch it became)."""

    flow_id: str
    record_type: str
    run_key: str
    requested_at: datetime
    batch_id: str | None
    prefect_flow_run_id: str | None
    #: The API's clock just before the start (its ``Date`` header), when it sent one.
    api_requested_at: datetime | None = None
    #: How many records the start was over (the type's, just before a whole-type start).
    expected_records: int | None = None
    part: str = ""

    @property
    def key(self) -> JobKey:
        """The job-night's start this row is the ledger entry of."""
        return JobKey(self.flow_id, self.record_type, self.run_key, self.part)


@dataclass(frozen=True)
class Selection:
    """What a run over chosen records runs for one job-night and scope (``incremental``,
    ``repair`` or ``repair transient``), as the warehouse keeps it: chosen once, then the same
    on every re-run of the night."""

    flow_id: str
    record_type: str
    run_key: str
    scope: str
    #: True: the choice was every record, so the night runs over the whole record type.
    whole_type: bool
    record_ids: tuple[str, ...]
    #: How many records were chosen for each reason ("changed", "new", "failed", ...).
    reasons: dict[str, int]
    #: The record type's records when the choice was made (what a full run would have run).
    type_records: int
    selection_hash: str
    chosen_at: datetime
    #: The batches a repair re-runs the failed records of (empty for an incremental night).
    repairs: tuple[str, ...] = ()


_SELECTION_COLUMNS = (
    "flow_id, record_type, run_key, scope, whole_type, record_ids, reasons, type_records,"
    " selection_hash, chosen_at, repairs"
)
#: A kept choice's key columns (a job-night and a scope), as a WHERE clause.
_SELECTION_WHERE = "flow_id = ? AND record_type = ? AND run_key = ? AND scope = ?"


def validate_file(
    path: Path,
    *,
    lock_timeout: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    on_wait: Callable[[str, float], None] | None = None,
) -> int | None:
    """Check an existing warehouse file read-only (a bad file is never written to); return its
    schema version, or None for a file not there yet (or without migrations).

    Raises `WarehouseFolderMissingError` when the file's folder does not exist,
    `WarehouseCorruptError` for a file DuckDB cannot read, `SchemaTooNewError` for a schema
    newer than this version knows, and `WarehouseLockedError` when another process holds the
    file past ``lock_timeout`` s (``on_wait`` hears of each retry, see `connect`).
    """
    if not path.parent.is_dir():
        raise WarehouseFolderMissingError(path)
    if not path.exists():
        return None
    version = read_schema_version(path, lock_timeout=lock_timeout, sleep=sleep, on_wait=on_wait)
    if version is not None and version > latest_version():
        raise SchemaTooNewError(path, version, latest_version())
    return version


#: Files this process closed, as they were then (see `_identity`): reopening one that nobody
#: touched since skips the read-only validation, an open of its own (~50 ms), since runs open
#: the warehouse for each write and close it between (other processes may write in between).
_closed_as: dict[Path, tuple[tuple[int, int, int] | None, ...]] = {}


def _identity(path: Path) -> tuple[tuple[int, int, int] | None, ...]:
    """Return what tells a file apart from a changed one: inode, size and modification time of
    the database and of its write-ahead log (None for one that does not exist)."""

    def stat(p: Path) -> tuple[int, int, int] | None:
        try:
            s = p.stat()
        except FileNotFoundError:
            return None
        return (s.st_ino, s.st_size, s.st_mtime_ns)

    return (stat(path), stat(path.with_name(path.name + ".wal")))


class BatchIdentityError(WarehouseError):
    """A batch id arrived for a job, night or request time other than the one it is stored
    under: nothing was overwritten."""


_INTENT_COLUMNS = (
    "flow_id, record_type, run_key, requested_at, batch_id, prefect_flow_run_id,"
    " api_requested_at, expected_records, part"
)


class Warehouse:
    """The working DuckDB database: migrations on open, idempotent bulk landing, snapshots.

    Thread-safe: every operation uses its own cursor, so concurrent Prefect tasks in one
    process share one `Warehouse`. The constructor validates an existing file read-only before
    opening it for writing, and raises `WarehouseFolderMissingError` when the file's folder does
    not exist (it is never created: a mistyped path would start an empty ledger),
    `WarehouseCorruptError` for a file DuckDB cannot read (nothing is written to it),
    `SchemaTooNewError` for a schema newer than this version knows, and `WarehouseLockedError`
    when another process holds the file past ``lock_timeout`` s (``on_wait(holder, waited)``
    hears of every retry). ``holder`` names this writer to processes waiting for the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        lock_timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[str, float], None] | None = None,
        holder: str | None = None,
    ) -> None:
        self.path = default_db_path(path)
        self.snapshot_path = snapshot_path_for(self.path)
        if _closed_as.get(self.path) != _identity(self.path) or not self.path.exists():
            validate_file(self.path, lock_timeout=lock_timeout, sleep=sleep, on_wait=on_wait)
        self._con = connect(self.path, lock_timeout=lock_timeout, sleep=sleep, on_wait=on_wait)
        self._holder = holder
        if holder:
            write_holder(self.path, holder)
        self._snapshot_lock = threading.Lock()
        # Landing commits a chunk of ~20,000 step results at a time; with DuckDB's default
        # 16 MB WAL threshold every other commit checkpoints. 64 MB landed 1M rows 1.6x faster
        # (182k vs 117k rows/s) with no more memory (benchmarks/bench_landing.py).
        self._con.execute("SET checkpoint_threshold = '64MB'")
        apply_migrations(self._con)
        apply_views(self._con)

    def __repr__(self) -> str:
        return f"Warehouse({str(self.path)!r})"

    def local_view(self) -> Warehouse:
        """Return a plain `Warehouse` on this one's open connection: the DuckDB file's own
        methods, without what a subclass adds to them (a shared warehouse writes what it pulls
        through it, so nothing pulled is sent back). It is closed with this warehouse."""
        view = Warehouse.__new__(Warehouse)  # the connection is open: no second __init__
        view.path, view.snapshot_path = self.path, self.snapshot_path
        view._con, view._holder, view._snapshot_lock = self._con, None, self._snapshot_lock
        return view

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection, releasing the file lock."""
        self._con.close()
        if self._holder:
            clear_holder(self.path)
        _closed_as[self.path] = _identity(self.path)

    @contextmanager
    def transaction(
        self, register: dict[str, pa.Table] | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a cursor inside one transaction: committed on success, rolled back on error.

        ``register`` names Arrow tables the statements may read (visible to this cursor only).
        """
        cur = self._con.cursor()
        for name, table in (register or {}).items():
            cur.register(name, table)
        try:
            cur.begin()
            yield cur
            cur.commit()
        except BaseException:
            cur.rollback()
            raise
        finally:
            cur.close()

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Return all rows of a read query."""
        cur = self._con.cursor()
        try:
            return cur.execute(sql, params or []).fetchall()
        finally:
            cur.close()

    def query_arrow(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """Return the result of a read query as an Arrow table."""
        cur = self._con.cursor()
        try:
            return cur.sql(sql, params=params or []).to_arrow_table()
        finally:
            cur.close()

    # --- the idempotency ledger --------------------------------------------------------------

    def get_intent(self, key: JobKey) -> Intent | None:
        """Return the ledger row of this job-night, or None if it never started."""
        rows = self.query(
            f"SELECT {_INTENT_COLUMNS} FROM run_intents WHERE {_KEY_WHERE}", key.values
        )
        return Intent(*rows[0]) if rows else None

    def record_intent(
        self,
        key: JobKey,
        *,
        requested_at: datetime,
        prefect_flow_run_id: str | None,
        job_name: str | None,
        api_requested_at: datetime | None = None,
        expected_records: int | None = None,
    ) -> Intent:
        """Write the ledger row before a run is started (replacing an earlier unstarted one);
        return it."""
        with self.transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO run_intents (flow_id, record_type, run_key, part,"
                " requested_at, batch_id, prefect_flow_run_id, job_name, api_requested_at,"
                " expected_records) VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)",
                [
                    *key.values,
                    requested_at,
                    prefect_flow_run_id,
                    job_name,
                    api_requested_at,
                    expected_records,
                ],
            )
        return Intent(
            key.flow_id,
            key.record_type,
            key.run_key,
            requested_at,
            None,
            prefect_flow_run_id,
            api_requested_at,
            expected_records,
            key.part,
        )

    def claimed_batch_ids(self) -> set[str]:
        """Return every batch id the ledger or the batches table already attributes to a job."""
        rows = self.query(
            "SELECT batch_id FROM run_intents WHERE batch_id IS NOT NULL"
            " UNION SELECT batch_id FROM batches"
        )
        return {r[0] for r in rows}

    def claim_batch(
        self,
        key: JobKey,
        batch_id: str,
        *,
        requested_at: datetime,
        **fields: Any,
    ) -> None:
        """Attach ``batch_id`` to the job's ledger row and write its batch row, in one
        transaction, the moment the API names the batch.

        ``fields`` are further batch columns for a new row. Raises `BatchIdentityError`, and
        changes nothing, when the id is already stored under another flow, record type, run
        key or request time.
        """
        unknown = set(fields) - set(BATCH_FIELDS)
        if unknown:
            raise ValueError(f"unknown batch fields: {sorted(unknown)}")
        identity = {
            "flow_id": key.flow_id,
            "record_type": key.record_type,
            "run_key": key.run_key,
            "requested_at": requested_at,
        }
        with self.transaction() as cur:
            owner = cur.execute(
                "SELECT flow_id, record_type, run_key, part FROM run_intents"
                f" WHERE batch_id = ? AND NOT ({_KEY_WHERE})",
                [batch_id, *key.values],
            ).fetchone()
            if owner:
                raise BatchIdentityError(
                    f"batch {batch_id!r} already belongs to {JobKey(*owner)}; refusing to"
                    f" attribute it to {key} as well"
                )
            stored = cur.execute(
                "SELECT flow_id, record_type, run_key, requested_at FROM batches"
                " WHERE batch_id = ?",
                [batch_id],
            ).fetchone()
            if stored:
                differs = [
                    f"{name} {old!r} ≠ {identity[name]!r}"
                    for name, old in zip(identity, stored, strict=True)
                    if old is not None and old != identity[name]
                ]
                if differs:
                    raise BatchIdentityError(
                        f"batch id {batch_id!r} is already stored with another identity ("
                        + "; ".join(differs)
                        + "): the API reused an id, or two ledgers point at one warehouse."
                        " Nothing was overwritten."
                    )
            cur.execute(
                f"UPDATE run_intents SET batch_id = ? WHERE {_KEY_WHERE}",
                [batch_id, *key.values],
            )
            if not stored:
                values = {**identity, **fields}
                cur.execute(
                    f"INSERT INTO batches (batch_id, {', '.join(values)})"
                    f" VALUES (?{', ?' * len(values)})",
                    [batch_id, *values.values()],
                )

    def forget_intent(self, key: JobKey) -> None:
        """Drop a ledger row so the job can be started again for the same run key."""
        with self.transaction() as cur:
            cur.execute(f"DELETE FROM run_intents WHERE {_KEY_WHERE}", key.values)

    # --- runs over chosen records -------------------------------------------------------------

    def get_selection(self, key: JobKey, scope: str) -> Selection | None:
        """Return the records chosen for the job-night ``key`` in ``scope``, or None."""
        rows = self.query(
            f"SELECT {_SELECTION_COLUMNS} FROM run_selections WHERE {_SELECTION_WHERE}",
            [key.flow_id, key.record_type, key.run_key, scope],
        )
        if not rows:
            return None
        row = list(rows[0])
        row[5], row[6], row[10] = tuple(row[5]), json.loads(row[6]), tuple(row[10] or ())
        return Selection(*row)

    def fix_selection(self, selection: Selection) -> Selection:
        """Keep ``selection`` as the job-night's choice in its scope unless one is kept
        already; return the one kept (a re-run of the night runs what was chosen first)."""
        with self.transaction() as cur:
            cur.execute(
                f"INSERT OR IGNORE INTO run_selections ({_SELECTION_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    selection.flow_id,
                    selection.record_type,
                    selection.run_key,
                    selection.scope,
                    selection.whole_type,
                    list(selection.record_ids),
                    json.dumps(selection.reasons),
                    selection.type_records,
                    selection.selection_hash,
                    selection.chosen_at,
                    list(selection.repairs),
                ],
            )
        key = JobKey(selection.flow_id, selection.record_type, selection.run_key)
        kept = self.get_selection(key, selection.scope)
        assert kept is not None  # inserted, or kept before
        return kept

    def forget_selection(self, key: JobKey, scope: str) -> None:
        """Drop the job-night's choice in ``scope`` (a forced re-run chooses again)."""
        with self.transaction() as cur:
            cur.execute(
                f"DELETE FROM run_selections WHERE {_SELECTION_WHERE}",
                [key.flow_id, key.record_type, key.run_key, scope],
            )

    def latest_results(
        self, flow_id: str, record_type: str, *, before: str | None = None
    ) -> dict[str, tuple[bool, datetime | None]]:
        """Return, per record the flow ran over, whether its latest landed result succeeded
        and when its latest success ran (None: never), by the API's clock; with ``before``,
        only results of nights before that run key (a re-run of a night does not see
        itself)."""
        rows = self.query(
            "SELECT r.record_id,"
            " arg_max(r.success, coalesce(r.executed_at, r.landed_at)),"
            " max(CASE WHEN r.success THEN coalesce(r.executed_at, r.landed_at) END)"
            " FROM record_results r JOIN batches b USING (batch_id)"
            " WHERE r.flow_id = ? AND r.record_type = ?"
            " AND (CAST(? AS VARCHAR) IS NULL OR b.run_key < ?)"
            " GROUP BY r.record_id",
            [flow_id, record_type, before, before],
        )
        return {record_id: (ok, last_ok) for record_id, ok, last_ok in rows}

    def failed_in_night(
        self, key: JobKey, *, transient_only: bool = False
    ) -> tuple[list[str], list[str]]:
        """Return the records whose latest result of the job-night failed (over every batch
        of the night, earlier repairs included: a record a repair cured is not failed any
        more), oldest failure first, and those batches' ids. With ``transient_only``, only
        failures a re-run may cure (`is_transient_error`)."""
        batches = [
            row[0]
            for row in self.query(
                "SELECT batch_id FROM batch_nights WHERE flow_id = ? AND record_type = ?"
                " AND run_key = ? ORDER BY part, batch_id",
                [key.flow_id, key.record_type, key.run_key],
            )
        ]
        if not batches:
            return [], []
        rows = self.query(
            "WITH latest AS (SELECT record_id,"
            " arg_max(success, coalesce(executed_at, failed_at, landed_at)) AS success,"
            " arg_max(error, coalesce(executed_at, failed_at, landed_at)) AS error,"
            " min(coalesce(failed_at, executed_at, landed_at)) AS first_at"
            " FROM record_results WHERE list_contains(?, batch_id) GROUP BY record_id)"
            " SELECT record_id FROM latest WHERE NOT success"
            " AND (NOT ? OR coalesce(is_transient_error(error), false))"
            " ORDER BY first_at, record_id",
            [batches, transient_only],
        )
        return [r[0] for r in rows], batches

    def last_full_run_version(self, flow_id: str, record_type: str) -> str | None:
        """Return the flow version that the job's latest landed run over the whole record type
        ran (from its step results), or None when no such run landed."""
        rows = self.query(
            "SELECT s.flow_version_id FROM step_results s"
            " JOIN batches b ON b.batch_id = s.batch_execution_id"
            " JOIN batch_nights n ON n.batch_id = b.batch_id"
            " WHERE b.flow_id = ? AND b.record_type = ? AND b.landed_at IS NOT NULL"
            " AND n.part = '' AND s.flow_version_id IS NOT NULL"
            " ORDER BY b.landed_at DESC, s.created_at DESC LIMIT 1",
            [flow_id, record_type],
        )
        return rows[0][0] if rows else None

    def record_forecasts(self, run_key: str, rows: list[dict[str, Any]]) -> None:
        """Store the preflight's forecast and decision for each job of ``run_key`` (replacing
        an earlier preflight's rows for the same night), in one transaction."""
        columns = (
            "flow_id, record_type, records, cost_per_record, forecast_usd, low_usd, high_usd,"
            " history_nights, budget_usd, decision"
        )
        names = [c.strip() for c in columns.split(",")]
        now = datetime.now(UTC)
        with self.transaction() as cur:
            for row in rows:
                cur.execute(
                    f"INSERT OR REPLACE INTO night_forecasts (run_key, {columns}, created_at)"
                    f" VALUES (?, {', '.join('?' * len(names))}, ?)",
                    [run_key, *(row.get(n) for n in names), now],
                )

    def refresh(self) -> None:
        """Bring in what other writers landed: nothing to do for a DuckDB file, which has one
        writer (see `SharedWarehouse.refresh`)."""

    def record_verdicts(self, night: date, rows: list[dict[str, Any]]) -> None:
        """Store the quality gate's verdicts of ``night`` (one row per job and metric, keyed as
        ``quality_verdicts``), replacing that night's earlier verdicts, in one transaction."""
        names = [
            "flow_id", "record_type", "metric", "job_name", "records", "current_value",
            "baseline_value", "baseline_nights", "p_value", "alpha", "min_effect", "verdict",
            "reason", "degraded_since", "degraded_nights", "attribution",
        ]  # fmt: skip
        now = datetime.now(UTC)
        with self.transaction() as cur:
            cur.execute("DELETE FROM quality_verdicts WHERE night = ?", [night])
            if not rows:
                return
            cur.executemany(
                f"INSERT INTO quality_verdicts (night, {', '.join(names)}, evaluated_at)"
                f" VALUES (?, {', '.join('?' * len(names))}, ?)",
                [[night, *(row.get(n) for n in names), now] for row in rows],
            )

    # --- batches -----------------------------------------------------------------------------

    def upsert_batch(self, batch_id: str, **fields: Unpack[BatchFields]) -> None:
        """Insert the batch row or update the given fields of it (others keep their values).

        Raises ValueError for an unknown field name (from a caller that built ``fields`` from
        data; mypy catches the rest).
        """
        unknown = set(fields) - set(BATCH_FIELDS)
        if unknown:
            raise ValueError(f"unknown batch fields: {sorted(unknown)}")
        names = list(fields)
        with self.transaction() as cur:
            exists = cur.execute("SELECT 1 FROM batches WHERE batch_id = ?", [batch_id]).fetchone()
            if exists and names:
                assignments = ", ".join(f"{n} = ?" for n in names)
                cur.execute(
                    f"UPDATE batches SET {assignments} WHERE batch_id = ?",
                    [*fields.values(), batch_id],
                )
            elif not exists:
                columns = ", ".join(["batch_id", *names])
                marks = ", ".join("?" * (len(names) + 1))
                cur.execute(
                    f"INSERT INTO batches ({columns}) VALUES ({marks})",
                    [batch_id, *fields.values()],
                )

    def landed_counts(self, batch_id: str) -> tuple[int, int]:
        """Return (record results, step results) the warehouse holds for the batch."""
        row = self.query(
            "SELECT (SELECT count(*) FROM record_results WHERE batch_id = ?),"
            " (SELECT count(*) FROM step_results WHERE batch_execution_id = ?)",
            [batch_id, batch_id],
        )[0]
        return int(row[0]), int(row[1])

    def mark_landed(self, batch_id: str) -> None:
        """Stamp the batch's ``landed_at`` when its landing is complete; later landings keep
        the first stamp, so re-landing leaves the row identical."""
        with self.transaction() as cur:
            cur.execute(
                "UPDATE batches SET landed_at = coalesce(landed_at, ?) WHERE batch_id = ?",
                [datetime.now(UTC), batch_id],
            )

    def get_batch(self, batch_id: str) -> dict[str, Any] | None:
        """Return the batch row as a dict, or None."""
        cur = self._con.cursor()
        try:
            cur.execute("SELECT * FROM batches WHERE batch_id = ?", [batch_id])
            row = cur.fetchone()
            names = [d[0] for d in cur.description] if row else []
        finally:
            cur.close()
        return dict(zip(names, row, strict=True)) if row else None

    def unfinished_batches(self, flow_run_id: str) -> list[str]:
        """Return ids of batches started by this Prefect flow run (or its children) that have
        not reached an outcome."""
        rows = self.query(
            "SELECT batch_id FROM batches WHERE outcome IS NULL"
            " AND (prefect_flow_run_id = ? OR root_flow_run_id = ?)",
            [flow_run_id, flow_run_id],
        )
        return [r[0] for r in rows]

    # --- landing -------------------------------------------------------------------------------

    def land_step_results(self, table: pa.Table) -> int:
        """Upsert one page of step results (one transaction); return the rows landed."""
        return self._upsert("step_results", ["id"], table)

    def land_record_results(self, table: pa.Table) -> int:
        """Upsert one page of record results (one transaction); return the rows landed."""
        return self._upsert("record_results", ["batch_id", "record_id"], table)

    def _upsert(self, target: str, key: list[str], table: pa.Table) -> int:
        if table.num_rows == 0:
            return 0
        staged = f"staged_{uuid.uuid4().hex}"
        columns = table.column_names
        # landed_at is set on first landing only, so re-landing leaves every row identical.
        updates = ", ".join(f"{c} = s.{c}" for c in columns if c not in key)
        order = "created_at DESC" if "created_at" in columns else "1"
        keys = ", ".join(key)
        # MERGE, measured on DuckDB 2.0.1 against INSERT … ON CONFLICT DO UPDATE and INSERT OR
        # REPLACE (50,000-row chunks into a table with its primary key): 179k vs 165k vs 156k
        # rows/s into an empty table and 165k vs 147k rows/s with 3M rows already there; a
        # DELETE of the keys then INSERT in one transaction takes seconds to commit. MERGE
        # raises on a key twice in its source where the others silently keep the first row, so
        # a chunk holding one key twice keeps its newest row first (the window costs a sort,
        # so it is added only when needed).
        dedupe = (
            f" QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {order}) = 1"
            if _has_duplicate_keys(table, key)
            else ""
        )
        source = f"SELECT *, ?::TIMESTAMPTZ AS landed_at FROM {staged}{dedupe}"
        now = datetime.now(UTC)
        if not dedupe:
            # Most chunks are new rows: a plain INSERT is all-or-nothing, and a key already
            # landed makes it fail whole, so it is tried first and MERGE only on a re-landing.
            try:
                with self.transaction(register={staged: table}) as cur:
                    cur.execute(
                        f"INSERT INTO {target} ({', '.join(columns)}, landed_at) {source}", [now]
                    )
                    publishing.mark_today(cur, target, now)
                return int(table.num_rows)
            except duckdb.ConstraintException as exc:
                if "duplicate key" not in str(exc).lower():
                    raise  # a NOT NULL or other violation: the chunk is bad, not landed
        with self.transaction(register={staged: table}) as cur:
            publishing.mark_rows(cur, target, f"({keys}) IN (SELECT {keys} FROM {staged})", [], now)
            publishing.mark_today(cur, target, now)
            cur.execute(
                f"MERGE INTO {target} AS t USING ({source}) AS s"
                f" ON {' AND '.join(f't.{k} = s.{k}' for k in key)}"
                f" WHEN MATCHED THEN UPDATE SET {updates}"
                f" WHEN NOT MATCHED THEN INSERT ({', '.join(columns)}, landed_at)"
                f" VALUES ({', '.join(f's.{c}' for c in columns)}, s.landed_at)",
                [now],
            )
        return int(table.num_rows)

    def records_listed(self, record_type: str, run_key: str) -> bool:
        """Return True when the records of ``record_type`` were landed for ``run_key``."""
        return bool(
            self.query(
                "SELECT 1 FROM record_listings WHERE record_type = ? AND run_key = ?",
                [record_type, run_key],
            )
        )

    def land_records(self, table: pa.Table, record_type: str, run_key: str) -> int:
        """Upsert the records of one listing (`rows.records_table`) into the ``records``
        dimension and note the listing for (``record_type``, ``run_key``), in one transaction;
        return the rows landed. A record keeps its first landing time and takes the listing's
        name, metadata and timestamps."""
        staged = f"staged_{uuid.uuid4().hex}"
        now = datetime.now(UTC)
        with self.transaction(register={staged: table}) as cur:
            cur.execute(
                f"MERGE INTO records AS t USING (SELECT DISTINCT ON (record_id) * FROM {staged})"
                " AS s ON t.record_id = s.record_id"
                " WHEN MATCHED THEN UPDATE SET record_type = s.record_type, name = s.name,"
                " metadata = s.metadata, created_at = s.created_at, updated_at = s.updated_at,"
                " last_landed_at = ?, last_run_key = ?"
                " WHEN NOT MATCHED THEN INSERT (record_id, record_type, name, metadata,"
                " created_at, updated_at, first_landed_at, last_landed_at, last_run_key)"
                " VALUES (s.record_id, s.record_type, s.name, s.metadata, s.created_at,"
                " s.updated_at, ?, ?, ?)",
                [now, run_key, now, now, run_key],
            )
            cur.execute(
                "INSERT OR REPLACE INTO record_listings VALUES (?, ?, ?, ?)",
                [record_type, run_key, table.num_rows, now],
            )
        return int(table.num_rows)

    def derive_record_metrics(self, batch_id: str) -> None:
        """Set the execution time, steps and prompts of the batch's records from its landed
        steps (the model ``record_step_totals``: one definition for immediate and deferred
        batches); records without landed steps are left as they are. Idempotent."""
        with self.transaction() as cur:
            publishing.mark_rows(
                cur, "record_results", "batch_id = ?", [batch_id], datetime.now(UTC)
            )
            cur.execute(
                """
                UPDATE record_results r SET
                    execution_time_s = s.execution_time_s, context_steps = s.context_steps,
                    prompts_executed = s.prompts_executed
                FROM record_step_totals(?) s
                WHERE r.batch_id = ? AND r.record_id = s.record_id
                """,
                [batch_id, batch_id],
            )

    # --- the analytics snapshot --------------------------------------------------------------

    def publish_snapshot(self, *, full: bool = False) -> Path:
        """Publish what changed since the last publish to the analytics snapshot; return its
        path (see `publish`: readers of the previous snapshot keep reading it, new readers see
        this one, and the cost follows the rows that changed, not the history). ``full``
        republishes every day, for rows written around the landing methods.
        """
        with self._snapshot_lock:
            return publishing.publish(self._con, self.snapshot_path, full=full).path
