"""The preflight: every way a night can fail before it spends money, over real HTTP, each
asserting from the sandbox's own counters that no batch was started."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest
from helpers import job_settings, latest_preflight_markdown

from runtype_prefect.client import RuntypeTimeoutError
from runtype_prefect.engine.jobs import Job
from runtype_prefect.engine.settings import NightSettings
from runtype_prefect.flows import nightly, run_record_type
from runtype_prefect.orchestration import Outcome
from runtype_prefect.orchestration.credentials import RuntypeCredentials
from runtype_prefect.warehouse import Warehouse

pytestmark = pytest.mark.usefixtures("prefect_api", "runtype_env")


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "runtype.duckdb")


class SilentServer:
    """A loopback socket that accepts connections and never answers (bounded: it stops with
    the test), counting what it accepted."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def customer_job(admin) -> list[Job]:
    return [Job(flow_id=admin.flow_for("customer"), record_type="customer")]


def test_a_newer_schema_warehouse_is_refused_before_anything_starts(admin, db):
    with Warehouse(db) as w:
        w.query("INSERT INTO schema_migrations VALUES (99, 'from the future', now())")
    before = Path(db).read_bytes()
    state = nightly(
        jobs=customer_job(admin), run_key="k", return_state=True, settings=job_settings(db)
    )
    assert state.is_failed()
    assert "written by a newer runtype-prefect (schema 99;" in state.message
    assert "upgrade runtype-prefect" in state.message
    assert admin.stats()["runsStarted"] == 0
    assert Path(db).read_bytes() == before
    assert "**FAILED** · warehouse: " in latest_preflight_markdown()


