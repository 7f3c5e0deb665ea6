"""The shared warehouse (issue 13): Delta tables and a put-if-absent run ledger on an
S3-compatible server (moto, over loopback), workers in separate processes racing for the same
job-nights against the sandbox, a worker killed mid-landing, and the sandbox's ground truth."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.compute as pc
import pytest
from helpers import job_settings, latest_preflight_markdown, wait_for, worker_environ
from typer.testing import CliRunner

from runtype_prefect.analytics import connect as analytics_connect
from runtype_prefect.cli import app
from runtype_prefect.engine.settings import NightSettings
from runtype_prefect.warehouse import (
    BatchIdentityError,
    JobKey,
    Selection,
    SharedWarehouse,
    StartTakenError,
    WarehouseError,
)
from runtype_prefect.warehouse.shared import (
    DeltaTables,
    ObjectLedger,
    SharedLocation,
    object_store,
)
from runtype_prefect.warehouse.shared.ledger import ROOT
from runtype_prefect.warehouse.shared.objects import LocalObjects

BUCKET = "runtype-shared"
WORKER = Path(__file__).with_name("shared_worker.py")
NIGHTS = ("2026-11-20", "2026-11-21", "2026-11-22")
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def s3_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    """An S3-compatible server on loopback (moto's server mode, in its own process: delta-rs
    holds the GIL while it waits on a request, so a server thread in this process would starve)
    with one bucket; the AWS variables that point delta-rs and boto3 at it."""
    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path_factory.mktemp("moto") / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    try:
        wait_for(lambda: _listening(port), "moto's S3 server", timeout=60)
        s3.create_bucket(Bucket=BUCKET)
        yield env
    finally:
        server.terminate()
        server.wait()
        log.close()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def s3(s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    return s3_env


def _url(name: str) -> str:
    return f"s3://{BUCKET}/{name}-{time.time_ns()}"


def _jobs(admin) -> list[dict[str, str]]:
    return [
        {"flow_id": f["id"], "record_type": f["recordType"], "name": f["name"]}
        for f in admin.stats()["flows"]
    ]


def _worker(url: str, jobs: list[dict[str, str]], env: dict[str, str], sandbox, tmp_path: Path):
    environ = worker_environ(sandbox, tmp_path, **env)
    return subprocess.Popen(
        [sys.executable, str(WORKER), url, json.dumps(jobs)],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen, timeout: float = 240.0) -> list[dict]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _assert_exactly_once(url: str, truth: list[dict]) -> None:
    """Every record and step result of every batch the sandbox ran is in the shared tables
    once, and the shared batches table holds each batch once, landed."""
    tables = DeltaTables(SharedLocation.parse(url))
    steps = tables.read("step_results")
    records = tables.read("record_results")
    batches = tables.read("batches")
    assert steps is not None and records is not None and batches is not None
    assert pc.count_distinct(steps["id"]).as_py() == steps.num_rows
    keys = pc.binary_join_element_wise(records["batch_id"], records["record_id"], "/")
    assert pc.count_distinct(keys).as_py() == records.num_rows
    step_counts = Counter(steps["batch_execution_id"].to_pylist())
    record_counts = Counter(records["batch_id"].to_pylist())
    for batch in truth:
        assert step_counts[batch["id"]] == batch["stepResults"], batch["id"]
        assert record_counts[batch["id"]] == batch["totalRecords"], batch["id"]
    assert sorted(batches["batch_id"].to_pylist()) == sorted(b["id"] for b in truth)
    assert all(v is not None for v in batches["landed_at"].to_pylist())
    assert set(step_counts) == {b["id"] for b in truth}


def test_three_workers_racing_for_twelve_job_nights_start_and_land_each_exactly_once(
    prefect_api, sandbox, admin, s3, tmp_path
):
    """Three worker processes each run all 12 job-nights (4 jobs × 3 nights), in rotated
    orders, so every job-night is raced by three workers at once: one batch each, every result
    once, and the analysts' pull and models see the same numbers."""
    url = _url("race")
    job_nights = [{**job, "run_key": night} for night in NIGHTS for job in _jobs(admin)]
    workers = [
        _worker(url, job_nights[4 * i :] + job_nights[: 4 * i], s3, sandbox, tmp_path)
        for i in range(3)
    ]
    outputs = [_finish(w) for w in workers]

    truth = admin.stats()["batches"]
    per_type = Counter(b["recordType"] for b in truth)
    assert len(truth) == 12 and set(per_type.values()) == {3}, per_type
    for lines in outputs:
        assert len(lines) == 12
        states = {
            (line["record_type"], line["run_key"]): (line["state"], line["message"])
            for line in lines
        }
        assert {s for s, _ in states.values()} <= {"Completed", "CompletedWithFailures"}, states
    # Every worker's run of a job-night names the same batch: the race had one winner.
    for night in NIGHTS:
        for job in _jobs(admin):
            named = {
                line["batch_id"]
                for lines in outputs
                for line in lines
                if line["run_key"] == night and line["record_type"] == job["record_type"]
            }
            assert len(named) == 1, (night, job, named)
    _assert_exactly_once(url, truth)
    ledger = ObjectLedger(object_store(SharedLocation.parse(url)), "reader")
    intents = [k for k in ledger.store.keys(f"{ROOT}/") if k.endswith(".intent.json")]
    assert len(intents) == 12 and all(k.endswith("000001.intent.json") for k in intents)

    # The analysts' side: `runtype-prefect pull` into a local file, then the same models.
    local = tmp_path / "analytics.duckdb"
    runner = CliRunner()
    first = runner.invoke(app, ["pull", "--from", url, "--db", str(local)])
    again = runner.invoke(app, ["pull", "--from", url, "--db", str(local)])
    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    assert "pulled 12 newly landed of 12 batches" in " ".join(first.output.split())
    assert "pulled 0 newly landed of 12 batches" in " ".join(again.output.split())
    with analytics_connect(local) as con:
        rows = con.execute("SELECT batch_id, records FROM batch_runs ORDER BY batch_id").fetchall()
        steps = con.execute("SELECT sum(executions) FROM step_performance").fetchone()
        dimension = con.execute(
            "SELECT record_type, count(*) FROM records GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        listings = con.execute("SELECT count(*) FROM record_listings").fetchone()
    assert rows == sorted((b["id"], b["totalRecords"]) for b in truth)
    assert steps == (sum(b["stepResults"] for b in truth),)
    # The records dimension: every record of every type once, one listing per type and night.
    assert dimension == sorted(admin.stats()["recordTypes"].items())
    assert listings == (12,)


def test_a_worker_killed_mid_landing_leaves_a_rerun_on_another_worker_exactly_once(
    prefect_api, sandbox, admin, s3, tmp_path
):
    url = _url("kill")
    lead = next(j for j in _jobs(admin) if j["record_type"] == "lead")
    job = [{**lead, "run_key": NIGHTS[0]}]
    admin.faults(latency_ms=150)  # ~70 pages of results: landing takes ~10 s
    ledger = ObjectLedger(object_store(SharedLocation.parse(url)), "observer")
    victim = _worker(url, job, s3, sandbox, tmp_path)
    try:
        wait_for(
            lambda: (
                (a := ledger.latest(JobKey(lead["flow_id"], "lead", NIGHTS[0])))
                and a.intent.batch_id
            ),
            "the worker to name its batch",
            timeout=120,
        )
        time.sleep(2.0)  # into the paging of its results
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    assert DeltaTables(SharedLocation.parse(url)).read("step_results") is None, "landed already"
    admin.faults()

    (line,) = _finish(_worker(url, job, s3, sandbox, tmp_path))

    truth = admin.stats()["batches"]
    assert len(truth) == 1 and line["batch_id"] == truth[0]["id"]
    assert line["state"] in ("Completed", "CompletedWithFailures")
    _assert_exactly_once(url, truth)


def test_the_ledger_lets_one_of_two_workers_claim_a_start_and_name_its_batch(s3):
    location = SharedLocation.parse(_url("ledger"))
    now = datetime.now(UTC)
    first, second = (ObjectLedger(object_store(location), owner) for owner in ("a", "b"))
    claim = {
        "requested_at": now,
        "prefect_flow_run_id": None,
        "job_name": "job",
        "api_requested_at": None,
        "expected_records": 3,
    }
    first.claim_start(JobKey("flow", "lead", "2026-11-20"), after=0, **claim)
    with pytest.raises(StartTakenError, match="another worker claimed the start"):
        second.claim_start(JobKey("flow", "lead", "2026-11-20"), after=0, **claim)
    first.name_batch(JobKey("flow", "lead", "2026-11-20"), "batch_1")
    first.name_batch(JobKey("flow", "lead", "2026-11-20"), "batch_1")  # idempotent
    with pytest.raises(BatchIdentityError, match="already became batch 'batch_1'"):
        second.name_batch(JobKey("flow", "lead", "2026-11-20"), "batch_2")
    attempt = second.latest(JobKey("flow", "lead", "2026-11-20"))
    assert attempt is not None and attempt.intent.batch_id == "batch_1" and attempt.owner == "a"
    assert attempt.intent.expected_records == 3

    second.forget(JobKey("flow", "lead", "2026-11-20"))
    with pytest.raises(StartTakenError):  # it saw no attempt, but there is one
        second.claim_start(JobKey("flow", "lead", "2026-11-20"), after=0, **claim)
    second.claim_start(JobKey("flow", "lead", "2026-11-20"), after=1, **claim)  # a new attempt
    attempt = first.latest(JobKey("flow", "lead", "2026-11-20"))
    assert attempt is not None and (attempt.number, attempt.owner) == (2, "b")
    assert attempt.intent.batch_id is None
    assert first.batch_ids() == {"batch_1"}


def test_a_directory_store_creates_each_key_once(tmp_path):
    store = LocalObjects(tmp_path)
    assert store.create("a/b.json", b"1") and not store.create("a/b.json", b"2")
    assert store.read("a/b.json") == b"1" and store.read("a/c.json") is None
    assert store.keys("a/") == ["a/b.json"]


def test_parts_of_a_night_are_starts_of_their_own_on_the_shared_ledger(tmp_path):
    """A part's attempts live beside the whole-type run's, never inside its folder; and a
    choice of records is refused (it lives in one warehouse file), naming the way out."""
    url = f"file://{tmp_path}/shared"
    ledger = ObjectLedger(object_store(SharedLocation.parse(url)), "me")
    now = datetime.now(UTC)
    whole, part = JobKey("flow", "lead", "k"), JobKey("flow", "lead", "k", "incremental 1/2")
    for key, batch in ((whole, "batch_1"), (part, "batch_2")):
        ledger.claim_start(
            key, after=0, requested_at=now, prefect_flow_run_id=None, job_name=None,
        )  # fmt: skip
        ledger.name_batch(key, batch)
    assert ledger.latest(whole).intent.batch_id == "batch_1"
    latest = ledger.latest(part)
    assert latest.intent.batch_id == "batch_2" and latest.intent.part == "incremental 1/2"
    assert latest.intent.key == part and ledger.intent_of(part, "batch_2") == latest.intent
    with SharedWarehouse(url) as shared, pytest.raises(WarehouseError, match="mode 'full'"):
        shared.fix_selection(
            Selection("flow", "lead", "k", "incremental", False, ("r1",), {}, 1, "h", now)
        )


def test_a_worker_waits_for_another_workers_start_to_name_its_batch(tmp_path):
    """While another live worker holds a start without a batch, get_intent waits (through the
    injected sleep), then follows the batch it names."""
    url = f"file://{tmp_path}/shared"
    now = datetime.now(UTC)
    other = ObjectLedger(object_store(SharedLocation.parse(url)), "other")
    other.claim_start(
        JobKey("flow", "lead", "k"), after=0, requested_at=now, prefect_flow_run_id=None,
        job_name=None, api_requested_at=None, expected_records=None,
    )  # fmt: skip
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            other.name_batch(JobKey("flow", "lead", "k"), "batch_9")

    with SharedWarehouse(url, sleep=sleep, clock=lambda: now + timedelta(seconds=5)) as shared:
        intent = shared.get_intent(JobKey("flow", "lead", "k"))
    assert intent is not None and intent.batch_id == "batch_9" and len(waits) == 3

    # A start older than the lease is abandoned: returned at once, for reconciliation.
    other.forget(JobKey("flow", "lead", "k"))
    other.claim_start(
        JobKey("flow", "lead", "k"), after=1, requested_at=now, prefect_flow_run_id=None,
        job_name=None, api_requested_at=None, expected_records=None,
    )  # fmt: skip
    late = now + timedelta(hours=1)
    with SharedWarehouse(url, sleep=sleep, clock=lambda: late) as shared:
        intent = shared.get_intent(JobKey("flow", "lead", "k"))
    assert intent is not None and intent.batch_id is None and len(waits) == 3


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("s3:///prefix", "names no bucket"),
        ("file://relative/path", "not file:///absolute/path"),
        ("gs://bucket/x", "not a shared warehouse location"),
    ],
)
def test_a_bad_location_is_named(url, problem):
    with pytest.raises(ValueError, match=problem):
        SharedLocation.parse(url)


