"""The DuckDB warehouse on its own: migrations, idempotent landing, atomicity, locks, snapshots."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest

from runtype_prefect.client import StepResult, models_to_table
from runtype_prefect.warehouse import (
    BatchIdentityError,
    JobKey,
    Warehouse,
    WarehouseLockedError,
    record_results_table,
    step_results_table,
)
from runtype_prefect.warehouse.migrate import apply_migrations, apply_views, migrations, view_files
from runtype_prefect.warehouse.rows import LANDED_COLUMNS, STEP_FIELDS


def steps_table(steps: list[StepResult], *, record_type: str | None) -> pa.Table:
    """Step results as they arrive from the client's Arrow listings, ready to land."""
    return step_results_table(models_to_table(steps, StepResult), record_type=record_type)


def step(i: int, **over) -> StepResult:
    data = {
        "id": f"stepres_{i:05d}",
        "flowId": "flow_1",
        "batchExecutionId": "batch_1",
        "recordId": f"record_{i // 3}",
        "stepType": "prompt",
        "status": "completed",
        "createdAt": f"2026-11-2{i % 9}T02:00:00Z",
        "startedAt": "2026-11-20T02:00:00Z",
        "completedAt": "2026-11-20T02:00:01.5Z",
        "durationMs": 1500 + i,
        "estimatedCost": "0.00123456",
        "modelUsed": "gpt-4o-mini",
        "totalTokens": 10,
    }
    data.update(over)
    return StepResult.model_validate(data)


@pytest.fixture
def warehouse(tmp_path):
    with Warehouse(tmp_path / "w.duckdb", lock_timeout=0.2) as w:
        yield w


def dump(w: Warehouse, table: str) -> list[tuple]:
    return w.query(f"SELECT * FROM {table} ORDER BY ALL")


def test_migrations_are_versioned_and_applied_once(warehouse):
    versions = [v for v, _, _ in migrations()]
    assert warehouse.query("SELECT version FROM schema_migrations ORDER BY 1") == [
        (v,) for v in versions
    ]
    with duckdb.connect(str(warehouse.path).replace("w.duckdb", "other.duckdb")) as con:
        assert apply_migrations(con) == versions
        assert apply_migrations(con) == []


def test_relanding_leaves_tables_identical(warehouse):
    table = steps_table([step(i) for i in range(250)], record_type="lead")
    assert warehouse.land_step_results(table) == 250
    before = dump(warehouse, "step_results")
    warehouse.land_step_results(table)
    warehouse.land_step_results(table.slice(10, 50))
    assert dump(warehouse, "step_results") == before
    row = warehouse.query("SELECT estimated_cost, record_type FROM step_results LIMIT 1")[0]
    assert row == (Decimal("0.00123456"), "lead")


def test_duplicate_keys_within_a_page_keep_the_newest(warehouse):
    older = step(1, createdAt="2026-11-01T00:00:00Z", status="failed")
    newer = step(1, createdAt="2026-11-02T00:00:00Z", status="completed")
    warehouse.land_step_results(steps_table([older, newer], record_type="x"))
    assert warehouse.query("SELECT status FROM step_results") == [("completed",)]


def test_a_failing_page_lands_nothing(warehouse):
    warehouse.land_step_results(steps_table([step(0)], record_type="x"))
    good = steps_table([step(i) for i in range(1, 100)], record_type="x")
    broken = good.set_column(
        good.column_names.index("status"),
        "status",
        pa.array(["completed"] * 98 + [None], type=pa.string()),
    )
    with pytest.raises(duckdb.ConstraintException):
        warehouse.land_step_results(broken)
    assert warehouse.query("SELECT count(*) FROM step_results") == [(1,)]


def record_rows(n: int, **extra: object) -> list[dict[str, object]]:
    """``n`` succeeded record results of batch_1 (records of `step`), with ``extra`` fields."""
    return [
        {
            "batch_id": "batch_1",
            "record_id": f"record_{r}",
            "record_type": "lead",
            "flow_id": "flow_1",
            "status": "completed",
            "success": True,
            **extra,
        }
        for r in range(n)
    ]


def test_record_results_upsert_and_metrics_derived_from_steps(warehouse):
    rows = record_rows(3)
    warehouse.land_record_results(record_results_table(rows))
    warehouse.land_record_results(record_results_table(rows))
    warehouse.land_step_results(steps_table([step(i) for i in range(9)], record_type="lead"))
    warehouse.derive_record_metrics("batch_1")
    assert warehouse.query(
        "SELECT record_id, execution_time_s, context_steps, prompts_executed"
        " FROM record_results ORDER BY 1"
    ) == [(f"record_{r}", 1.5, 3, 3) for r in range(3)]


