"""The Prefect flows end to end: Prefect test server (one per session), sandbox over HTTP,
DuckDB on disk."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import duckdb
import pytest
from helpers import job_settings

from runtype_prefect.client import BatchWaitTimeout, RuntypeClient
from runtype_prefect.engine.jobs import Job
from runtype_prefect.engine.settings import NightSettings, QualityGate
from runtype_prefect.flows import nightly, run_record_type
from runtype_prefect.orchestration import Outcome
from runtype_prefect.orchestration import tasks as job_tasks
from runtype_prefect.orchestration.credentials import RuntypeCredentials
from runtype_prefect.orchestration.record_type import cancel_in_flight_batches
from runtype_prefect.sandbox.world import RECORD_TYPE_SIZES
from runtype_prefect.warehouse import JobKey, Warehouse, record_results_table, snapshot_path_for

pytestmark = pytest.mark.usefixtures("prefect_api", "runtype_env")


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "runtype.duckdb")


def job(admin, record_type: str, flow_record_type: str | None = None) -> Job:
    return Job(flow_id=admin.flow_for(flow_record_type or record_type), record_type=record_type)


def tables(db: str) -> dict[str, list[tuple]]:
    with Warehouse(db) as w:
        return {
            t: w.query(f"SELECT * EXCLUDE (landed_at) FROM {t} ORDER BY ALL")
            for t in ("record_results", "step_results")
        }


def remote_step_count(sandbox, flow_id: str, batch_id: str) -> int:
    with RuntypeClient(sandbox.api_key, sandbox.base_url) as c:
        return sum(len(p.items) for p in c.iter_step_results(flow_id, batch_execution_id=batch_id))


def test_immediate_and_deferred_jobs_land_exact_counts(admin, sandbox, db, caplog):
    jobs = [job(admin, "vip_account"), job(admin, "customer")]
    results = nightly(jobs=jobs, run_key="2026-11-01", settings=job_settings(db, fast=True))
    assert [r.records for r in results] == [6, 40]
    landed_lines = [m for m in caplog.messages if ": landed " in m]
    assert any("landed 6 record and " in m for m in landed_lines), landed_lines
    with Warehouse(db) as w:
        for r, j in zip(results, jobs, strict=True):
            assert w.query(
                "SELECT count(*) FROM record_results WHERE batch_id = ?", [r.batch_id]
            ) == [(RECORD_TYPE_SIZES[j.record_type],)]
            landed = w.query(
                "SELECT count(*) FROM step_results WHERE batch_execution_id = ?", [r.batch_id]
            )[0][0]
            assert landed == remote_step_count(sandbox, j.flow_id, r.batch_id) > 0
            batch = w.get_batch(r.batch_id)
            assert batch["outcome"] == r.outcome.value and batch["landed_at"] is not None
            assert batch["total_records"] == RECORD_TYPE_SIZES[j.record_type]
        # Every record (immediate or deferred) gets its execution time from its steps.
        assert w.query("SELECT count(*) FROM record_results WHERE execution_time_s IS NULL") == [
            (0,)
        ]
        # ...and an immediate run's records keep the API's own figures beside them.
        assert w.query(
            "SELECT count(*), count(reported_execution_time_s) FROM record_results"
            " WHERE batch_id IN (SELECT batch_id FROM batches WHERE executed_immediately)"
        ) == [(sum(n for n in RECORD_TYPE_SIZES.values() if n <= 10),) * 2]
    with duckdb.connect(str(snapshot_path_for(Warehouse(db).path)), read_only=True) as snap:
        assert snap.execute("SELECT count(*) FROM record_results").fetchone() == (46,)


def test_rerunning_a_night_changes_nothing_and_starts_nothing(admin, db):
    jobs = [job(admin, "vip_account"), job(admin, "ticket")]
    nightly(jobs=jobs, run_key="2026-11-02", settings=job_settings(db, fast=True))
    before = tables(db)
    results = nightly(jobs=jobs, run_key="2026-11-02", settings=job_settings(db, fast=True))
    assert tables(db) == before
    assert all(r.reconnected for r in results)
    assert admin.stats()["runsStarted"] == 2


def test_a_retry_after_a_crash_reconnects_to_the_batch(admin, sandbox, db, monkeypatch):
    the_job = job(admin, "customer")
    real_wait = RuntypeClient.wait_for_batch
    calls = []

    def crash_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("worker died")
        return real_wait(*args, **kwargs)

    monkeypatch.setattr(RuntypeClient, "wait_for_batch", crash_once)
    args = dict(
        flow_id=the_job.flow_id,
        record_type="customer",
        run_key="k",
        settings=job_settings(db, fast=True),
    )
    state = run_record_type(**args, return_state=True)
    assert state.is_failed()
    result = run_record_type(**args)
    assert result.reconnected and result.records == 40
    assert admin.stats()["runsStarted"] == 1


def test_a_start_interrupted_before_the_batch_id_was_saved_is_reconciled(admin, sandbox, db):
    the_job = job(admin, "ticket")
    with Warehouse(db) as w:  # the ledger says we asked, but the crash lost the answer
        w.record_intent(
            JobKey(the_job.flow_id, "ticket", "k"),
            requested_at=datetime.now(UTC),
            prefect_flow_run_id=None,
            job_name=None,
        )
    with RuntypeClient(sandbox.api_key, sandbox.base_url) as c:
        remote = c.run_on_record_type(the_job.flow_id, "ticket")
    result = run_record_type(
        flow_id=the_job.flow_id,
        record_type="ticket",
        run_key="k",
        settings=job_settings(db, fast=True),
    )
    assert result.batch_id == remote.batch_id and result.records == 250
    assert admin.stats()["runsStarted"] == 1


def test_an_ambiguous_start_is_reconciled_not_repeated(admin, db):
    admin.script({"kind": "drop", "method": "POST", "path_prefix": "/v1/flows"})
    the_job = job(admin, "customer")
    result = run_record_type(
        flow_id=the_job.flow_id,
        record_type="customer",
        run_key="k",
        settings=job_settings(db, fast=True),
    )
    assert result.reconnected and result.records == 40
    assert admin.stats()["runsStarted"] == 1


def test_429_and_5xx_storms_lose_and_duplicate_nothing(admin, sandbox, db, monkeypatch):
    RuntypeCredentials(
        api_key=sandbox.api_key, base_url=sandbox.base_url, max_attempts=8, retry_base_delay=0.01
    ).save("storm", overwrite=True)
    monkeypatch.setattr(job_tasks.start_or_reconnect, "retry_delay_seconds", [0.01] * 3)
    monkeypatch.setattr(job_tasks.land_results, "retry_delay_seconds", [0.01] * 3)
    admin.faults(rate_429=0.15, rate_5xx=0.15, rate_drop=0.05, retry_after_seconds=0, seed=3)
    jobs = [job(admin, "vip_account"), job(admin, "customer"), job(admin, "ticket")]
    results = nightly(
        jobs=jobs, run_key="storm", settings=job_settings(db, fast=True, credentials_block="storm")
    )
    admin.faults()
    assert [r.records for r in results] == [6, 40, 250]
    assert admin.stats()["runsStarted"] == 3
    with Warehouse(db) as w:
        for r, j in zip(results, jobs, strict=True):
            landed = w.query(
                "SELECT count(*) FROM step_results WHERE batch_execution_id = ?", [r.batch_id]
            )[0][0]
            assert landed == remote_step_count(sandbox, j.flow_id, r.batch_id)


def test_a_timeout_is_typed_and_marks_the_batch(admin, db):
    admin.clock(time_scale=100.0)  # the batch now takes far longer than we wait
    the_job = job(admin, "lead")
    state = run_record_type(
        flow_id=the_job.flow_id,
        record_type="lead",
        run_key="k",
        return_state=True,
        settings=job_settings(db, fast=True, waiting={"timeout_seconds": 0.3}),
    )
    assert state.is_failed()
    with pytest.raises(BatchWaitTimeout, match=r"did not finish within 0\.3s"):
        state.result()
    with Warehouse(db) as w:
        (batch,) = w.query("SELECT outcome, error FROM batches")
    assert batch[0] == "timed_out" and "left running" in batch[1]


def test_cancellation_cancels_the_remote_batch(admin, sandbox, db):
    admin.clock(time_scale=100.0)
    the_job = job(admin, "lead")
    with RuntypeClient(sandbox.api_key, sandbox.base_url) as c:
        remote = c.run_on_record_type(the_job.flow_id, "lead")
        finished = c.run_on_record_type(admin.flow_for("vip_account"), "vip_account")
    with Warehouse(db) as w:
        for batch_id, rtype in ((remote.batch_id, "lead"), (finished.batch_id, "vip_account")):
            w.upsert_batch(
                batch_id,
                flow_id=the_job.flow_id,
                record_type=rtype,
                status="running",
                prefect_flow_run_id="run-1",
            )
    flow_run = SimpleNamespace(id="run-1", parameters={"settings": {"db_path": db}})
    cancel_in_flight_batches(None, flow_run, None)
    with RuntypeClient(sandbox.api_key, sandbox.base_url) as c:
        assert c.get_batch_status(remote.batch_id).status.value == "cancelled"
    with Warehouse(db) as w:
        assert w.get_batch(remote.batch_id)["outcome"] == "cancelled"
        # The batch that had already ended is left for a re-run to land, not called cancelled.
        assert w.unfinished_batches("run-1") == [finished.batch_id]


def test_one_failing_job_does_not_stop_the_others(admin, db):
    jobs = [
        job(admin, "vip_account"),
        Job(flow_id="flow_missing", record_type="customer"),
        job(admin, "customer"),
    ]
    # The preflight would stop the night at the unknown flow: here a job fails on its own.
    state = nightly(
        jobs=jobs,
        run_key="k",
        return_state=True,
        settings=job_settings(db, fast=True, preflight=False),
    )
    assert state.is_failed()
    assert "flow_missing" in state.message and "1 of 3 jobs failed" in state.message
    results = state.result(raise_on_failure=False)
    assert [r.outcome for r in results] == [Outcome.COMPLETED, Outcome.ERROR, results[2].outcome]
    assert "FLOW_NOT_FOUND" in results[1].message
    assert results[2].records == 40


def test_a_bad_key_fails_the_preflight_before_anything_starts(admin, db, monkeypatch):
    monkeypatch.setenv("RUNTYPE_API_KEY", "rt_test_wrong")
    served = admin.stats()["requestsServed"]
    started = time.monotonic()
    state = nightly(
        jobs=[job(admin, "customer")], run_key="k", return_state=True, settings=job_settings(db)
    )
    assert state.is_failed() and state.result(raise_on_failure=False) == []
    assert "preflight failed, nothing was started" in state.message
    assert "rejected the API key (invalid or revoked API key)" in state.message
    assert admin.stats()["requestsServed"] - served == 3, "one GET, then the two stats calls"
    assert admin.stats()["runsStarted"] == 0
    assert time.monotonic() - started < 30


def test_an_unknown_record_type_fails_the_preflight_naming_the_types_that_exist(admin, db):
    the_job = Job(flow_id=admin.flow_for("customer"), record_type="custmer")
    state = nightly(
        jobs=[the_job], run_key="k", return_state=True, settings=job_settings(db, fast=True)
    )
    assert state.is_failed()
    assert (
        "'custmer' has no records (misspelt?); record types that exist: customer, lead,"
        " ticket, vip_account" in state.message
    )
    assert admin.stats()["runsStarted"] == 0
    with Warehouse(db) as w:
        assert w.query("SELECT count(*) FROM batches") == [(0,)]


def test_an_open_reader_never_stops_a_nightly_run(admin, db):
    nightly(
        jobs=[job(admin, "vip_account")], run_key="night-1", settings=job_settings(db, fast=True)
    )
    snapshot = snapshot_path_for(Warehouse(db).path)
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], "
            "read_only=True); print(c.execute('select count(*) from record_results').fetchone()[0],"
            " flush=True); time.sleep(60)",
            str(snapshot),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "6"
        nightly(
            jobs=[job(admin, "customer")], run_key="night-2", settings=job_settings(db, fast=True)
        )
        assert reader.poll() is None, "the reader is still connected"
        with duckdb.connect(str(snapshot), read_only=True) as fresh:
            assert fresh.execute("SELECT count(*) FROM record_results").fetchone() == (46,)
    finally:
        reader.kill()
        reader.wait()


def test_the_key_never_reaches_logs_artifacts_or_the_database(admin, db, runtype_env, capfd):
    from prefect.client.orchestration import get_client

    jobs = [job(admin, "vip_account"), Job(flow_id="flow_missing", record_type="x")]
    for preflight in (True, False):  # the preflight's failure, then a job's own
        nightly(
            jobs=jobs,
            run_key=f"k-{preflight}",
            return_state=True,
            settings=job_settings(db, fast=True, preflight=preflight),
        )
    with Warehouse(db) as w:
        for (table,) in w.query("SELECT table_name FROM information_schema.tables"):
            text = str(w.query(f"SELECT * FROM {table}"))
            assert runtype_env not in text, f"key found in table {table}"
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
    assert artifacts and runtype_env not in str([a.model_dump() for a in artifacts])
    out, err = capfd.readouterr()
    assert runtype_env not in out + err


def test_the_nightly_quality_gate_flags_and_can_fail_a_regression(admin, db):
    customer = job(admin, "customer")
    with Warehouse(db) as w:  # a history of fast, flawless nights makes tonight a regression
        for day in range(1, 8):
            night = f"2026-10-{day:02d}"
            w.upsert_batch(
                f"past-{day}",
                flow_id=customer.flow_id,
                record_type="customer",
                run_key=night,
                status="completed",
                outcome="completed",
            )
            w.land_record_results(
                record_results_table(
                    [
                        {
                            "batch_id": f"past-{day}",
                            "record_id": f"r{i}",
                            "record_type": "customer",
                            "flow_id": customer.flow_id,
                            "status": "completed",
                            "success": True,
                            "execution_time_s": 0.05 + i / 1000,
                        }
                        for i in range(40)
                    ]
                )
            )
    state = nightly(
        jobs=[customer],
        run_key="2026-10-08",
        return_state=True,
        settings=job_settings(db, fast=True),
        night=NightSettings(quality=QualityGate(fail_on_degradation=True)),
    )
    assert state.is_failed() and "quality degraded: " in state.message
    assert "customer: p95" in state.message and "degraded since 10-08, night 1" in state.message
    (result,) = state.result(raise_on_failure=False)
    assert result.records == 40, "the night still landed"
    with Warehouse(db) as w:
        stored = w.query(
            "SELECT metric, verdict FROM quality_verdicts WHERE night = '2026-10-08' ORDER BY 1"
        )
    assert ("p95_s", "degraded") in stored


def test_the_run_command_lands_and_prints_a_summary_and_refuses_a_typo(admin, db):
    from typer.testing import CliRunner

    from runtype_prefect.cli import app

    def run(*record_types: str, flow: str = "customer", extra: tuple[str, ...] = ()):
        args = ["run", "--flow-id", admin.flow_for(flow), "--db", db, "--run-key", "cli", *extra]
        for record_type in record_types:
            args += ["--record-type", record_type]
        return CliRunner().invoke(app, args)

    typo = run("customer", "nope")
    assert typo.exit_code == 4, typo.output  # a record type without records, before Prefect
    assert "'nope' has no records" in typo.stdout
    assert admin.stats()["runsStarted"] == 0
    result = run("customer")
    assert result.exit_code == 0, result.output
    assert "customer" in result.stdout and "completed" in result.stdout
    with Warehouse(db) as w:
        assert w.query("SELECT count(*) FROM record_results") == [(40,)]
    floor = run("ticket", flow="ticket", extra=("--min-success-rate", "0.999"))
    assert floor.exit_code == 3, floor.output
    assert "below_floor" in floor.stdout
    admin.clock(time_scale=100.0)  # the batch would take hours
    late = run("lead", flow="lead", extra=("--timeout", "0.3"))
    assert late.exit_code == 1, late.output
    assert "timed_out" in late.stdout


def test_a_warehouse_file_is_open_only_while_used_and_a_shared_one_is_kept(tmp_path):
    from runtype_prefect.engine.resources import kept_open, process_warehouse

    path = str(tmp_path / "kept.duckdb")
    with kept_open(path):
        assert not (tmp_path / "kept.duckdb").exists()  # a preflight still meets no file
        with process_warehouse(path) as first:  # the preflight's forecasts
            with process_warehouse(path) as joined:  # a concurrent job of the same process
                assert joined is first
        with pytest.raises(duckdb.ConnectionException):
            first.query("SELECT 1")  # closed by its last user: other runs may write now
        with process_warehouse(path) as second:  # the jobs
            assert second is not first
            assert second.query("SELECT 1") == [(1,)]
    shared = (tmp_path / "shared").as_uri()
    with kept_open(shared):
        with process_warehouse(shared) as first:
            pass
        with process_warehouse(shared) as second:
            assert second is first  # a shared location's staging stays open: pulled once
            assert first.query("SELECT 1") == [(1,)]
    with pytest.raises(duckdb.ConnectionException):
        first.query("SELECT 1")  # closed when the hold ended
