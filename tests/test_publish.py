"""The analytics snapshot is published incrementally: only the days a landing touched are
rewritten, a reader keeps its snapshot whole, and retired parts outlive it by a grace."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from runtype_prefect.client import StepResult, models_to_table
from runtype_prefect.warehouse import Warehouse, step_results_table
from runtype_prefect.warehouse.publish import parts_dir_for, publish

NOW = datetime(2026, 12, 2, 3, tzinfo=UTC)


def steps(*ids: int, status: str = "completed"):
    models = [
        StepResult.model_validate(
            {"id": f"stepres_{i:04d}", "flowId": "flow_1", "batchExecutionId": f"b{i // 10}",
             "status": status, "durationMs": 100 + i}
        )
        for i in ids
    ]  # fmt: skip
    return step_results_table(models_to_table(models, StepResult), record_type="lead")


@pytest.fixture
def warehouse(tmp_path):
    with Warehouse(tmp_path / "w.duckdb") as w:
        yield w


def age(warehouse: Warehouse, ids: range, days: int) -> None:
    """Move rows to an earlier landing day, as if landed ``days`` nights ago."""
    with warehouse.transaction() as cur:
        cur.execute(
            "UPDATE step_results SET landed_at = landed_at - to_days(?) WHERE id IN ?",
            [days, [f"stepres_{i:04d}" for i in ids]],
        )


def parts(warehouse: Warehouse) -> dict[str, str]:
    rows = warehouse.query(
        "SELECT day::VARCHAR, path FROM published_parts WHERE table_name = 'step_results'"
    )
    return dict(rows)


def count(snapshot) -> int:
    with duckdb.connect(str(snapshot), read_only=True) as con:
        return con.execute("SELECT count(*) FROM step_results").fetchone()[0]


def test_a_new_night_writes_one_part_and_leaves_the_history_alone(warehouse):
    warehouse.land_step_results(steps(*range(0, 30)))
    age(warehouse, range(0, 10), 2)
    age(warehouse, range(10, 20), 1)
    publish(warehouse._con, warehouse.snapshot_path, full=True)
    before = parts(warehouse)
    assert len(before) == 3 and count(warehouse.snapshot_path) == 30

    warehouse.land_step_results(steps(*range(30, 40)))  # tonight, on today's part
    report = publish(warehouse._con, warehouse.snapshot_path)
    after = parts(warehouse)
    assert (report.parts, report.rows) == (1, 20)  # today's part: 20 rows, the others untouched
    assert {d: p for d, p in after.items() if d in before and p == before[d]} == {
        d: p for d, p in before.items() if d != max(before)
    }
    assert count(warehouse.snapshot_path) == 40
    assert warehouse.query("SELECT count(*) FROM unpublished_partitions") == [(0,)]
    nothing = publish(warehouse._con, warehouse.snapshot_path)
    assert (nothing.parts, nothing.rows) == (0, 0)


def test_relanding_an_old_night_rewrites_only_its_day(warehouse):
    warehouse.land_step_results(steps(*range(0, 20)))
    age(warehouse, range(0, 10), 3)
    publish(warehouse._con, warehouse.snapshot_path, full=True)
    before = parts(warehouse)
    old_day = min(before)

    warehouse.land_step_results(steps(*range(0, 5), status="failed"))  # MERGE: keeps the day
    report = publish(warehouse._con, warehouse.snapshot_path)
    after = parts(warehouse)
    assert report.parts == 2  # the old day (updated rows) and today (marked, unchanged rows)
    assert after[old_day] != before[old_day]
    with duckdb.connect(str(warehouse.snapshot_path), read_only=True) as con:
        assert con.execute(
            "SELECT count(*) FILTER (WHERE status = 'failed'), count(*) FROM step_results"
        ).fetchone() == (5, 20)
    # The replaced part stays for readers of the older snapshot, then goes after the grace.
    assert (
        warehouse.query("SELECT path FROM retired_parts") == [(before[old_day],)]
        or len(warehouse.query("SELECT path FROM retired_parts")) == 2
    )
    retired = [p for (p,) in warehouse.query("SELECT path FROM retired_parts")]
    assert before[old_day] in retired and all(os.path.exists(p) for p in retired)
    publish(warehouse._con, warehouse.snapshot_path, now=datetime.now(UTC) + timedelta(days=2))
    assert not any(os.path.exists(p) for p in retired)
    assert warehouse.query("SELECT count(*) FROM retired_parts") == [(0,)]


def test_a_reader_keeps_its_snapshot_whole_while_a_night_is_published(warehouse):
    warehouse.land_step_results(steps(*range(0, 10)))
    snapshot = warehouse.publish_snapshot()
    reader = duckdb.connect(str(snapshot), read_only=True)
    try:
        warehouse.land_step_results(steps(*range(0, 10), status="failed"))
        warehouse.land_step_results(steps(*range(10, 25)))
        warehouse.publish_snapshot()  # the reader's file is not written to: no lock conflict
        # The open reader still sees the night it opened, whole; a new reader sees the next.
        assert reader.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'failed') FROM step_results"
        ).fetchone() == (10, 0)
        # (another process: in this one, DuckDB hands out the open instance of the path)
        probe = (
            "import duckdb,sys; print(duckdb.connect(sys.argv[1], read_only=True)"
            ".execute('SELECT count(*) FROM step_results').fetchone()[0])"
        )
        fresh = subprocess.run(
            [sys.executable, "-c", probe, str(snapshot)], capture_output=True, text=True, check=True
        )
        assert fresh.stdout.strip() == "25"
    finally:
        reader.close()


def test_an_empty_warehouse_publishes_empty_tables_with_their_columns(warehouse):
    snapshot = warehouse.publish_snapshot()
    with duckdb.connect(str(snapshot), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM step_results").fetchone() == (0,)
        assert "estimated_cost" in [r[0] for r in con.execute("DESCRIBE step_results").fetchall()]
    assert parts_dir_for(snapshot).is_dir()


def test_concurrent_landings_mark_their_days_without_conflicts(warehouse):
    """The nightly lands its jobs from threads sharing one warehouse: marking the day each
    chunk touched must not make their transactions conflict."""
    from concurrent.futures import ThreadPoolExecutor

    def land(job: int) -> None:
        for chunk in range(5):
            start = job * 1000 + chunk * 100
            warehouse.land_step_results(steps(*range(start, start + 100)))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(land, range(4)))
    publish(warehouse._con, warehouse.snapshot_path)
    assert count(warehouse.snapshot_path) == 2000
    assert warehouse.query("SELECT count(*) FROM unpublished_partitions") == [(0,)]


def test_a_mark_made_while_publishing_survives_it(warehouse):
    warehouse.land_step_results(steps(*range(0, 10)))
    with warehouse.transaction() as cur:  # what a landing committing mid-publish leaves
        cur.execute(
            "INSERT INTO unpublished_partitions (table_name, day, dirtied_at)"
            " VALUES ('step_results', current_date, now() + INTERVAL 1 HOUR)"
        )
    (mark,) = warehouse.query(
        "SELECT mark_id FROM unpublished_partitions ORDER BY dirtied_at DESC LIMIT 1"
    )
    publish(warehouse._con, warehouse.snapshot_path)
    assert warehouse.query("SELECT count(*) FROM unpublished_partitions") == [(0,)]
    # Deletion is by the marks read, not by time: a mark the publish never saw is kept.
    with warehouse.transaction() as cur:
        cur.execute(
            "INSERT INTO unpublished_partitions (table_name, day, dirtied_at)"
            " VALUES ('step_results', current_date, now())"
        )
    from runtype_prefect.warehouse import publish as publishing

    publishing._record(warehouse._con.cursor(), {}, {}, [str(mark[0])], NOW)
    assert warehouse.query("SELECT count(*) FROM unpublished_partitions") == [(1,)]


def test_a_warehouse_from_before_incremental_publishing_publishes_all_it_holds(tmp_path):
    """Upgrading: migration 0005 marks every day already landed, so the first publish after
    it carries the whole history into the parts."""
    from unittest import mock

    from runtype_prefect.warehouse import migrate

    path = tmp_path / "old.duckdb"
    older = [m for m in migrate.migrations() if m[0] < 5]
    with mock.patch.object(migrate, "migrations", return_value=older):
        with duckdb.connect(str(path)) as con:
            migrate.apply_migrations(con)
            con.execute(
                "INSERT INTO step_results (id, flow_id, status, landed_at) VALUES"
                " ('a', 'f', 'completed', now() - INTERVAL 3 DAY),"
                " ('b', 'f', 'completed', now())"
            )
    with Warehouse(path) as w:  # migrates to 0005
        snapshot = w.publish_snapshot()
        assert len(parts(w)) == 2
    assert count(snapshot) == 2


def test_a_failed_publish_leaves_the_snapshot_and_the_marks_as_they_were(warehouse, monkeypatch):
    from runtype_prefect.warehouse import publish as publishing

    warehouse.land_step_results(steps(*range(0, 10)))
    snapshot = warehouse.publish_snapshot()
    warehouse.land_step_results(steps(*range(10, 15)))

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(publishing, "_build_catalog", disk_full)
    with pytest.raises(OSError, match="No space"):
        warehouse.publish_snapshot()
    assert count(snapshot) == 10  # readers still get the previous night, whole
    assert warehouse.query("SELECT count(*) > 0 FROM unpublished_partitions") == [(True,)]
    monkeypatch.undo()
    warehouse.publish_snapshot()
    assert count(snapshot) == 15
