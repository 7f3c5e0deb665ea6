"""Deployments: prefect.yaml validated against the flows, serve.py, setup, backfill, and one
end-to-end run on a real Prefect server with a process worker (marked ``e2e``)."""

from __future__ import annotations

import inspect
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
import yaml
from helpers import job_settings, read_lines, undo_setup, wait_for
from prefect.client.schemas.schedules import CronSchedule
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from prefect.utilities.importtools import import_object
from pydantic import BaseModel

from runtype_prefect.cli.processes import free_port
from runtype_prefect.cli.stack import ensure_port_free
from runtype_prefect.client.sandbox_control import NotASandboxError
from runtype_prefect.engine.jobs import load_jobs
from runtype_prefect.engine.settings import JobSettings, Mode
from runtype_prefect.orchestration.provisioning import WORK_POOL
from runtype_prefect.warehouse import Warehouse

ROOT = Path(__file__).parents[1]
PREFECT_YAML = ROOT / "deployments" / "prefect.yaml"
SPECS = yaml.safe_load(PREFECT_YAML.read_text())["deployments"]


def by_name(name: str) -> dict:
    return next(s for s in SPECS if s["name"] == name)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["name"])
def test_each_deployment_matches_its_flow(spec):
    flow = import_object(spec["entrypoint"])
    signature = inspect.signature(flow.fn)
    given = spec.get("parameters") or {}
    assert set(given) <= set(signature.parameters), (
        f"unknown parameters {set(given) - set(signature.parameters)}"
    )
    assert spec["work_pool"]["name"] == WORK_POOL
    for schedule in spec.get("schedules") or []:
        CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])  # raises if invalid
        missing = [
            n
            for n, p in signature.parameters.items()
            if p.default is inspect.Parameter.empty and n not in given
        ]
        assert not missing, f"a scheduled run would lack {missing}"
        # A schedule's parameters replace the deployment's by name (a shallow merge): each
        # must be whole and valid on its own.
        for name, value in (schedule.get("parameters") or {}).items():
            assert name in signature.parameters
            annotation = signature.parameters[name].annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                assert annotation.model_validate(value) == annotation.model_validate(
                    {**given.get(name, {}), **value}
                ), f"the schedule's {name} drops fields the deployment sets"
    for trigger in spec.get("triggers") or []:
        parsed = DeploymentEventTrigger(**trigger)
        assert set(parsed.parameters or {}) <= set(signature.parameters)
    if "jobs_file" in given:
        assert load_jobs(ROOT / given["jobs_file"])


def test_nightly_is_scheduled_and_never_overlaps_itself():
    nightly = by_name("nightly")
    assert nightly["concurrency_limit"] == 1
    assert [s["cron"] for s in nightly["schedules"]] == ["0 2 * * 1-6", "0 2 * * 0"]
    weekly = nightly["schedules"][1]["parameters"]["settings"]
    assert JobSettings.model_validate(weekly).mode is Mode.FULL, "Sundays run every record"
    assert "mode" not in nightly["parameters"]["settings"], "other nights: each job's own mode"
    quality = by_name("quality-followup")
    assert quality["triggers"][0]["expect"] == ["runtype.quality.degraded"]


def test_jobs_file_names_the_sandbox_flows(sandbox):
    world = sandbox.app.state.sandbox.world
    expected = {(f.id, f.intended_record_type) for f in world.flows.values()}
    assert {
        (j.flow_id, j.record_type) for j in load_jobs(ROOT / "deployments/jobs.yaml")
    } == expected


def test_serve_builds_the_same_deployments():
    sys.path.insert(0, str(ROOT / "deployments"))
    try:
        from serve import build_deployments
    finally:
        sys.path.pop(0)
    built = {d.name: d for d in build_deployments(PREFECT_YAML)}
    assert set(built) == {f"{s['name']}-served" for s in SPECS}
    nightly = built["nightly-served"]
    assert nightly.parameters == by_name("nightly")["parameters"]
    assert nightly.concurrency_limit == 1
    assert nightly.schedules[0].schedule.cron == "0 2 * * 1-6"
    assert nightly.schedules[1].parameters == by_name("nightly")["schedules"][1]["parameters"]
    assert len(built["quality-followup-served"].triggers) == 1


