"""Alerts end to end on the session's Prefect server: ``setup`` with a webhook creates the
automations, each trigger happens for real (a degraded night, a job below its floor, a night
that hangs, a night nobody starts), and a webhook receiver started here gets exactly one
message for each, with the fields a person needs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import job_settings, undo_setup, wait_for

from runtype_prefect.engine.jobs import Job
from runtype_prefect.flows import run_record_type
from runtype_prefect.orchestration.automations import (
    TAG,
    NotificationBlockError,
    notification_block_id,
)
from runtype_prefect.orchestration.provisioning import run_setup

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_api")]

#: Late and missed nights in seconds instead of hours (Prefect's shortest for proactive ones).
DEADLINE = timedelta(seconds=10)


class Receiver:
    """A webhook endpoint on loopback that keeps every JSON message POSTed to it."""

    def __init__(self) -> None:
        messages: list[dict] = []
        self.messages = messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                messages.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def about(self, text: str) -> list[dict]:
        """The messages whose subject contains ``text``."""
        return [m for m in list(self.messages) if text in m["subject"]]

    def one(self, text: str, *, settle: float = 3.0) -> dict:
        """Wait for a message about ``text``, then ``settle`` seconds more; return it, failing
        when a second one arrived (the automation must let exactly one through)."""
        wait_for(lambda: self.about(text), f"a message about {text!r}", timeout=60)
        time.sleep(settle)  # a duplicate would arrive within this
        found = self.about(text)
        assert len(found) == 1, [m["subject"] for m in found]
        return found[0]


@pytest.fixture(scope="module")
def receiver(prefect_api) -> Iterator[Receiver]:
    """The webhook receiver, with the alert automations set up to post to it (removed after
    this module with the rest of the setup, so other tests' runs notify nobody and take no
    limit's slots)."""
    hook = Receiver()
    try:
        run_setup(webhook=hook.url, late_after=DEADLINE, missed_after=DEADLINE)
        yield hook
    finally:
        undo_setup()
        hook.server.shutdown()


def _ours() -> list[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return sorted(a.name for a in client.read_automations() if TAG in a.tags)


def test_setup_creates_the_automations_once_and_names_a_bad_block(receiver):
    first = _ours()
    assert first == [
        "runtype · crashed night", "runtype · job failed", "runtype · late night",
        "runtype · missed night", "runtype · quality degraded", "runtype · quota",
    ]  # fmt: skip
    lines = run_setup(webhook=receiver.url, late_after=DEADLINE, missed_after=DEADLINE)
    assert _ours() == first, "run twice, still one of each"
    assert "automation 'runtype · late night': updated" in lines
    with pytest.raises(NotificationBlockError, match="no notification block 'custom-webhook/nope'"):
        notification_block_id("custom-webhook/nope")
    from prefect.blocks.system import Secret

    Secret(value="x").save("not-a-notifier", overwrite=True)
    with pytest.raises(NotificationBlockError, match="cannot send notifications"):
        notification_block_id("secret/not-a-notifier")


def test_a_degraded_night_sends_one_message_naming_the_step(receiver, admin, runtype_env, tmp_path):
    """Five nights of ticket triage land through the real nightly; the last (2026-11-20) is a
    night the sandbox planted an incident on (its api-call step fails 6× as often). The gate
    flags it, names the step, and one message arrives; re-running the night sends none."""
    from runtype_prefect.rehearsal.backfill import backfill

    db = str(tmp_path / "alerts.duckdb")
    jobs = [Job(flow_id=admin.flow_for("ticket"), record_type="ticket", name="Ticket Triage")]
    backfill(
        nights=5, jobs=jobs, last_night=date(2026, 11, 20), settings=job_settings(db, fast=True)
    )
    message = receiver.one("Ticket Triage · ticket success rate degraded on 2026-11-20")
    body = message["body"]
    assert "- Night: 2026-11-20" in body
    assert "- Metric: success rate" in body and "vs" in body and "p=" in body
    assert '- Moved: step "Post to helpdesk" (api-call): failures' in body
    assert "What to do: Compare the night with its baseline" in body
    assert "/runs/flow-run/" in body, "a link to the nightly's flow run"
    # A re-run of the same night (same run key) judges it degraded again: no second message.
    backfill(
        nights=1, jobs=jobs, last_night=date(2026, 11, 20), settings=job_settings(db, fast=True)
    )
    receiver.one("Ticket Triage · ticket success rate degraded on 2026-11-20")


def test_a_job_below_its_floor_sends_one_message(receiver, admin, runtype_env, tmp_path):
    run_record_type(
        flow_id=admin.flow_for("customer"),
        record_type="customer",
        run_key="2026-11-02",
        return_state=True,
        settings=job_settings(
            tmp_path / "floor.duckdb", fast=True, judgement={"min_success_rate": 0.999}
        ),
    )
    body = receiver.one("below_floor on 2026-11-02")["body"]
    assert "- Outcome: below_floor" in body and "- Records: " in body and "succeeded" in body
    assert "What to do: The batch landed in full, but too few records succeeded" in body
    assert "/runs/flow-run/" in body


def _nightly_run(state):
    """A flow run of ``runtype-nightly`` (no worker will ever run it) in ``state``."""
    import uuid

    from prefect.client.orchestration import get_client

    from runtype_prefect.flows import nightly

    name = f"nightly · {state.name.lower()} {uuid.uuid4().hex[:6]}"
    with get_client(sync_client=True) as client:
        return client.create_flow_run(nightly, name=name, state=state)


def test_a_night_that_hangs_one_nobody_starts_and_one_that_dies_each_send_one_message(
    receiver,
):
    """One nightly run is Running and never ends (a hung worker); another is due and never
    starts (no worker); a third crashes (its process killed): each gets its message, once,
    the first two after their deadline."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed, Running, Scheduled

    hung = _nightly_run(Running())
    unstarted = _nightly_run(Scheduled(scheduled_time=datetime.now(UTC) - timedelta(seconds=1)))
    died = _nightly_run(Running())
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(
            died.id, Crashed(message="Process exited with code -9"), force=True
        )
    try:
        crashed = receiver.one(f"crashed night: {died.name}")["body"]
        late = receiver.one(f"late night: {hung.name}")["body"]
        missed = receiver.one(f"missed night: {unstarted.name}")["body"]
    finally:  # other tests look for the server's running flow runs
        with get_client(sync_client=True) as client:
            for run in (hung, unstarted, died):
                client.delete_flow_run(run.id)
    assert "stopped without finishing: Process exited with code -9" in crashed
    assert f"/runs/flow-run/{died.id}" in crashed
    assert not receiver.about(f"late night: {died.name}"), "a crashed run ended: not late"
    assert "has not finished by its deadline" in late and "- State: Running" in late
    assert f"/runs/flow-run/{hung.id}" in late
    assert "has not started" in missed and "- State: Late" in missed
    assert "check that a worker polls the work pool" in missed
    assert f"/runs/flow-run/{unstarted.id}" in missed
    assert not receiver.about(f"missed night: {hung.name}"), "a run that started is not missed"


def test_setup_on_the_command_line_names_a_missing_block_and_changes_nothing(receiver, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from prefect.settings import get_current_settings

    env = {**os.environ, "PREFECT_API_URL": str(get_current_settings().api.url)}
    cli = Path(sys.executable).parent / "runtype-prefect"
    done = subprocess.run(
        [str(cli), "setup", "--notify", "slack-webhook/nobody", "--digest"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: no notification block 'slack-webhook/nobody' on this Prefect server" in (
        " ".join(done.stdout.split())
    )
    assert "runtype · night digest" not in _ours(), "nothing set up from a bad option"


def test_the_digest_replaces_the_per_job_alerts_with_one_message_per_night(
    receiver, admin, runtype_env, tmp_path
):
    """Setup with --digest keeps late, missed and crashed, deletes the per-job automations and
    adds the digest; a night then sends one message with every job in it, and nothing else."""
    from runtype_prefect.flows import nightly

    lines = run_setup(webhook=receiver.url, late_after=DEADLINE, missed_after=DEADLINE, digest=True)
    assert "automation 'runtype · job failed': deleted (no longer asked for)" in lines
    assert _ours() == [
        "runtype · crashed night", "runtype · late night", "runtype · missed night",
        "runtype · night digest",
    ]  # fmt: skip
    jobs = [
        Job(flow_id=admin.flow_for(t), record_type=t, name=n)
        for t, n in (("customer", "Customer Health Summary"), ("vip_account", "Churn Risk Score"))
    ]
    nightly(
        jobs=jobs,
        run_key="2026-11-05",
        return_state=True,  # it ends Failed: one job below its floor
        settings=job_settings(
            tmp_path / "digest.duckdb", fast=True, judgement={"min_success_rate": 0.999}
        ),
    )
    body = receiver.one("night 2026-11-05: ")["body"]
    assert "- Customer Health Summary: below_floor, 40 records" in body
    assert "- Churn Risk Score: completed, 6 records, 100.0% succeeded" in body
    assert not receiver.about("below_floor on 2026-11-05"), "no per-job message in digest mode"