def test_an_immediate_runs_times_come_from_its_steps_and_the_apis_are_kept(warehouse):
    """One definition of execution time for both kinds of batch: the API's figures of an
    immediate run stay as reported_*, and landing its records again keeps the derived ones."""
    rows = record_rows(  # the API's clock: queueing, overhead...
        3, reported_execution_time_s=9.0, reported_context_steps=3, reported_prompts_executed=3
    )
    warehouse.land_record_results(record_results_table(rows))
    warehouse.land_step_results(steps_table([step(i) for i in range(9)], record_type="lead"))
    warehouse.derive_record_metrics("batch_1")
    warehouse.land_record_results(record_results_table(rows))  # a retried start lands them again
    assert warehouse.query(
        "SELECT DISTINCT execution_time_s, context_steps, prompts_executed,"
        " reported_execution_time_s, reported_context_steps FROM record_results"
    ) == [(1.5, 3, 3, 9.0, 3)]


def _database_at(path, version: int) -> None:
    """Create a warehouse file at schema ``version`` (as an older release left it)."""
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE schema_migrations"
            " (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ)"
        )
        for v, name, sql in migrations():
            if v <= version:
                con.execute(sql)
                con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [v, name])


def test_upgrading_gives_immediate_rows_the_derived_times_and_keeps_old_parts_readable(tmp_path):
    path = tmp_path / "old.duckdb"
    _database_at(path, 6)
    with duckdb.connect(str(path)) as con:  # what the previous release landed
        con.execute(
            "INSERT INTO batches (batch_id, flow_id, record_type, status, executed_immediately)"
            " VALUES ('now_1', 'flow_1', 'lead', 'completed', true),"
            " ('later_1', 'flow_1', 'lead', 'completed', false)"
        )
        con.execute(
            "INSERT INTO record_results (batch_id, record_id, record_type, flow_id, status,"
            " success, execution_time_s, context_steps, prompts_executed, landed_at) VALUES"
            " ('now_1', 'r1', 'lead', 'flow_1', 'completed', true, 9.0, 2, 1, '2026-11-01'),"
            " ('now_1', 'r2', 'lead', 'flow_1', 'completed', true, 8.0, 2, 1, '2026-11-01'),"
            " ('later_1', 'r1', 'lead', 'flow_1', 'completed', true, 3.0, 2, 1, '2026-11-02')"
        )
        con.execute(
            "INSERT INTO step_results (id, batch_execution_id, flow_id, record_id, step_type,"
            " status, started_at, completed_at, landed_at) VALUES"
            " ('s1', 'now_1', 'flow_1', 'r1', 'prompt', 'completed',"
            "  '2026-11-01 02:00:00+00', '2026-11-01 02:00:01+00', '2026-11-01'),"
            " ('s2', 'now_1', 'flow_1', 'r1', 'api-call', 'completed',"
            "  '2026-11-01 02:00:01+00', '2026-11-01 02:00:04+00', '2026-11-01')"
        )
        # The previous release's snapshot: parts written without the new columns.
        con.execute(
            "INSERT INTO unpublished_partitions (table_name, day, dirtied_at)"
            " VALUES ('record_results', DATE '2026-11-01', now()),"
            " ('record_results', DATE '2026-11-02', now())"
        )
    old_parts = duckdb.connect(str(path))
    try:
        from runtype_prefect.warehouse.publish import publish

        # Today's models read the ledger's parts and the kept choices of runs over chosen
        # records, which the previous release's did not: lend them for its publish only.
        old_parts.execute("ALTER TABLE run_intents ADD COLUMN part VARCHAR DEFAULT ''")
        old_parts.execute(
            "CREATE TABLE run_selections (flow_id VARCHAR, record_type VARCHAR,"
            " run_key VARCHAR, scope VARCHAR, whole_type BOOLEAN, record_ids VARCHAR[],"
            " reasons JSON, type_records INTEGER, chosen_at TIMESTAMPTZ)"
        )
        old_parts.execute("ALTER TABLE quality_verdicts ADD COLUMN attribution VARCHAR")
        apply_views(old_parts)
        publish(old_parts, tmp_path / "old.analytics.duckdb")
        old_parts.execute("DROP VIEW IF EXISTS incremental_savings")
        old_parts.execute("DROP VIEW IF EXISTS quality_history")
        old_parts.execute("ALTER TABLE quality_verdicts DROP COLUMN attribution")
        old_parts.execute("DROP TABLE run_selections")
        old_parts.execute("ALTER TABLE run_intents DROP COLUMN part")
    finally:
        old_parts.close()

    with Warehouse(path) as w:
        assert w.query(
            "SELECT batch_id, record_id, execution_time_s, context_steps, prompts_executed,"
            " reported_execution_time_s, reported_context_steps, reported_prompts_executed"
            " FROM record_results ORDER BY ALL"
        ) == [
            ("later_1", "r1", 3.0, 2, 1, None, None, None),  # deferred: already derived
            ("now_1", "r1", 4.0, 2, 1, 9.0, 2, 1),  # from its two steps: 02:00:00 -> 02:00:04
            ("now_1", "r2", None, None, None, 8.0, 2, 1),  # no steps landed
        ]
        snapshot = w.publish_snapshot()
    with duckdb.connect(str(snapshot), read_only=True) as snap:
        assert snap.execute(
            "SELECT batch_id, record_id, execution_time_s, reported_execution_time_s"
            " FROM record_results ORDER BY ALL"
        ).fetchall() == [
            ("later_1", "r1", 3.0, None),  # an old part, read by name
            ("now_1", "r1", 4.0, 9.0),  # its day republished by the migration
            ("now_1", "r2", None, 8.0),
        ]


