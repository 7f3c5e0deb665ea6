"""Exactly once, as the world is: the sandbox answers in the spec's shapes (a batch summary with
no flow id, record type or creation time), starts are lost or answered ambiguously, batches say
``completed`` early, and runs are cancelled. Every test compares the warehouse with the
sandbox's own ground truth over real HTTP, with one Prefect test server per session."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from helpers import job_settings, wait_for, wait_for_events
from typer.testing import CliRunner

from runtype_prefect.cli import app as cli_app
from runtype_prefect.client import RuntypeClient
from runtype_prefect.engine.jobs import Job
from runtype_prefect.flows import nightly, run_record_type
from runtype_prefect.orchestration import Outcome
from runtype_prefect.orchestration import tasks as job_tasks
from runtype_prefect.orchestration.credentials import RuntypeCredentials
from runtype_prefect.warehouse import JobKey, Warehouse

pytestmark = pytest.mark.usefixtures("prefect_api", "runtype_env")


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "runtype.duckdb")


def write_intent(client: RuntypeClient, w: Warehouse, flow: str, record_type: str, key: str):
    """Write the ledger row a start writes (count and API clock included), start nothing."""
    count = client.count_records(record_type)
    w.record_intent(
        JobKey(flow, record_type, key),
        requested_at=datetime.now(UTC),
        prefect_flow_run_id=None,
        job_name=None,
        api_requested_at=count.as_of,
        expected_records=count.count,
    )


def ledger(db: str) -> dict[tuple[str, str], str | None]:
    """(record type, run key) → batch id, from the warehouse's ledger."""
    with Warehouse(db) as w:
        rows = w.query("SELECT record_type, run_key, batch_id FROM run_intents")
    return {(t, k): b for t, k, b in rows}


def test_two_record_types_of_one_flow_started_together_each_get_their_own_batch(admin, db):
    """Both starts answered ambiguously (connection dropped after the API acted): the summary
    names batches by flow only, yet each job adopts the batch it started."""
    flow = admin.flow_for("lead")
    jobs = [Job(flow_id=flow, record_type="lead"), Job(flow_id=flow, record_type="ticket")]
    admin.script({"kind": "drop", "method": "POST", "path_prefix": "/v1/flows", "times": 2})
    results = nightly(jobs=jobs, run_key="2026-11-20", settings=job_settings(db, fast=True))
    truth = {b["recordType"]: b["id"] for b in admin.stats()["batches"]}
    assert {r.record_type: r.batch_id for r in results} == truth
    assert [r.records for r in results] == [1200, 250] and all(r.reconnected for r in results)
    assert admin.stats()["runsStarted"] == 2


def test_starts_lost_in_a_crash_are_told_apart_by_their_record_counts(admin, sandbox, db):
    """Both intents were written and both batches started, then the process died before
    either id was saved; the re-run matches each job to its batch."""
    flow = admin.flow_for("lead")
    jobs = [Job(flow_id=flow, record_type="lead"), Job(flow_id=flow, record_type="ticket")]
    with RuntypeClient(sandbox.api_key, sandbox.base_url) as c, Warehouse(db) as w:
        for job in jobs:
            write_intent(c, w, flow, job.record_type, "2026-11-20")
        started = {t: c.run_on_record_type(flow, t).batch_id for t in ("ticket", "lead")}
    results = nightly(jobs=jobs, run_key="2026-11-20", settings=job_settings(db, fast=True))
    assert {r.record_type: r.batch_id for r in results} == started
    assert admin.stats()["runsStarted"] == 2


def test_an_ambiguous_start_never_adopts_an_earlier_batch_of_the_same_job(admin, sandbox, db):
    flow = admin.flow_for("customer")
    admin.clock(now="2026-11-20T02:00:00Z")
    with RuntypeClient(sandbox.api_key, sandbox.base_url) as c:  # yesterday, outside our ledger
        yesterday = c.run_on_record_type(flow, "customer").batch_id
    admin.clock(now="2026-11-21T02:00:00Z")
    admin.script({"kind": "drop", "method": "POST", "path_prefix": "/v1/flows"})
    result = run_record_type(
        flow_id=flow,
        record_type="customer",
        run_key="2026-11-21",
        settings=job_settings(db, fast=True),
    )
    (tonight,) = [b["id"] for b in admin.stats()["batches"] if b["id"] != yesterday]
    assert result.batch_id == tonight and result.reconnected and result.records == 40
    assert admin.stats()["runsStarted"] == 2