def test_a_truncated_warehouse_is_reported_and_never_written_to(admin, db):
    with duckdb.connect(db) as con:  # a warehouse with some weight to it
        con.execute("CREATE TABLE filler AS SELECT range AS i, random() AS r FROM range(500000)")
    size = os.path.getsize(db)
    with open(db, "r+b") as f:
        f.truncate(size * 2 // 3)
    before = Path(db).read_bytes()
    state = nightly(
        jobs=customer_job(admin), run_key="k", return_state=True, settings=job_settings(db)
    )
    assert state.is_failed() and "cannot be read" in state.message
    assert "it was not written to" in state.message
    assert admin.stats()["runsStarted"] == 0
    assert Path(db).read_bytes() == before


def test_a_dead_endpoint_fails_the_night_within_seconds(admin, db, silent, monkeypatch):
    """Before: 676 s and 21 requests to fail one job. The preflight's budget is 12 s a call."""
    monkeypatch.setenv("RUNTYPE_BASE_URL", silent.base_url)
    started = time.monotonic()
    state = nightly(
        jobs=customer_job(admin), run_key="k", return_state=True, settings=job_settings(db)
    )
    elapsed = time.monotonic() - started
    print(f"\ndead endpoint: night failed after {elapsed:.1f}s, {len(silent.accepted)} connections")
    assert state.is_failed() and "cannot reach the Runtype API" in state.message
    assert "timed out: GET" in state.message
    assert elapsed < 20, "the preflight's 12 s budget, plus Prefect's own bookkeeping"
    assert len(silent.accepted) <= 2


def test_a_closed_port_fails_the_night_within_seconds(admin, db, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RUNTYPE_BASE_URL", f"http://127.0.0.1:{port}/v1")
    started = time.monotonic()
    state = nightly(
        jobs=customer_job(admin), run_key="k", return_state=True, settings=job_settings(db)
    )
    elapsed = time.monotonic() - started
    print(f"\nclosed port: night failed after {elapsed:.1f}s")
    assert state.is_failed() and "Connection refused" in state.message
    assert elapsed < 8, "≤ 3 s of retries, plus Prefect's own bookkeeping"


def test_a_dead_endpoint_fails_a_job_within_its_call_budget_naming_the_first_call(
    admin, db, silent
):
    """Without the preflight (the endpoint died mid-night), a job spends one call's budget."""
    RuntypeCredentials(
        api_key="rt_test_x",
        base_url=silent.base_url,
        timeout_seconds=1,
        connect_timeout_seconds=1,
        max_call_seconds=3,
    ).save("silent", overwrite=True)
    started = time.monotonic()
    state = run_record_type(
        flow_id="flow_x",
        record_type="customer",
        run_key="k",
        return_state=True,
        settings=job_settings(db, credentials_block="silent", preflight=False),
    )
    elapsed = time.monotonic() - started
    assert state.is_failed()
    with pytest.raises(RuntypeTimeoutError, match=r"timed out: GET .*/v1/records"):
        state.result()
    assert elapsed < 15, f"one 3 s call budget, not retried by Prefect (took {elapsed:.1f}s)"


def test_quota_that_cannot_fit_refuses_and_near_it_warns(admin, sandbox, db):
    lead = [Job(flow_id=admin.flow_for("lead"), record_type="lead")]
    sandbox.settings.daily_execution_limit = 1000
    try:
        state = nightly(jobs=lead, run_key="k1", return_state=True, settings=job_settings(db))
        assert state.is_failed()
        assert "tonight needs 1,200 executions but the daily quota has 1,000 of 1,000 left" in (
            state.message
        )
        assert admin.stats()["runsStarted"] == 0
        sandbox.settings.daily_execution_limit = 1400
        state = nightly(
            jobs=lead, run_key="k2", return_state=True, settings=job_settings(db, fast=True)
        )
        assert not state.is_failed()
        assert "tonight brings the daily quota to 86% used (1,200 of 1,400)" in (
            latest_preflight_markdown()
        )
    finally:
        sandbox.settings.daily_execution_limit = None


def test_budgets_skip_jobs_whose_forecast_exceeds_them_and_forecasts_are_stored(admin, db):
    jobs = [
        Job(flow_id=admin.flow_for("customer"), record_type="customer"),
        Job(flow_id=admin.flow_for("ticket"), record_type="ticket"),
    ]
    first = nightly(
        jobs=jobs,
        run_key="2026-11-01",
        settings=job_settings(db, fast=True, money={"max_cost_usd": 1e-9}),
    )
    assert [r.outcome.failed for r in first] == [False, False], "no history: no forecast, runs"
    with Warehouse(db) as w:
        cost = {
            t: w.query(
                "SELECT total_cost_usd / total_records FROM batches WHERE record_type = ?", [t]
            )[0][0]
            for t in ("customer", "ticket")
        }
    customer_forecast = cost["customer"] * 40
    # A night budget that admits the first job only; then a job budget that admits neither.
    state = nightly(
        jobs=jobs,
        run_key="2026-11-02",
        return_state=True,
        settings=job_settings(db, fast=True),
        night=NightSettings(max_cost_usd=customer_forecast * 1.5),
    )
    second = state.result()
    assert [r.outcome for r in second][1] is Outcome.OVER_BUDGET
    assert second[0].records == 40 and second[1].batch_id is None
    assert "night budget" in second[1].message
    assert state.name == "CompletedWithFailures"
    assert admin.stats()["runsStarted"] == 3
    third = nightly(
        jobs=jobs,
        run_key="2026-11-03",
        settings=job_settings(db, fast=True, money={"max_cost_usd": 1e-9}),
    )
    assert [r.outcome for r in third] == [Outcome.OVER_BUDGET] * 2
    assert admin.stats()["runsStarted"] == 3
    with Warehouse(db) as w:
        rows = w.query(
            "SELECT run_key, record_type, history_nights, round(forecast_usd, 6), decision"
            " FROM night_forecasts ORDER BY 1, 2"
        )
    assert rows[:2] == [
        ("2026-11-01", "customer", 0, None, "run"),
        ("2026-11-01", "ticket", 0, None, "run"),
    ]
    assert rows[2] == ("2026-11-02", "customer", 1, round(customer_forecast, 6), "run")
    assert rows[3][1:] == ("ticket", 1, round(cost["ticket"] * 250, 6), "over_budget")
    assert [r[4] for r in rows[4:]] == ["over_budget", "over_budget"]


def test_the_sandbox_controls_need_the_key_and_refuse_foreign_hosts_and_sites(sandbox, admin):
    root = sandbox.root_url
    key = {"Authorization": f"Bearer {sandbox.api_key}"}
    assert httpx.post(f"{root}/_sandbox/reset").status_code == 401
    assert httpx.get(f"{root}/_sandbox/stats", headers=key).status_code == 200
    rebound = httpx.get(f"{root}/_sandbox/stats", headers={**key, "Host": "evil.example:80"})
    assert rebound.status_code == 400 and rebound.json()["error"]["code"] == "HOST_NOT_ALLOWED"
    cross = httpx.post(f"{root}/_sandbox/reset", headers={**key, "Origin": "https://evil.example"})
    assert cross.status_code == 403 and cross.json()["error"]["code"] == "CROSS_SITE_REFUSED"
    assert httpx.get(f"{root}/v1/flows", headers={**key, "Host": "evil.example"}).status_code == 400


HOLDERS = {
    # A run of another process writing the file: it names itself.
    "writer": "w = Warehouse(sys.argv[1], holder='a notebook kernel')",
    # A notebook opened on the working database read-only: the read-only check passes, the
    # open for writing does not.
    "reader": "Warehouse(sys.argv[1]).close(); w = duckdb.connect(sys.argv[1], read_only=True)",
}


@pytest.mark.parametrize("kind", sorted(HOLDERS))
def test_a_warehouse_held_past_the_wait_is_one_preflight_line(kind, admin, db, monkeypatch):
    """Another process keeps the file: the run waits its turn, then fails its preflight in one
    line naming the holder, without a traceback; nothing started."""
    import subprocess
    import sys

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, duckdb\n"
            "from runtype_prefect.warehouse import Warehouse\n"
            f"{HOLDERS[kind]}\n"
            "print('held', flush=True)\n"
            "time.sleep(120)\n",
            db,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("RUNTYPE_PREFECT_WAREHOUSE_WAIT_SECONDS", "1")
        state = nightly(
            jobs=customer_job(admin), run_key="k", return_state=True, settings=job_settings(db)
        )
    finally:
        holder.kill()
        holder.wait()
    assert state.is_failed()
    (problem,) = state.message.splitlines()[1:]
    assert (
        problem.startswith("- warehouse: ")
        and f"is held by {'a notebook kernel (' if kind == 'writer' else 'process '}" in problem
    )
    assert "Traceback" not in state.message
    assert admin.stats()["runsStarted"] == 0
