"""Incremental nights, as the world is: records change, appear and disappear between nights
(through the sandbox's controls and the records API), and each night runs exactly the records
new, changed or failed since their last result, exactly once, compared with the sandbox's own
ground truth over real HTTP."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from conftest import SandboxAdmin
from helpers import job_settings, latest_preflight_markdown

from runtype_prefect.client import RuntypeClient
from runtype_prefect.engine.jobs import Job
from runtype_prefect.engine.settings import NightSettings
from runtype_prefect.flows import run_record_type
from runtype_prefect.orchestration import Outcome
from runtype_prefect.sandbox import SandboxServer, SandboxSettings
from runtype_prefect.warehouse import JobKey, Warehouse

pytestmark = pytest.mark.usefixtures("prefect_api", "runtype_env")


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "runtype.duckdb")


def batch_records(client: RuntypeClient, batch_id: str, status: str | None = None) -> set[str]:
    """Return the ids of the records the sandbox ran in ``batch_id`` (its ground truth)."""
    return {
        row.record_id
        for page in client.iter_batch_record_results(batch_id, status=status)
        for row in page.items
    }


def new_batches(admin: SandboxAdmin, known: set[str]) -> list[str]:
    """Return the ids of the sandbox's batches not in ``known``, oldest first."""
    batches = sorted(admin.stats()["batches"], key=lambda b: b["createdAt"])
    return [b["id"] for b in batches if b["id"] not in known]


def night(flow: str, record_type: str, run_key: str, db: str, *, preflight: bool = False):
    return run_record_type(
        flow,
        record_type,
        run_key=run_key,
        settings=job_settings(db, fast=True, mode="incremental", preflight=preflight),
        return_state=True,
    )


def test_an_incremental_night_runs_exactly_the_new_changed_and_failed_records(
    admin: SandboxAdmin, client: RuntypeClient, db: str
) -> None:
    flow = admin.flow_for("lead")
    first = night(flow, "lead", "2026-11-20", db)
    (batch_1,) = new_batches(admin, set())
    assert first.result(raise_on_failure=False).records == 1200  # nothing ran before: all
    failed = batch_records(client, batch_1, status="failed")
    assert failed, "the seeded night has failures to run again"

    leads = [r.id for r in client.list_records(type="lead")]
    untouched = [r for r in leads if r not in failed]
    changed = set(untouched[:5])
    for record_id in changed:
        admin.change_record(record_id)
    created = {
        client._http.post("records", json={"type": "lead", "name": f"New lead {i}"}).json()["id"]
        for i in range(2)
    }
    deleted_failure = sorted(failed)[0]
    assert client._http.delete(f"records/{deleted_failure}").status_code == 200

    second = night(flow, "lead", "2026-11-21", db, preflight=True)
    (batch_2,) = new_batches(admin, {batch_1})
    expected = changed | created | (failed - {deleted_failure})
    preflight = latest_preflight_markdown()
    assert f"{len(expected)} of 1,201 records: 5 changed, 2 new, {len(failed) - 1} failed" in (
        preflight
    )
    assert "instead of $" in preflight and f"{len(expected)} of 1,201 (incremental)" in preflight
    assert batch_records(client, batch_2) == expected
    result = second.result(raise_on_failure=False)
    assert result.records == len(expected)
    with Warehouse(db) as w:
        (landed,) = w.query("SELECT count(*) FROM record_results WHERE batch_id = ?", [batch_2])[0]
        (part,) = w.query("SELECT part FROM batch_nights WHERE batch_id = ?", [batch_2])[0]
        reasons = w.get_selection(JobKey(flow, "lead", "2026-11-21"), "incremental")
    assert landed == len(expected) and part == "incremental 1/1"
    assert reasons is not None and reasons.reasons == {
        "changed": len(changed),
        "new": len(created),
        "failed": len(failed) - 1,
    }

    again = night(flow, "lead", "2026-11-21", db)
    assert again.result(raise_on_failure=False).reconnected
    assert admin.stats()["runsStarted"] == 2, "a re-run of the night starts nothing"