def test_when_two_batches_fit_nothing_is_adopted_or_started_until_adopt_settles_it(
    admin, sandbox, db
):
    flow = admin.flow_for("customer")
    with RuntypeClient(sandbox.api_key, sandbox.base_url) as c, Warehouse(db) as w:
        write_intent(c, w, flow, "customer", "2026-11-22")
        twins = [c.run_on_record_type(flow, "customer").batch_id for _ in range(2)]
    args = dict(
        flow_id=flow,
        record_type="customer",
        run_key="2026-11-22",
        settings=job_settings(db, fast=True),
    )
    state = run_record_type(**args, return_state=True)
    assert state.is_failed()
    message = state.message or ""
    assert "2 batches fit" in message and all(t in message for t in twins)
    assert "runtype-prefect adopt" in message
    assert admin.stats()["runsStarted"] == 2, "nothing was started"
    assert ledger(db) == {("customer", "2026-11-22"): None}, "nothing was adopted"

    cli = CliRunner().invoke(
        cli_app,
        [
            "adopt",
            "--flow-id",
            flow,
            "--record-type",
            "customer",
            "--run-key",
            "2026-11-22",
            "--batch-id",
            twins[1],
            "--db",
            db,
        ],
    )
    assert cli.exit_code == 0, cli.output
    result = run_record_type(**args)
    assert result.batch_id == twins[1] and result.records == 40
    assert admin.stats()["runsStarted"] == 2


def test_an_ambiguous_part_of_an_incremental_night_stops_and_adopt_settles_that_part(
    admin, sandbox, db
):
    """The night's choice was kept and its part's start written, then two batches of the
    part's size appeared (its lost answer and a twin): nothing is adopted or started, the
    message names both and the command with the part, and adopt --part settles it."""
    from runtype_prefect.engine.jobs import JobRun
    from runtype_prefect.engine.outcomes import AmbiguousBatchError
    from runtype_prefect.engine.selection import INCREMENTAL, selection_hash
    from runtype_prefect.engine.starting import start_job
    from runtype_prefect.warehouse import Selection

    flow, night, part = admin.flow_for("lead"), "2026-11-22", "incremental 1/1"
    job = Job(flow_id=flow, record_type="lead", mode="incremental")
    with RuntypeClient(sandbox.api_key, sandbox.base_url) as c, Warehouse(db) as w:
        leads = [r.id for r in c.list_records(type="lead")]
        chosen = tuple(leads[:5])
        w.fix_selection(
            Selection(flow, "lead", night, INCREMENTAL, False, chosen, {"changed": 5}, 1200,
                      selection_hash(chosen), datetime.now(UTC))
        )  # fmt: skip
        count = c.count_records("lead")
        w.record_intent(
            job.key(night, part),
            requested_at=datetime.now(UTC),
            prefect_flow_run_id=None,
            job_name=None,
            api_requested_at=count.as_of,
            expected_records=5,
        )
        twins = [c.submit_batch(flow, list(ids))[0].batch_execution_id
                 for ids in (chosen, leads[5:10])]  # fmt: skip
        run = JobRun(job, night, job_settings(db), part=part, record_ids=chosen)
        with pytest.raises(AmbiguousBatchError) as ambiguous:
            start_job(c, w, run)
    message = str(ambiguous.value)
    assert "2 batches fit" in message and all(t in message for t in twins)
    assert f"--run-key {night} --part '{part}'" in message
    assert admin.stats()["runsStarted"] == 2, "nothing was started"

    cli = CliRunner().invoke(
        cli_app,
        ["adopt", "--flow-id", flow, "--record-type", "lead", "--run-key", night,
         "--part", part, "--batch-id", twins[0], "--db", db],
    )  # fmt: skip
    assert cli.exit_code == 0, cli.output
    with Warehouse(db) as w:
        assert w.get_intent(job.key(night, part)).batch_id == twins[0]
        assert w.get_intent(job.key(night)) is None, "the whole-type start is untouched"


