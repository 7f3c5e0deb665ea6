"""Repairs, as the world is: a night's failed records are re-run exactly once, as a batch of
their own that counts for that night, compared with the sandbox's ground truth over real
HTTP."""

from __future__ import annotations

import pytest
from conftest import SandboxAdmin
from helpers import job_settings
from test_incremental import batch_records, new_batches
from typer.testing import CliRunner

from runtype_prefect.cli import app as cli_app
from runtype_prefect.client import RuntypeClient
from runtype_prefect.flows import repair_night, run_record_type
from runtype_prefect.orchestration import Outcome
from runtype_prefect.warehouse import JobKey, Warehouse

pytestmark = pytest.mark.usefixtures("prefect_api", "runtype_env")

NIGHT = "2026-11-20"


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "runtype.duckdb")


def ran_night(admin: SandboxAdmin, flow: str, record_type: str, settings) -> str:
    """Run ``NIGHT`` of the job on a fresh sandbox; return its batch's id."""
    run_record_type(flow, record_type, run_key=NIGHT, settings=settings)
    (night_batch,) = new_batches(admin, set())
    return night_batch


def transient_failures(client: RuntypeClient, db: str, batch_id: str) -> tuple[set[str], int]:
    """Return the records that failed in ``batch_id`` (the sandbox's account) with an error a
    re-run may cure, by the warehouse's `is_transient_error`, and how many failed in all."""
    pages = client.iter_batch_record_results(batch_id, status="failed")
    rows = [row for page in pages for row in page.items]
    with Warehouse(db) as w:
        transient = {
            row.record_id
            for row in rows
            if w.query("SELECT is_transient_error(?)", [row.error])[0][0]
        }
    return transient, len(rows)


def test_a_repair_reruns_exactly_the_nights_failed_records_once(
    admin: SandboxAdmin, client: RuntypeClient, db: str
) -> None:
    flow = admin.flow_for("ticket")
    settings = job_settings(db, fast=True, preflight=False)
    night_batch = ran_night(admin, flow, "ticket", settings)
    failed = batch_records(client, night_batch, status="failed")
    assert failed
    gone = sorted(failed)[0]
    assert client._http.delete(f"records/{gone}").status_code == 200

    state = repair_night(flow, "ticket", NIGHT, settings=settings, return_state=True)
    (repair_batch,) = new_batches(admin, {night_batch})
    assert batch_records(client, repair_batch) == failed - {gone}
    result = state.result(raise_on_failure=False)
    assert result.records == len(failed) - 1
    with Warehouse(db) as w:
        kept = w.get_selection(JobKey(flow, "ticket", NIGHT), "repair")
        nights = dict(w.query("SELECT batch_id, part FROM batch_nights WHERE is_current"))
    assert kept is not None and kept.repairs == (night_batch,)
    assert kept.reasons == {"failed": len(failed) - 1, "deleted since": 1}
    assert nights == {night_batch: "", repair_batch: "repair 1/1"}

    again = repair_night(flow, "ticket", NIGHT, settings=settings, return_state=True)
    assert again.result(raise_on_failure=False).reconnected
    assert admin.stats()["runsStarted"] == 2, "a second identical repair starts nothing"


def test_a_transient_only_repair_leaves_failures_a_rerun_cannot_cure(
    admin: SandboxAdmin, client: RuntypeClient, db: str
) -> None:
    flow = admin.flow_for("lead")
    settings = job_settings(db, fast=True, preflight=False)
    night_batch = ran_night(admin, flow, "lead", settings)
    transient, failed = transient_failures(client, db, night_batch)
    assert transient and len(transient) < failed

    repair_night(flow, "lead", NIGHT, transient_only=True, settings=settings)
    (repair_batch,) = new_batches(admin, {night_batch})
    assert batch_records(client, repair_batch) == transient