def test_the_preflight_checks_that_a_shared_location_answers(s3):
    from runtype_prefect.engine.preflight import PreflightReport, check_warehouse

    good, bad = PreflightReport("k"), PreflightReport("k")
    assert check_warehouse(good, f"s3://{BUCKET}/nightly")
    assert not check_warehouse(bad, "s3://no-such-bucket/nightly")
    assert good.findings[0].message == f"s3://{BUCKET}/nightly (shared) answers"
    (problem,) = bad.problems()
    assert "s3://no-such-bucket" in problem and "credentials" in problem


def test_a_nightly_dispatches_its_jobs_to_the_pool_and_summarises_from_the_shared_tables(
    prefect_api, sandbox, admin, s3, tmp_path, monkeypatch
):
    """The nightly with ``dispatch_deployment``: each job a flow run of the on-demand
    deployment, run by a separate serving process (a worker of the pool); the night's results
    come back from the shared tables, one batch per job, every result once."""
    from prefect.client.orchestration import get_client

    from runtype_prefect.engine.jobs import Job
    from runtype_prefect.flows import nightly
    from runtype_prefect.orchestration.dispatch import ON_DEMAND_DEPLOYMENT

    url = _url("dispatch")
    serve = "from runtype_prefect.flows import run_record_type as f; f.serve(name='on-demand')"
    environ = worker_environ(sandbox, tmp_path, **s3) | {"PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    pool = subprocess.Popen(
        [sys.executable, "-c", serve],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with get_client(sync_client=True) as client:
            wait_for(
                lambda: _deployment_exists(client, ON_DEMAND_DEPLOYMENT),
                "the served on-demand deployment",
                timeout=120,
            )
        monkeypatch.setenv("RUNTYPE_API_KEY", sandbox.api_key)
        monkeypatch.setenv("RUNTYPE_BASE_URL", sandbox.base_url)
        jobs = [
            Job(flow_id=j["flow_id"], record_type=j["record_type"], name=j["name"])
            for j in _jobs(admin)
        ]
        results = [
            nightly(
                jobs=jobs,
                run_key=night,
                settings=job_settings(url, waiting={"poll_interval_seconds": 0.05}),
                night=NightSettings(dispatch_deployment=ON_DEMAND_DEPLOYMENT),
            )
            for night in NIGHTS[:2]
        ]
    finally:
        pool.terminate()
        pool.wait(timeout=30)

    truth = {b["id"]: b for b in admin.stats()["batches"]}
    landed = [r for night in results for r in night]
    assert len(truth) == 8 and {r.batch_id for r in landed} == set(truth)
    for result in landed:
        assert result.records == truth[result.batch_id]["totalRecords"]
        assert result.outcome.value in ("completed", "completed_with_failures")
    _assert_exactly_once(url, list(truth.values()))
    # Each night's gate ran on the shared history: the second night was judged against the
    # first, and both nights' verdicts are shared. So did its preflight's cost forecasts.
    verdicts = DeltaTables(SharedLocation.parse(url)).read("quality_verdicts")
    assert verdicts is not None
    assert {str(n) for n in verdicts["night"].to_pylist()} == set(NIGHTS[:2])
    second = [v for v in verdicts.to_pylist() if str(v["night"]) == NIGHTS[1]]
    assert second and all(v["baseline_nights"] == 1 for v in second), second
    preflight = latest_preflight_markdown()  # the second night's
    assert "no forecast" not in preflight and "over 1 night)" in preflight, preflight


def _deployment_exists(client, name: str) -> bool:
    from prefect.exceptions import ObjectNotFound

    try:
        client.read_deployment_by_name(name)
    except ObjectNotFound:
        return False
    return True


def test_dispatching_into_a_local_duckdb_file_is_refused_before_anything_starts(tmp_path):
    from runtype_prefect.orchestration.dispatch import check_dispatchable

    with pytest.raises(ValueError, match="needs a shared warehouse"):
        check_dispatchable(str(tmp_path / "runtype.duckdb"))
    check_dispatchable(f"file://{tmp_path}/shared")


def test_a_nightly_in_one_process_lands_its_concurrent_jobs_into_the_shared_tables(
    prefect_api, sandbox, admin, tmp_path, monkeypatch
):
    """The default, in-process nightly on a shared location (a directory here): its four jobs
    run concurrently in threads sharing one `SharedWarehouse`; each batch lands once."""
    from runtype_prefect.engine.jobs import Job
    from runtype_prefect.flows import nightly

    monkeypatch.setenv("RUNTYPE_API_KEY", sandbox.api_key)
    monkeypatch.setenv("RUNTYPE_BASE_URL", sandbox.base_url)
    url = f"file://{tmp_path}/shared"
    jobs = [Job(flow_id=j["flow_id"], record_type=j["record_type"]) for j in _jobs(admin)]
    results = nightly(
        jobs=jobs,
        run_key=NIGHTS[0],
        settings=job_settings(url, waiting={"poll_interval_seconds": 0.05}),
    )

    truth = admin.stats()["batches"]
    assert len(truth) == 4 and {r.batch_id for r in results} == {b["id"] for b in truth}
    _assert_exactly_once(url, truth)


def test_what_a_thread_pulls_stays_in_staging_while_another_threads_claims_reach_the_ledger(
    tmp_path,
):
    """Jobs of one process share a `SharedWarehouse`: one thread writes what it pulls through
    the staging view (never replicated back to the shared tables) while another thread's start
    is claimed and named on the ledger and its batch row reaches the shared tables."""
    import threading

    now = datetime.now(UTC)
    with SharedWarehouse(f"file://{tmp_path}/shared") as shared:
        pulling, release = threading.Event(), threading.Event()

        def pull_slowly() -> None:
            shared.staging.upsert_batch("pulled", flow_id="flow", record_type="lead", status="x")
            pulling.set()
            release.wait(10)
            shared.staging.upsert_batch("pulled", outcome="completed")

        puller = threading.Thread(target=pull_slowly)
        puller.start()
        pulling.wait(10)
        try:
            assert shared.get_intent(JobKey("flow", "lead", "k")) is None
            shared.record_intent(
                JobKey("flow", "lead", "k"),
                requested_at=now,
                prefect_flow_run_id=None,
                job_name="j",
            )
            shared.claim_batch(
                JobKey("flow", "lead", "k"),
                "batch_1",
                requested_at=now,
                job_name="j",
                status="queued",
            )
        finally:
            release.set()
            puller.join()
        attempt = shared.ledger.latest(JobKey("flow", "lead", "k"))
        shared_rows = shared.tables.read("batches")
        assert shared.get_batch("pulled")["outcome"] == "completed"  # in staging
    assert attempt is not None and attempt.intent.batch_id == "batch_1"
    assert shared_rows is not None and shared_rows["batch_id"].to_pylist() == ["batch_1"]