def test_a_batch_that_says_completed_early_is_incomplete_until_a_rerun_lands_the_rest(admin, db):
    flow = admin.flow_for("lead")
    admin.clock(time_scale=0.05)  # the batch takes ~10 s: long enough to catch it half-way
    args = dict(
        flow_id=flow, record_type="lead", run_key="2026-11-23", settings=job_settings(db, fast=True)
    )
    impatient = job_settings(db, fast=True, waiting={"incomplete_grace_seconds": 0.3})
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(run_record_type, **{**args, "settings": impatient}, return_state=True)
        batch = wait_for(lambda: admin.stats()["batches"], "the batch to start")[0]["id"]
        admin.force_status(batch, "completed")
        state = running.result(timeout=120)
    assert state.is_failed() and state.name == "Incomplete"
    first = state.result(raise_on_failure=False)
    assert first.outcome is Outcome.INCOMPLETE and 0 <= first.records < 1200
    assert "a re-run reconnects and lands the rest" in first.message
    with Warehouse(db) as w:
        row = w.get_batch(batch)
        assert row["landed_at"] is None and row["outcome"] == "incomplete"

    admin.clock(time_scale=0.0)  # the rest of the records finish
    wait_for(lambda: admin.stats()["batches"][0]["processedRecords"] == 1200, "the batch to finish")
    second = run_record_type(**args)
    assert second.batch_id == batch and second.records == 1200 and second.reconnected
    truth = admin.stats()["batches"][0]
    with Warehouse(db) as w:
        assert w.landed_counts(batch) == (1200, truth["stepResults"])
        assert w.get_batch(batch)["landed_at"] is not None
    third = run_record_type(**args)
    assert third.message == "already landed for this run key; nothing to do"
    assert admin.stats()["runsStarted"] == 1


#: The fault mix of the chaos tests: 20 % 429, 5 % 5xx, 5 % dropped connections, 2 % malformed
#: bodies, 20 ms latency.
CHAOS = dict(
    rate_429=0.2,
    rate_5xx=0.05,
    rate_drop=0.05,
    rate_malformed=0.02,
    latency_ms=20,
    retry_after_seconds=0,
    seed=11,
)


@pytest.fixture
def chaos_block(sandbox, monkeypatch) -> str:
    """A credentials block ("chaos") that retries many times quickly, and the job tasks'
    Prefect retries paced the same way: a fault-ridden night ends within seconds."""
    RuntypeCredentials(
        api_key=sandbox.api_key, base_url=sandbox.base_url, max_attempts=10, retry_base_delay=0.01
    ).save("chaos", overwrite=True)
    for retried in (job_tasks.start_or_reconnect, job_tasks.land_results):
        monkeypatch.setattr(retried, "retry_delay_seconds", [0.01] * 3)
    return "chaos"


def test_chaos_two_nights_of_every_job_lose_and_duplicate_nothing(admin, db, chaos_block):
    """The fault mix of the issue (20 % 429, 5 % 5xx, 5 % dropped connections, 2 % malformed
    bodies, 20 ms latency) over all four jobs and two nights, against the ground truth."""
    flows = admin.stats()["flows"]
    jobs = [Job(flow_id=f["id"], record_type=f["recordType"], name=f["name"]) for f in flows]
    nights = ("2026-11-24", "2026-11-25")
    for night in nights:
        admin.clock(now=f"{night}T02:00:00Z")
        admin.faults(**CHAOS)
        state = nightly(
            jobs=jobs,
            run_key=night,
            return_state=True,
            settings=job_settings(db, credentials_block=chaos_block),
        )
        admin.faults()
        assert not state.is_failed(), state.message

    truth = admin.stats()["batches"]
    with Warehouse(db) as w:
        landed = {b: w.landed_counts(b) for b in (t["id"] for t in truth)}
        claimed = w.query("SELECT batch_id, count(*) FROM run_intents GROUP BY 1")
        rows = w.query("SELECT count(*), count(DISTINCT (batch_id, record_id)) FROM record_results")
    lost_records = sum(t["totalRecords"] - landed[t["id"]][0] for t in truth)
    lost_steps = sum(t["stepResults"] - landed[t["id"]][1] for t in truth)
    duplicated = rows[0][0] - rows[0][1]
    per_job_night: dict[tuple[str, str], int] = {}
    for t in truth:
        key = (t["recordType"], t["createdAt"][:10])
        per_job_night[key] = per_job_night.get(key, 0) + 1
    print(
        f"\nchaos: {len(truth)} batches for {len(jobs) * len(nights)} job-nights;"
        f" lost {lost_records} records and {lost_steps} step results; duplicated {duplicated};"
        f" most batches for one job-night {max(per_job_night.values())};"
        f" batches on two nights {sum(n > 1 for _, n in claimed)}"
    )
    assert (lost_records, lost_steps, duplicated) == (0, 0, 0)
    assert len(truth) == len(jobs) * len(nights) and set(per_job_night.values()) == {1}
    assert all(n == 1 for _, n in claimed) and len(claimed) == len(truth)
    assert {(t, k): b for (t, k), b in ledger(db).items()} == {
        (t["recordType"], t["createdAt"][:10]): t["id"] for t in truth
    }


