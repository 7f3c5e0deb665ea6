"""What the Prefect UI shows and what the platform hears: run names, the success floor, and a
``runtype.batch.*`` terminal event on every path, read back from the test harness's server."""

from __future__ import annotations

import pytest
from helpers import job_settings, wait_for_events

from runtype_prefect.flows import run_record_type

pytestmark = pytest.mark.usefixtures("prefect_api", "runtype_env")


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "runtype.duckdb")


def batch_resource(admin) -> tuple[str, str]:
    (batch,) = admin.stats()["batches"]
    return batch["id"], f"runtype.batch.{batch['id']}"


def test_a_landed_job_is_named_after_itself_and_announces_start_and_end(admin, db):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, TaskRunFilter

    state = run_record_type(
        flow_id=admin.flow_for("customer"),
        record_type="customer",
        job_name="Customer Health Summary",
        run_key="2026-11-01",
        return_state=True,
        settings=job_settings(db, fast=True),
    )
    result = state.result()
    batch_id, resource = batch_resource(admin)
    started, ended = wait_for_events("runtype.batch.", 2, resource=resource)
    assert started["event"] == "runtype.batch.started"
    assert started["resource"]["prefect.resource.name"] == "Customer Health Summary"
    assert ended["event"] == "runtype.batch.completed"
    assert ended["payload"]["outcome"] == result.outcome.value
    assert ended["payload"]["records"] == 40 and ended["payload"]["failures"] == result.failed
    with get_client(sync_client=True) as prefect:
        run = prefect.read_flow_run(state.state_details.flow_run_id)
        tasks = prefect.read_task_runs(
            flow_run_filter=FlowRunFilter(id={"any_": [run.id]}),
            task_run_filter=TaskRunFilter(),
        )
    assert run.name == "Customer Health Summary · customer"
    assert {t.name for t in tasks} >= {
        "start · Customer Health Summary · customer",
        "wait · Customer Health Summary · customer",
        "land · Customer Health Summary · customer",
    }
    links = [a for a in _artifacts(run.id) if a.type == "markdown" and "Runtype batch" in a.data]
    assert links and f"/ui/batches/{batch_id}" not in links[0].data, "no sandbox env: dashboard"
    assert "https://dashboard.runtype.com/flows/" in links[0].data


def _artifacts(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as prefect:
        return prefect.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )


def test_a_job_below_its_success_floor_ends_failed_and_says_so(admin, db):
    state = run_record_type(
        flow_id=admin.flow_for("ticket"),
        record_type="ticket",
        run_key="2026-11-02",
        return_state=True,
        settings=job_settings(db, fast=True, judgement={"min_success_rate": 0.999}),
    )
    assert state.is_failed() and state.name == "BelowFloor"
    result = state.result(raise_on_failure=False)
    assert result.outcome.value == "below_floor" and result.records == 250, "landed in full"
    assert "below the floor of 100%" in state.message
    _, resource = batch_resource(admin)
    *_, ended = wait_for_events("runtype.batch.", 2, resource=resource)
    assert ended["event"] == "runtype.batch.failed"
    assert ended["payload"]["outcome"] == "below_floor"


def test_a_landing_that_fails_for_good_still_ends_the_batch_with_a_failed_event(admin, db):
    admin.script(  # the record results answer 400 (not retried): landing cannot go on
        {"kind": "status", "status": 400, "path_prefix": "/v1/schedules/batch/", "times": 50}
    )
    state = run_record_type(
        flow_id=admin.flow_for("customer"),
        record_type="customer",
        run_key="2026-11-03",
        return_state=True,
        settings=job_settings(db, fast=True),
    )
    assert state.is_failed()
    _, resource = batch_resource(admin)
    *_, ended = wait_for_events("runtype.batch.", 2, resource=resource)
    assert ended["event"] == "runtype.batch.failed"
    assert ended["payload"]["outcome"] == "error"
    assert "BadRequestError" in ended["payload"]["error"]


def test_a_wait_that_times_out_ends_the_batch_with_a_failed_event(admin, db):
    admin.clock(time_scale=100.0)  # the batch would take hours
    state = run_record_type(
        flow_id=admin.flow_for("lead"),
        record_type="lead",
        run_key="2026-11-04",
        return_state=True,
        settings=job_settings(db, fast=True, waiting={"timeout_seconds": 0.3}),
    )
    assert state.is_failed()
    _, resource = batch_resource(admin)
    *_, ended = wait_for_events("runtype.batch.", 2, resource=resource)
    assert ended["event"] == "runtype.batch.failed"
    assert ended["payload"]["outcome"] == "timed_out"


def test_an_unnamed_on_demand_run_goes_by_its_flows_name(admin, db):
    """An on-demand run started with a flow id only (the deployment's form) is named after the
    flow the preflight read, never after the flow id."""
    from prefect.client.orchestration import get_client

    state = run_record_type(
        flow_id=admin.flow_for("customer"),
        record_type="customer",
        run_key="2026-11-03",
        return_state=True,
        settings=job_settings(db, fast=True),
    )
    assert state.result().job == "Customer Health Summary"
    with get_client(sync_client=True) as prefect:
        run = prefect.read_flow_run(state.state_details.flow_run_id)
    assert run.name == "Customer Health Summary · customer"