def test_a_night_with_nothing_to_run_starts_nothing_and_pays_nothing(
    admin: SandboxAdmin, db: str
) -> None:
    flow = admin.flow_for("customer")
    for started, day in enumerate(range(20, 26)):
        state = night(flow, "customer", f"2026-11-{day}", db)
        result = state.result(raise_on_failure=False)
        if result.outcome is Outcome.NOTHING_TO_RUN:
            assert state.is_completed() and state.name == "NothingToRun"
            assert "nothing changed" in state.message
            assert admin.stats()["runsStarted"] == started
            return
        assert admin.stats()["runsStarted"] == started + 1
    pytest.fail("every night found failures to run again")


def test_a_new_published_flow_version_runs_every_record_again(
    admin: SandboxAdmin, client: RuntypeClient, db: str
) -> None:
    flow = admin.flow_for("customer")
    night(flow, "customer", "2026-11-20", db)
    steps = client._http.get(f"flows/{flow}").json()["flowSteps"]
    assert client._http.put(f"flows/{flow}", json={"flowSteps": steps}).status_code == 200
    assert client._http.post(f"flows/{flow}/publish").status_code == 200
    state = night(flow, "customer", "2026-11-21", db)
    assert state.result(raise_on_failure=False).records == 40
    with Warehouse(db) as w:
        kept = w.get_selection(JobKey(flow, "customer", "2026-11-21"), "incremental")
        parts = w.query("SELECT part FROM run_intents WHERE run_key = '2026-11-21'")
    assert kept is not None and kept.whole_type and kept.reasons == {"flow version changed": 40}
    assert parts == [("",)], "one run over the whole record type"


def test_a_split_night_that_dies_between_its_calls_resumes_with_the_calls_not_made(
    admin: SandboxAdmin, client: RuntypeClient, db: str
) -> None:
    """More changed records than one call takes: two parts. The second call is refused
    (the run dies between its calls); the re-run keeps the first part's batch, and the
    second call's answer is then lost after the API acted: it is adopted, not repeated."""
    flow = admin.flow_for("lead")
    night(flow, "lead", "2026-11-20", db)
    (batch_1,) = new_batches(admin, set())
    failed = batch_records(client, batch_1, status="failed")
    for record in client.list_records(type="lead")[:1001]:
        admin.change_record(record.id)
    changed = {r.id for r in client.list_records(type="lead")[:1001]}
    expected = changed | failed
    admin.script(
        {"kind": "pass", "method": "POST", "path_prefix": "/v1/batch/flow"},
        {"kind": "status", "status": 400, "method": "POST", "path_prefix": "/v1/batch/flow"},
    )
    dead = night(flow, "lead", "2026-11-21", db)
    assert dead.is_failed()
    (part_1,) = new_batches(admin, {batch_1})

    admin.script({"kind": "drop", "method": "POST", "path_prefix": "/v1/batch/flow"})
    resumed = night(flow, "lead", "2026-11-21", db)
    assert resumed.is_completed() or resumed.name == "CompletedWithFailures"
    (part_2,) = new_batches(admin, {batch_1, part_1})
    first, second = batch_records(client, part_1), batch_records(client, part_2)
    assert not first & second and first | second == expected
    assert len(first) == 1000
    assert admin.stats()["runsStarted"] == 3
    result = resumed.result(raise_on_failure=False)
    assert result.records == len(expected)
    with Warehouse(db) as w:
        parts = dict(w.query("SELECT part, batch_id FROM run_intents WHERE run_key = '2026-11-21'"))
        landed = w.query(
            "SELECT count(*), count(DISTINCT record_id) FROM record_results"
            " WHERE batch_id IN (?, ?)",
            [part_1, part_2],
        )[0]
    assert parts == {"incremental 1/2": part_1, "incremental 2/2": part_2}
    assert landed == (len(expected), len(expected))


LAST_NIGHT = date(2026, 3, 7)