def test_chaos_incremental_nights_and_repairs_lose_and_duplicate_nothing(
    admin, sandbox, db, chaos_block
):
    """The same fault mix over runs over chosen records: two incremental nights of leads (the
    first runs every lead, the second what changed or failed, its submits dropped and retried
    by reconciliation) and a repair of the second, against the ground truth: nothing lost,
    nothing doubled, one batch per job, night and part."""
    from runtype_prefect.flows import repair_night

    flow = admin.flow_for("lead")
    job = Job(flow_id=flow, record_type="lead", name="Lead Enrichment", mode="incremental")
    settings = job_settings(db, credentials_block=chaos_block)
    with RuntypeClient(sandbox.api_key, sandbox.base_url) as c:
        leads = [r.id for r in c.list_records(type="lead")]
    nights = ("2026-11-24", "2026-11-25")
    for night in nights:
        admin.clock(now=f"{night}T02:00:00Z")
        admin.faults(**CHAOS)
        state = nightly(jobs=[job], run_key=night, return_state=True, settings=settings)
        admin.faults()
        assert not state.is_failed(), state.message
        for record_id in leads[:40]:  # changed before the next night
            admin.change_record(record_id)
    admin.faults(**CHAOS)
    repaired = repair_night(flow, "lead", nights[1], settings=settings, return_state=True)
    admin.faults()
    assert not repaired.is_failed(), repaired.message

    truth = admin.stats()["batches"]
    with Warehouse(db) as w:
        landed = {b: w.landed_counts(b) for b in (t["id"] for t in truth)}
        parts = w.query(
            "SELECT run_key, part, batch_id FROM run_intents WHERE batch_id IS NOT NULL"
        )
        rows = w.query("SELECT count(*), count(DISTINCT (batch_id, record_id)) FROM record_results")
    lost_records = sum(t["totalRecords"] - landed[t["id"]][0] for t in truth)
    lost_steps = sum(t["stepResults"] - landed[t["id"]][1] for t in truth)
    duplicated = rows[0][0] - rows[0][1]
    by_part = {(k, part): b for k, part, b in parts}
    starts = ", ".join(sorted(f"{k} {p or 'whole type'}" for k, p in by_part))
    print(
        f"\nchaos over chosen records: {len(truth)} batches for {len(by_part)} starts"
        f" ({starts}); lost {lost_records} records and {lost_steps} step results;"
        f" duplicated {duplicated}"
    )
    assert (lost_records, lost_steps, duplicated) == (0, 0, 0)
    assert len(parts) == len(by_part) == len(truth), "one batch per job, night and part"
    assert set(by_part.values()) == {t["id"] for t in truth}
    assert set(by_part) == {
        (nights[0], ""),
        (nights[1], "incremental 1/1"),
        (nights[1], "repair 1/1"),
    }