def test_the_repair_command_finds_the_job_in_the_warehouse(admin: SandboxAdmin, db: str) -> None:
    flow = admin.flow_for("customer")
    run_record_type(
        flow,
        "customer",
        run_key=NIGHT,
        job_name="Customer Health Summary",
        settings=job_settings(db, fast=True, preflight=False),
    )
    runner = CliRunner()
    args = ["repair", "--night", NIGHT, "--job", "customer", "--db", db]
    first = runner.invoke(cli_app, args)
    assert first.exit_code in (0, 2), first.output
    started = admin.stats()["runsStarted"]
    second = runner.invoke(cli_app, args)
    assert second.exit_code == first.exit_code, second.output
    assert admin.stats()["runsStarted"] == started, "the same repair again starts nothing"
    unknown = runner.invoke(cli_app, [*args[:4], "invoices", "--db", db])
    assert unknown.exit_code != 0
    assert "no job 'invoices' ran on 2026-11-20" in unknown.output
    assert "Customer Health Summary" in unknown.output


def test_repairs_until_nothing_fails_then_nothing_to_repair_starts_nothing(
    admin: SandboxAdmin, client: RuntypeClient, db: str
) -> None:
    """Each forced repair chooses again: only the records still failing after the earlier
    repairs. Once none is, the repair ends NothingToRun and starts nothing."""
    flow = admin.flow_for("customer")
    settings = job_settings(db, fast=True, preflight=False)
    night_batch = ran_night(admin, flow, "customer", settings)
    still_failing = batch_records(client, night_batch, status="failed")
    known = {night_batch}
    forced = job_settings(db, fast=True, preflight=False, force=True)
    for _ in range(6):
        started = admin.stats()["runsStarted"]
        state = repair_night(flow, "customer", NIGHT, settings=forced, return_state=True)
        if not still_failing:
            assert state.result(raise_on_failure=False).outcome is Outcome.NOTHING_TO_RUN
            assert state.name == "NothingToRun" and "nothing to repair" in state.message
            assert admin.stats()["runsStarted"] == started
            return
        (repair_batch,) = new_batches(admin, known)
        known.add(repair_batch)
        assert batch_records(client, repair_batch) == still_failing
        still_failing = batch_records(client, repair_batch, status="failed")
    pytest.fail("records kept failing through five repairs")


def test_the_nights_repair_pass_reruns_transient_failures_once_within_budget(
    admin: SandboxAdmin, client: RuntypeClient, db: str
) -> None:
    from runtype_prefect.engine.jobs import Job
    from runtype_prefect.engine.settings import NightSettings
    from runtype_prefect.flows import nightly

    flow = admin.flow_for("lead")
    job = Job(flow_id=flow, record_type="lead", name="Lead Enrichment")
    settings = job_settings(db, fast=True)
    night = NightSettings(repair={"enabled": True}, quality={"enabled": False})
    results = nightly(jobs=[job], run_key=NIGHT, settings=settings, night=night)
    (night_batch, repair_batch) = new_batches(admin, set())
    transient, _ = transient_failures(client, db, night_batch)
    with Warehouse(db) as w:
        gate_n = w.query("SELECT records FROM job_nights WHERE night = ?", [NIGHT])[0][0]
    assert batch_records(client, repair_batch) == transient
    assert [r.job for r in results] == ["Lead Enrichment", "Lead Enrichment · repair"]
    assert results[1].records == len(transient)
    assert gate_n == 1200, "the gate judges the night's first attempts"

    nightly(jobs=[job], run_key=NIGHT, settings=settings, night=night)
    assert admin.stats()["runsStarted"] == 2, "the pass runs at most once a night"

    tight = NightSettings(
        repair={"enabled": True},
        quality={"enabled": False},
        max_cost_usd=results[0].estimated_cost_usd + 0.0001,
    )
    nightly(jobs=[job], run_key="2026-11-21", settings=settings, night=tight)
    assert admin.stats()["runsStarted"] == 3, "no repair past the night's budget"