def test_batch_rows_update_only_given_fields(warehouse):
    now = datetime.now(UTC)
    warehouse.upsert_batch("b1", flow_id="f", record_type="t", status="queued", requested_at=now)
    warehouse.upsert_batch("b1", status="completed", outcome="completed")
    row = warehouse.get_batch("b1")
    assert (row["status"], row["outcome"], row["flow_id"]) == ("completed", "completed", "f")
    with pytest.raises(ValueError, match="unknown batch fields"):
        warehouse.upsert_batch("b1", api_key="nope")


HOLD = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
    print("ready", flush=True)
    time.sleep(60)
    """
)


def hold(path, mode: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), mode], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_lock_held_by_another_process_names_it(tmp_path):
    path = tmp_path / "held.duckdb"
    Warehouse(path).close()
    holder = hold(path, "ro")
    slept: list[float] = []
    try:
        with pytest.raises(WarehouseLockedError) as info:
            Warehouse(path, lock_timeout=1.0, sleep=slept.append)
    finally:
        holder.kill()
        holder.wait()
    assert info.value.holder_pid == holder.pid
    assert str(path) in str(info.value) and f"process {holder.pid}" in str(info.value)
    assert sum(slept) == pytest.approx(1.0)
    Warehouse(path).close()  # free again once the holder is gone


def test_snapshot_does_not_block_on_open_readers(warehouse):
    warehouse.land_step_results(steps_table([step(0)], record_type="x"))
    snapshot = warehouse.publish_snapshot()
    reader = hold(snapshot, "ro")
    try:
        warehouse.land_step_results(steps_table([step(1), step(2)], record_type="x"))
        assert warehouse.publish_snapshot() == snapshot
        with duckdb.connect(str(snapshot), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM step_results").fetchone() == (3,)
    finally:
        reader.kill()
        reader.wait()


def test_costs_finer_than_the_column_scale_are_rounded_not_rejected(warehouse):
    fine = step(1, estimatedCost="0.000000123456789")
    warehouse.land_step_results(steps_table([fine, step(2)], record_type="x"))
    assert warehouse.query("SELECT estimated_cost FROM step_results ORDER BY id") == [
        (Decimal("0.00000012"),),
        (Decimal("0.00123456"),),
    ]


def test_a_batch_id_stored_with_another_identity_is_refused_and_nothing_overwritten(warehouse):
    first = datetime(2026, 11, 20, 2, tzinfo=UTC)
    for key in ("2026-11-20", "2026-11-21"):
        warehouse.record_intent(
            JobKey("flow_1", "lead", key),
            requested_at=first,
            prefect_flow_run_id=None,
            job_name=None,
        )
    warehouse.claim_batch(
        JobKey("flow_1", "lead", "2026-11-20"), "batch_x", requested_at=first, status="queued"
    )
    before = dump(warehouse, "batches"), dump(warehouse, "run_intents")
    with pytest.raises(BatchIdentityError, match="already belongs to flow_1 × lead"):
        warehouse.claim_batch(
            JobKey("flow_1", "lead", "2026-11-21"), "batch_x", requested_at=first, status="queued"
        )
    with pytest.raises(BatchIdentityError, match="another identity"):  # e.g. a reused id
        warehouse.upsert_batch("batch_y", flow_id="flow_2", record_type="ticket", status="x")
        warehouse.claim_batch(
            JobKey("flow_1", "lead", "2026-11-21"), "batch_y", requested_at=first, status="queued"
        )
    assert dump(warehouse, "run_intents") == before[1]
    assert warehouse.get_batch("batch_x")["run_key"] == "2026-11-20"
    assert warehouse.get_intent(JobKey("flow_1", "lead", "2026-11-21")).batch_id is None


DUCKDB_TYPE = {
    "string": "VARCHAR",
    "bool": "BOOLEAN",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "double": "DOUBLE",
    "timestamp[us, tz=UTC]": "TIMESTAMP WITH TIME ZONE",
    "decimal128(18, 8)": "DECIMAL(18,8)",
}


@pytest.mark.parametrize("table", sorted(LANDED_COLUMNS))
def test_the_ddl_matches_the_one_api_to_rows_mapping(warehouse, table):
    ddl = warehouse.query(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    )
    mapped = [(name, DUCKDB_TYPE[str(dtype)]) for name, dtype in LANDED_COLUMNS[table]]
    assert sorted(ddl) == sorted(mapped)


def test_views_are_reapplied_only_when_their_sql_changed(warehouse):
    con = warehouse._con
    assert apply_views(con) == [], "opening the warehouse applied them already"
    con.execute("UPDATE analytics_models SET digest = 'older models'")
    assert apply_views(con) == [f.name for f in view_files()]
    assert apply_views(con) == []


def test_the_api_model_and_the_rows_mapping_name_the_same_step_fields(sandbox, admin, client):
    """The client's `StepResult` and the rows mapping agree, and so do the sandbox's rows."""
    assert {name for name, _ in STEP_FIELDS} == set(StepResult.model_fields)
    flow_id = admin.flow_for("vip_account")
    client.run_on_record_type(flow_id, "vip_account")
    (page, *_) = client.iter_step_results(flow_id)
    assert all(not set(s.model_extra or {}) & set(StepResult.model_fields) for s in page.items)
    (table, *_) = client.iter_step_result_tables(flow_id)  # every field converts
    assert table.column_names == list(StepResult.model_fields)
    assert table.num_rows and table["resolved_prompt"].null_count < table.num_rows
    assert step_results_table(table, record_type="vip_account").num_rows == table.num_rows


def test_the_sql_models_are_read_from_the_checkouts_analytics_folder(monkeypatch):
    """An editable install (this checkout) reads the models where analysts edit them; an
    install without a checkout reads the wheel's copy, and without either the error says where
    it looked."""
    from pathlib import Path

    from runtype_prefect.warehouse import migrate

    checkout = Path(__file__).resolve().parents[1]
    assert migrate.source_tree() == checkout
    assert Path(str(migrate.analytics_dir())) == checkout / "analytics"
    monkeypatch.setattr(migrate, "source_tree", lambda: None)
    with pytest.raises(FileNotFoundError, match="_analytics"):
        migrate.analytics_dir()


def test_a_memory_limit_from_the_environment_bounds_every_duckdb_database(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNTYPE_DUCKDB_MEMORY_LIMIT", "128MB")
    with Warehouse(tmp_path / "w.duckdb") as w:
        (limit,) = w.query("SELECT current_setting('memory_limit')")[0]
        snapshot = w.publish_snapshot(full=True)
    from runtype_prefect.analytics import connect as analytics_connect

    with analytics_connect(snapshot) as con:
        (read_limit,) = con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert limit == read_limit == "122.0 MiB"  # 128 MB, as DuckDB prints it


def test_a_memory_limit_duckdb_cannot_read_is_refused_naming_the_variable(tmp_path, monkeypatch):
    from runtype_prefect.warehouse import WarehouseSettingError

    monkeypatch.setenv("RUNTYPE_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(WarehouseSettingError, match="RUNTYPE_DUCKDB_MEMORY_LIMIT='lots'"):
        Warehouse(tmp_path / "w.duckdb")