def test_cancelling_the_flow_run_cancels_its_batch_within_seconds_and_frees_the_slot(admin, db):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState
    from prefect.states import Cancelling

    from runtype_prefect.orchestration.limits import BATCH_CONCURRENCY_LIMIT

    flow = admin.flow_for("lead")
    admin.clock(time_scale=100.0)  # the batch would take hours
    with get_client(sync_client=True) as prefect:
        prefect.upsert_global_concurrency_limit_by_name(name=BATCH_CONCURRENCY_LIMIT, limit=4)
        try:
            with ThreadPoolExecutor(1) as pool:
                running = pool.submit(
                    run_record_type,
                    flow_id=flow,
                    record_type="lead",
                    run_key="2026-11-26",
                    # The watch, not the poll, must notice.
                    settings=job_settings(db, waiting={"poll_interval_seconds": 30.0}),
                    return_state=True,
                )
                batch = wait_for(lambda: admin.stats()["batches"], "the batch to start")[0]
                (flow_run,) = wait_for(
                    lambda: prefect.read_flow_runs(
                        flow_run_filter=FlowRunFilter(
                            state=FlowRunFilterState(type={"any_": ["RUNNING"]})
                        )
                    ),
                    "the flow run to be running",
                )
                cancelled_at = time.monotonic()
                prefect.set_flow_run_state(flow_run.id, Cancelling(), force=True)
                wait_for(
                    lambda: admin.stats()["batches"][0]["status"] == "cancelled",
                    "the remote batch to be cancelled",
                    timeout=10,
                )
                elapsed = time.monotonic() - cancelled_at
                state = running.result(timeout=30)
            limit = prefect.read_global_concurrency_limit_by_name(BATCH_CONCURRENCY_LIMIT)
        finally:
            prefect.delete_global_concurrency_limit_by_name(BATCH_CONCURRENCY_LIMIT)
    print(f"\ncancellation reached Runtype {elapsed:.1f}s after the flow run was cancelled")
    assert elapsed < 10
    assert state.is_cancelled()
    assert limit.active_slots == 0, "the runtype-batches slot was released"
    with Warehouse(db) as w:
        row = w.get_batch(batch["id"])
        assert row["outcome"] == "cancelled" and row["landed_at"] is None
        assert w.landed_counts(batch["id"]) == (0, 0), "nothing landed after the cancel"
    *_, ended = wait_for_events("runtype.batch.", 2, resource=f"runtype.batch.{batch['id']}")
    assert ended["event"] == "runtype.batch.failed"
    assert ended["payload"]["outcome"] == "cancelled"


def test_a_lost_start_whose_lookup_fails_too_names_the_start_and_recovers(
    admin, sandbox, db, monkeypatch
):
    """The start's answer is lost and the batch summary answers 503 past the client's retries:
    the error names the start first; Prefect's retry then reconciles and adopts, once."""
    monkeypatch.setattr(job_tasks.start_or_reconnect, "retry_delay_seconds", [0.01] * 3)
    RuntypeCredentials(
        api_key=sandbox.api_key, base_url=sandbox.base_url, max_attempts=2, retry_base_delay=0.01
    ).save("brittle", overwrite=True)
    flow = admin.flow_for("ticket")
    admin.script(
        {"kind": "drop", "method": "POST", "path_prefix": "/v1/flows"},
        # The first summary read is the check that the night did not run elsewhere.
        {"kind": "pass", "path_prefix": "/v1/batch/summary"},
        {"kind": "status", "status": 503, "path_prefix": "/v1/batch/summary", "times": 2},
    )
    seen: list[str] = []
    real = job_tasks.retry_if_transient

    def record(task, task_run, state):
        seen.append(str(state.result(raise_on_failure=False)))
        return real(task, task_run, state)

    monkeypatch.setattr(job_tasks.start_or_reconnect, "retry_condition_fn", record)
    result = run_record_type(
        flow_id=flow,
        record_type="ticket",
        run_key="2026-11-27",
        settings=job_settings(db, fast=True, credentials_block="brittle", preflight=False),
    )
    assert seen and seen[0].startswith(f"starting flow {flow!r} on record type 'ticket' failed")
    assert "looking for the batch in the batch summary failed too (ServerError" in seen[0]
    (truth,) = admin.stats()["batches"]
    assert result.batch_id == truth["id"] and result.records == 250
    assert admin.stats()["runsStarted"] == 1