def _backfill_lead(server: SandboxServer, db: str, mode: str, monkeypatch) -> None:
    """Land 7 nights of the lead job from ``server`` into ``db`` in ``mode``."""
    from runtype_prefect.flows import backfill

    monkeypatch.setenv("RUNTYPE_API_KEY", server.api_key)
    monkeypatch.setenv("RUNTYPE_BASE_URL", server.base_url)
    flow = next(
        f for f in server.app.state.sandbox.world.flows.values() if f.name == "Lead Enrichment"
    )
    backfill(
        nights=7,
        jobs=[Job(flow_id=flow.id, record_type="lead", name="Lead Enrichment", mode=mode)],
        last_night=LAST_NIGHT,
        settings=job_settings(db, fast=True, publish_snapshot=False),
        night=NightSettings(quality={"enabled": False}),
    )


def test_seven_incremental_nights_keep_every_records_state_true_to_seven_full_nights(
    tmp_path, monkeypatch
) -> None:
    """Two sandboxes whose records change the same way each night: one lands seven full
    nights of leads, the other seven incremental ones. The incremental warehouse's state of
    the last night holds every existing lead once, with its latest result as its sandbox
    ran it, and agrees with the full nights on every record that ran on the same night."""
    start = datetime(2026, 3, 1, 2, tzinfo=UTC)
    runs = {}
    for mode in ("full", "incremental"):
        db = str(tmp_path / f"{mode}.duckdb")
        with SandboxServer(SandboxSettings(churn=1.0, start=start)) as server:
            _backfill_lead(server, db, mode, monkeypatch)
            with SandboxAdmin(server.base_url, api_key=server.api_key) as admin:
                batches = sorted(admin.stats()["batches"], key=lambda b: b["createdAt"])
            with RuntypeClient(server.api_key, server.base_url) as client:
                existing = {r.id for r in client.list_records(type="lead")}
                latest: dict[str, bool] = {}
                for batch in batches:  # the sandbox's own record of every run, in order
                    for page in client.iter_batch_record_results(batch["id"]):
                        latest.update(
                            {row.record_id: row.status == "completed" for row in page.items}
                        )
        runs[mode] = (db, batches, existing, latest)

    full_db, full_batches, full_existing, _ = runs["full"]
    db, batches, existing, latest = runs["incremental"]
    assert existing == full_existing, "both worlds changed the same way"
    assert len(full_batches) == len(batches) == 7
    assert batches[0]["totalRecords"] == full_batches[0]["totalRecords"]  # night 1: every lead
    later = [b["totalRecords"] for b in batches[1:]]
    assert all(n < full_batches[0]["totalRecords"] / 2 for n in later), f"what changed: {later}"
    with Warehouse(db) as w:
        state = w.query(
            "SELECT record_id, success, ran_night, execution_time_s FROM record_state"
            " WHERE record_type = 'lead' AND night = ?",
            [LAST_NIGHT],
        )
    ids = [row[0] for row in state]
    assert len(ids) == len(set(ids)), "every record once"
    assert set(ids) == existing, "every existing record, none deleted"
    assert {row[0]: row[1] for row in state} == {r: latest[r] for r in existing}
    with Warehouse(full_db) as w:
        full = {
            (record_id, night): (success, seconds)
            for record_id, night, success, seconds in w.query(
                "SELECT record_id, night, success, execution_time_s FROM record_facts"
                " WHERE record_type = 'lead'"
            )
        }
    compared = 0
    for record_id, success, ran_night, seconds in state:
        if (record_id, ran_night) in full:
            # Execution times come from millisecond timestamps, which depend on the lane.
            assert full[record_id, ran_night] == (success, pytest.approx(seconds, abs=0.002))
            compared += 1
    assert compared == len(state), "every record's latest result ran on a night of both"
    with Warehouse(db) as w:
        (saved,) = w.query("SELECT sum(records_saved) FROM incremental_savings")[0]
    assert saved > 5 * 1000, "six nights that ran a few hundred leads of ~1,200"
