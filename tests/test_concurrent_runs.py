"""Several runs on one warehouse at once, each in its own process as operators start them (a
scheduled nightly, on-demand runs from the UI): they take turns for the DuckDB file instead of
failing, say who they wait for, and land every batch once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import read_lines, wait_for, worker_environ

from runtype_prefect.warehouse import Warehouse

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_api")]

WORKER = Path(__file__).with_name("run_worker.py")
NIGHT = "2026-11-26"


class Run:
    """A run's process, its stdout (the final JSON line) and its log lines read as they come."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        assert process.stderr is not None
        self.logs, self._reader = read_lines(process.stderr)

    def waiting(self) -> bool:
        """True once the run said it waits for the warehouse."""
        return any("waiting for the warehouse" in line for line in self.logs)

    def finish(self) -> dict:
        out, _ = self.process.communicate(timeout=240)
        self._reader.join(timeout=10)
        return json.loads(out.splitlines()[-1])


def start_run(kind: str, db: Path, jobs: list[dict[str, str]], sandbox, tmp_path: Path) -> Run:
    env = worker_environ(sandbox, tmp_path)
    return Run(
        subprocess.Popen(
            [sys.executable, str(WORKER), kind, str(db), NIGHT, json.dumps(jobs)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )


def test_a_nightly_and_two_on_demand_runs_on_one_warehouse_take_turns_and_all_land(
    sandbox, admin, tmp_path
):
    db = tmp_path / "runtype.duckdb"
    job = {
        t: {"flow_id": admin.flow_for(t), "record_type": t} for t in admin.stats()["recordTypes"]
    }
    admin.clock(now=f"{NIGHT}T02:00:00Z", time_scale=0.002)  # batches take a few seconds
    holder = Warehouse(db, holder="a notebook of the test")  # the file is held as the runs start
    runs = [
        start_run("nightly", db, [job["customer"], job["ticket"]], sandbox, tmp_path),
        start_run("on-demand", db, [job["lead"]], sandbox, tmp_path),
        start_run("on-demand", db, [job["vip_account"]], sandbox, tmp_path),
    ]
    try:
        wait_for(lambda: all(run.waiting() for run in runs), "every run to wait", timeout=120)
        # Held longer than a preflight used to wait for a locked file (5 s) before failing.
        time.sleep(6)
        assert all(run.process.poll() is None for run in runs), "a run gave up waiting"
        assert admin.stats()["runsStarted"] == 0  # nothing started while the file was held
    finally:
        holder.close()
    finals = [run.finish() for run in runs]
    assert all(f["state"] in ("Completed", "CompletedWithFailures") for f in finals), finals
    logs = "".join(line for run in runs for line in run.logs)
    # Each run said, in its logs (the UI), what it waited for.
    assert all("held by a notebook of the test" in "".join(run.logs) for run in runs)
    assert "Traceback" not in logs, logs[-3000:]

    truth = {b["id"]: b["totalRecords"] for b in admin.stats()["batches"]}
    assert len(truth) == 4  # one batch per job: nothing started twice
    with Warehouse(db) as w:
        landed = dict(
            w.query("SELECT batch_id, records FROM batch_runs WHERE landed_at IS NOT NULL")
        )
        intents = w.query("SELECT count(*), count(batch_id) FROM run_intents")
    assert len(landed) == 4 and intents == [(4, 4)]
    assert sorted(landed.values()) == sorted(truth.values())