@pytest.mark.usefixtures("prefect_api")
def test_setup_is_idempotent():
    from prefect.client.orchestration import get_client

    from runtype_prefect.orchestration.provisioning import run_setup

    try:
        first = run_setup()
        second = run_setup()
        assert "work pool runtype-process (process): created" in first
        assert "work pool runtype-process (process): exists" in second
        assert "global concurrency limit runtype-api: updated" in second
        with get_client(sync_client=True) as client:
            assert client.read_global_concurrency_limit_by_name("runtype-batches").limit == 4
            assert client.read_work_pool(WORK_POOL).type == "process"
    finally:
        undo_setup()


@pytest.mark.usefixtures("prefect_api", "runtype_env")
def test_backfill_lands_each_night_with_its_own_date(admin, tmp_path):
    from runtype_prefect.engine.jobs import Job
    from runtype_prefect.rehearsal.backfill import backfill

    db = str(tmp_path / "backfill.duckdb")
    jobs = [Job(flow_id=admin.flow_for("customer"), record_type="customer")]
    results = backfill(
        nights=3,
        jobs=jobs,
        last_night=date(2026, 11, 10),
        settings=job_settings(db, fast=True),
    )
    assert list(results) == ["2026-11-08", "2026-11-09", "2026-11-10"]
    with Warehouse(db) as w:
        nights = w.query("SELECT run_key, CAST(started_at AS DATE) FROM batches ORDER BY 1")
    assert [(k, d.isoformat()) for k, d in nights] == [(n, n) for n in results]


@pytest.mark.usefixtures("prefect_api", "runtype_env")
def test_backfill_ends_failed_naming_the_nights_that_failed(admin, tmp_path):
    """A night that fails whole (here: its jobs file is gone) is not an empty success: the
    backfill ends Failed naming each failed night, with every night's results as its data."""
    from runtype_prefect.rehearsal.backfill import backfill

    state = backfill(
        nights=2,
        jobs_file=str(tmp_path / "jobs.yaml"),
        last_night=date(2026, 11, 10),
        return_state=True,
        settings=job_settings(tmp_path / "backfill.duckdb", fast=True),
    )
    assert state.is_failed()
    assert state.message.startswith("2 of 2 nights failed: 2026-11-09: ")
    assert "2026-11-10: " in state.message and "does not exist" in state.message
    assert state.result(raise_on_failure=False) == {"2026-11-09": [], "2026-11-10": []}
    assert admin.stats()["runsStarted"] == 0


@pytest.mark.usefixtures("prefect_api", "runtype_env")
def test_the_backfill_command_lands_its_nights_into_the_database_it_names(
    admin, sandbox, tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from runtype_prefect.cli.app import app

    # The command points the process at the sandbox through the environment: restored after.
    monkeypatch.setenv("RUNTYPE_DASHBOARD_URL_TEMPLATE", "")
    jobs = tmp_path / "jobs.yaml"
    job = {"flow_id": admin.flow_for("customer"), "record_type": "customer"}
    jobs.write_text(yaml.safe_dump({"jobs": [job]}))
    db = tmp_path / "backfill.duckdb"
    args = ["backfill", "--nights", "1", "--jobs-file", str(jobs), "--db", str(db)]
    done = CliRunner().invoke(app, [*args, "--sandbox-url", sandbox.base_url])
    assert done.exit_code == 0, done.output
    with Warehouse(db) as w:
        assert w.query("SELECT count(*) FROM record_results")[0][0] == 40


@pytest.mark.usefixtures("prefect_api")
def test_backfill_refuses_anything_but_the_sandbox(monkeypatch):
    from runtype_prefect.rehearsal.backfill import backfill

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RUNTYPE_API_KEY", "rt_test_x")
    monkeypatch.setenv("RUNTYPE_BASE_URL", f"http://127.0.0.1:{port}/v1")
    state = backfill(nights=1, jobs_file="deployments/jobs.yaml", return_state=True)
    with pytest.raises(NotASandboxError, match="no sandbox"):
        state.result()


class ServerProcess:
    """``runtype-prefect server`` as an operator runs it: a subprocess whose output we read."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "runtype-prefect"), "server", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        self.lines, self.reader = read_lines(self.proc.stdout)

    def ready(self, timeout: float = 240) -> int:
        """Wait for the ready line; return the children's process group."""
        line = wait_for(
            lambda: (
                next((x for x in self.lines if x.startswith("ready")), None)
                or (self.proc.poll() is not None and AssertionError("".join(self.lines)))
            ),
            "the server to be ready",
            timeout,
        )
        if isinstance(line, AssertionError):
            raise line
        return int(re.search(r"process group (\d+)", line).group(1))


def run_prefect(api_url: str, *args: str, timeout: float = 360) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), *args],
        env={**os.environ, "PREFECT_API_URL": api_url},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return done.stdout