def test_a_forced_rerun_replaces_its_night_and_every_surface_counts_the_night_once(
    admin, client, db
):
    """``force`` starts a second batch for a night already landed: the night's counts on every
    per-job-night surface (the gate's input, the nightly and record-type summaries, the KPIs,
    freshness) are the sandbox's record counts, not twice them; the first batch stays in
    ``batch_runs`` as history."""
    from runtype_prefect.analytics import connect

    night = "2026-10-14"
    types = ("vip_account", "customer")  # an immediate run (≤ 10 records) and a deferred one
    jobs = [Job(flow_id=admin.flow_for(t), record_type=t) for t in types]
    truth = {t: client.count_records(t).count for t in types}
    admin.clock(now=f"{night}T02:00:00Z")
    nightly(jobs=jobs, run_key=night, settings=job_settings(db, fast=True))
    admin.clock(now=f"{night}T09:00:00Z")
    nightly(jobs=jobs, run_key=night, settings=job_settings(db, fast=True, force=True))

    started = [b for b in admin.stats()["batches"] if b["recordType"] in types]
    assert len(started) == 4  # each job ran twice: the sandbox counts immediate runs too
    with Warehouse(db) as w:
        batches = w.query(
            "SELECT record_type, count(*), count(*) FILTER (WHERE is_current)"
            " FROM batch_runs GROUP BY 1 ORDER BY 1"
        )
        assert batches == [(t, 2, 1) for t in sorted(types)]  # the earlier one: history
        job_nights = dict(w.query("SELECT record_type, records FROM job_nights"))
        verdicts = dict(
            w.query("SELECT record_type, max(records) FROM quality_verdicts GROUP BY 1")
        )
        type_nights = dict(w.query("SELECT record_type, records FROM record_type_nights"))
        (nightly_row,) = w.query("SELECT batches, records FROM nightly_runs")
        (fresh,) = w.query("SELECT batches, records FROM freshness")
        [(kpis,)] = w.query("SELECT records_per_night FROM period_kpis(NULL, NULL, NULL)")
        steps = w.query(
            "SELECT count(*) FROM step_facts f JOIN batch_nights n"
            " ON n.batch_id = f.batch_execution_id WHERE NOT n.is_current"
        )
    assert job_nights == truth
    assert verdicts == truth  # the gate judged the night's records, once
    assert type_nights == truth
    assert nightly_row == (2, sum(truth.values()))
    assert fresh == (2, sum(truth.values()))
    assert kpis == sum(truth.values())
    assert steps == [(0,)]
    with connect(db) as con:  # the analysts' snapshot reads the same models
        published = dict(con.execute("SELECT record_type, records FROM job_nights").fetchall())
    assert published == truth
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    named = FlowRunFilter(name=FlowRunFilterName(any_=[f"nightly · {night}"]))
    with get_client(sync_client=True) as prefect:  # the UI names each run after its night
        assert len(prefect.read_flow_runs(flow_run_filter=named)) == 2


def test_a_night_landed_into_another_warehouse_is_not_paid_for_again(admin, client, tmp_path):
    """A run pointed at a new warehouse (a mistyped --db) for a night the API shows as run
    starts nothing and names the batch; adopting it lands that batch here without a new one;
    only ``force`` pays again."""
    from runtype_prefect.engine.starting import adopt_batch

    night = "2026-11-25"
    job = Job(flow_id=admin.flow_for("customer"), record_type="customer")
    real, typo = str(tmp_path / "real.duckdb"), str(tmp_path / "typo.duckdb")
    admin.clock(now=f"{night}T02:00:00Z")
    nightly(jobs=[job], run_key=night, settings=job_settings(real, fast=True))
    (batch,) = [b["id"] for b in admin.stats()["batches"]]

    admin.clock(now=f"{night}T10:00:00Z")  # the same night, later, into another file
    state = nightly(
        jobs=[job], run_key=night, return_state=True, settings=job_settings(typo, fast=True)
    )
    (refused,) = state.result(raise_on_failure=False)
    assert state.is_failed() and refused.outcome is Outcome.ERROR
    assert "NightAlreadyRunError" in refused.message and batch in refused.message
    assert "runtype-prefect adopt" in refused.message and "--force" in refused.message
    assert admin.stats()["runsStarted"] == 1  # nothing was started, nothing paid

    with Warehouse(typo) as w:
        adopt_batch(client, w, job, night, batch)
    (adopted,) = nightly(jobs=[job], run_key=night, settings=job_settings(typo, fast=True))
    assert adopted.batch_id == batch and adopted.records == 40
    assert admin.stats()["runsStarted"] == 1

    other = str(tmp_path / "other.duckdb")
    (forced,) = nightly(
        jobs=[job], run_key=night, settings=job_settings(other, fast=True, force=True)
    )
    assert forced.batch_id != batch and admin.stats()["runsStarted"] == 2