def fire_quality_event(api: str) -> dict:
    """Send ``runtype.quality.degraded`` to the server as the gate does; return the flow run
    the ``quality-followup`` automation creates for it."""
    event = {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": "runtype.quality.degraded",
        "resource": {
            "prefect.resource.id": "runtype.job.flow_x.customer",
            "prefect.resource.name": "Customer Health Summary · customer",
        },
        "payload": {
            "record_type": "customer",
            "metric": "success_rate",
            "current": 0.8,
            "baseline": 0.97,
            "night": "2026-11-15",
        },
    }
    httpx.post(f"{api}/events", json=[event]).raise_for_status()

    def followup_run() -> dict | None:
        runs = httpx.post(
            f"{api}/flow_runs/filter",
            json={"flows": {"name": {"any_": ["runtype-quality-followup"]}}},
        ).json()
        return runs[0] if runs else None

    return wait_for(followup_run, "the quality-followup automation's flow run", timeout=60)


@pytest.mark.e2e
def test_deployments_run_and_cancel_end_to_end_on_a_real_server(admin, sandbox, tmp_path):
    """`runtype-prefect server` (real Prefect server, process worker, deployments) as a
    subprocess: a deployment's run lands every job; cancelling a second run cancels its Runtype
    batches within seconds and frees its slot; SIGTERM then stops every child."""
    db = tmp_path / "e2e.duckdb"
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "RUNTYPE_API_KEY": sandbox.api_key,
    }
    env.pop("PREFECT_API_URL", None)
    server = ServerProcess(
        ["--port", str(port), "--sandbox-url", sandbox.base_url, "--db", str(db)], env
    )
    try:
        group = server.ready()
        assert (tmp_path / "prefect" / "logs" / "prefect-server.log").exists(), "PREFECT_HOME"
        out = run_prefect(
            api,
            "deployment",
            "run",
            "runtype-nightly/nightly",
            "--param",
            "run_key=2026-11-15",
            "--param",
            'settings={"waiting": {"poll_interval_seconds": 0.05}}',
            "--watch",
            "--watch-timeout",
            "300",
        )
        assert "CompletedWithFailures" in out or "Completed" in out
        artifacts = httpx.post(f"{api}/artifacts/filter", json={"limit": 50}).json()
        deployments = httpx.post(f"{api}/deployments/filter", json={}).json()
        flow_runs = httpx.post(f"{api}/flow_runs/filter", json={"limit": 50}).json()
        task_runs = httpx.post(f"{api}/task_runs/filter", json={"limit": 200}).json()
        pages = [
            httpx.get(re.search(r"\((http[^)]+)\)", a["data"]).group(1))
            for a in artifacts
            if a["key"] and a["key"].startswith("runtype-batch-")
        ]
        followup = fire_quality_event(api)

        admin.clock(time_scale=1000.0)  # the next night runs slowly enough to be cancelled
        out = run_prefect(
            api,
            "deployment",
            "run",
            "runtype-nightly/nightly",
            "--param",
            "run_key=2026-11-16",
            "--param",
            'settings={"waiting": {"poll_interval_seconds": 0.1}}',
        )
        run_id = re.search(r"UUID: ([0-9a-f-]{36})", out).group(1)
        wait_for(
            lambda: sum(b["status"] == "queued" for b in admin.stats()["batches"]) >= 3,
            "the deferred batches to start",
        )
        time.sleep(1)  # let the jobs settle into waiting
        run_prefect(api, "flow-run", "cancel", run_id)
        cancelled_at = time.monotonic()
        wait_for(
            lambda: all(
                b["status"] in ("completed", "cancelled") for b in admin.stats()["batches"]
            ),
            "the batches to be cancelled",
            timeout=30,
        )
        to_runtype = time.monotonic() - cancelled_at
        wait_for(
            lambda: httpx.get(f"{api}/flow_runs/{run_id}").json()["state_type"] == "CANCELLED",
            "the nightly run to be Cancelled",
            timeout=60,
        )
        running = httpx.post(
            f"{api}/flow_runs/filter",
            json={"flow_runs": {"state": {"type": {"any_": ["RUNNING", "CANCELLING"]}}}},
        ).json()
        slots = httpx.get(f"{api}/v2/concurrency_limits/runtype-batches").json()["active_slots"]
    finally:
        before_stop = len(server.lines)
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
        stop_started = time.monotonic()
        exit_code = server.proc.wait(timeout=30)
        stopped_in = time.monotonic() - stop_started
    server.reader.join(timeout=10)  # the last lines, up to the end of the output
    stop_output = "".join(server.lines[before_stop:])
    print(
        f"\ncancel → Runtype batches cancelled in {to_runtype:.1f}s;"
        f" SIGTERM → server and children gone in {stopped_in:.1f}s"
    )
    assert to_runtype < 10
    assert running == [], "no child run is left Running"
    assert slots == 0, "the runtype-batches slot was released"
    assert exit_code == 0 and stopped_in < 10
    assert "Traceback" not in stop_output, stop_output  # the worker stops before the server
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)  # every child of the stack is gone
    ensure_port_free(port, "the Prefect server", "--port")  # free again: nothing listens

    # What the UI shows: a task per job named after it (no subflow per job), red for
    # failures, batch links that open.
    names = {t["name"] for t in task_runs}
    assert {
        "Churn Risk Score · vip_account",
        "Customer Health Summary · customer",
        "Ticket Triage · ticket",
        "Lead Enrichment · lead",
    } <= names
    assert not names & {r["name"] for r in flow_runs}, "jobs are tasks of the nightly run"
    assert {"start · Lead Enrichment · lead", "land · Lead Enrichment · lead"} <= {
        t["name"] for t in task_runs
    }
    assert len(pages) == 4 and all(p.status_code == 200 for p in pages)
    assert all("text/html" in p.headers["content-type"] for p in pages)
    assert any("Lead Enrichment · lead" in p.text for p in pages)
    assert followup["state"]["type"] in ("SCHEDULED", "PENDING", "RUNNING", "COMPLETED")
    assert followup["parameters"]["record_type"] == "customer"
    keys = {a["key"] for a in artifacts}
    assert "runtype-nightly-summary" in keys
    assert {k for k in keys if k.startswith("runtype-job-")} == {
        "runtype-job-churn-risk-score",
        "runtype-job-customer-health-summary",
        "runtype-job-ticket-triage",
        "runtype-job-lead-enrichment",
    }
    nightly = next(d for d in deployments if d["name"] == "nightly")
    schedules = {s["schedule"]["cron"]: s for s in nightly["schedules"]}
    assert set(schedules) == {"0 2 * * 1-6", "0 2 * * 0"}
    assert schedules["0 2 * * 0"]["parameters"]["settings"]["mode"] == "full"
    with Warehouse(db) as w:
        first = w.query(
            "SELECT r.record_type, count(*) FROM record_results r JOIN batches b"
            " USING (batch_id) WHERE run_key = '2026-11-15' GROUP BY 1 ORDER BY 1"
        )
        second = w.query(
            "SELECT record_type, outcome, landed_at IS NULL FROM batches"
            " WHERE run_key = '2026-11-16' AND executed_immediately IS NOT TRUE ORDER BY 1"
        )
    assert first == [("customer", 40), ("lead", 1200), ("ticket", 250), ("vip_account", 6)]
    assert second == [
        ("customer", "cancelled", True),
        ("lead", "cancelled", True),
        ("ticket", "cancelled", True),
    ]
    assert sum(b["status"] == "cancelled" for b in admin.stats()["batches"]) == 3
    assert admin.stats()["runsStarted"] == 8, "no batch was started twice"


def test_the_cli_answers_without_a_server():
    done = subprocess.run(
        [sys.executable, "-m", "runtype_prefect", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    listed = set(re.findall(r"^│ ([a-z]+) ", done.stdout, re.MULTILINE))  # the Commands panel
    assert listed == {
        "sandbox",
        "demo",
        "run",
        "repair",
        "setup",
        "backfill",
        "server",
        "report",
        "pull",
        "adopt",
        "doctor",
    }
