"""The client against the sandbox over real loopback HTTP."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime

import httpx
import pytest

from runtype_prefect.client import (
    AuthenticationError,
    BadRequestError,
    BatchState,
    ConflictError,
    ImmediateRun,
    MalformedResponseError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    RunStartUncertainError,
    RuntypeClient,
    RuntypeConnectionError,
    ScheduledBatch,
    ServerError,
    UnknownBatchStatusError,
)
from runtype_prefect.client import _config as config
from runtype_prefect.sandbox import SandboxServer, SandboxSettings
from runtype_prefect.sandbox.world import RECORD_TYPE_SIZES


def wait_terminal(client: RuntypeClient, batch_id: str):
    for _ in range(500):
        status = client.get_batch_status(batch_id)
        if status.status.is_terminal:
            return status
    raise AssertionError("batch never finished")


def test_immediate_run_returns_every_record(client, admin):
    flow_id = admin.flow_for("vip_account")
    run = client.run_on_record_type(flow_id, "vip_account")
    assert isinstance(run, ImmediateRun)
    assert run.record_count == len(run.results) == RECORD_TYPE_SIZES["vip_account"]
    assert run.failure_count == sum(not r.success for r in run.results)
    assert all(r.error is None for r in run.results if r.success)
    steps = [
        s
        for p in client.iter_step_results(flow_id, batch_execution_id=run.batch_id)
        for s in p.items
    ]
    assert {s.record_id for s in steps} == {r.record_id for r in run.results}


def test_deferred_run_completes_with_consistent_counts(client, admin):
    flow_id = admin.flow_for("customer")
    run = client.run_on_record_type(flow_id, "customer")
    assert isinstance(run, ScheduledBatch)
    assert run.record_count == RECORD_TYPE_SIZES["customer"]
    status = wait_terminal(client, run.batch_id)
    assert status.status in (BatchState.COMPLETED, BatchState.FAILED)
    assert status.processed_records == status.total_records == 40
    records = [r for p in client.iter_batch_record_results(run.batch_id) for r in p.items]
    assert len(records) == 40
    assert sum(r.status == "failed" for r in records) == status.failed_records
    cost = client.get_batch_cost(run.batch_id)
    steps = [
        s
        for p in client.iter_step_results(flow_id, batch_execution_id=run.batch_id)
        for s in p.items
    ]
    assert cost.total_cost_usd == pytest.approx(float(sum(s.estimated_cost or 0 for s in steps)))


def test_paging_over_a_thousand_step_results_with_filters(client, admin):
    flow_id = admin.flow_for("lead")
    run = client.run_on_record_type(flow_id, "lead")
    wait_terminal(client, run.batch_id)
    pages = list(client.iter_step_results(flow_id, batch_execution_id=run.batch_id))
    rows = [s for p in pages for s in p.items]
    assert len(rows) > 1000
    assert len({s.id for s in rows}) == len(rows), "offset paging must not repeat rows"
    assert [p.offset for p in pages] == [i * 100 for i in range(len(pages))]
    keys = [(s.created_at, s.id) for s in rows]
    assert keys == sorted(keys)
    prompts = [
        s
        for p in client.iter_step_results(
            flow_id, batch_execution_id=run.batch_id, step_type="prompt", status="completed"
        )
        for s in p.items
    ]
    assert prompts and all(s.step_type == "prompt" and s.status == "completed" for s in prompts)
    assert len(prompts) == sum(s.step_type == "prompt" and s.status == "completed" for s in rows)
    assert all(s.model_used and s.total_tokens for s in prompts)
    one = rows[0].record_id
    assert {
        s.record_id for p in client.iter_step_results(flow_id, record_id=one) for s in p.items
    } == {one}


def test_record_listing_and_schema(client, admin):
    assert client.list_record_types() == dict(sorted(RECORD_TYPE_SIZES.items()))
    assert len(client.list_records(type="ticket")) == RECORD_TYPE_SIZES["ticket"]
    schema = client.get_record_schema("lead")
    assert schema.total_records == RECORD_TYPE_SIZES["lead"]
    assert {f.name for f in schema.fields} >= {"region", "plan", "seats"}


@pytest.mark.parametrize(
    ("status", "error_class", "retried"),
    [
        (400, BadRequestError, False),
        (401, AuthenticationError, False),
        (402, PaymentRequiredError, False),
        (403, PermissionDeniedError, False),
        (404, NotFoundError, False),
        (409, ConflictError, False),
        (429, RateLimitError, True),
        (500, ServerError, True),
        (503, ServerError, True),
    ],
)
def test_every_error_status_maps_to_its_type(client, admin, sleeps, status, error_class, retried):
    admin.script({"kind": "status", "status": status, "path_prefix": "/v1/flows", "times": 10})
    with pytest.raises(error_class) as info:
        client.list_flows()
    assert info.value.status_code == status
    assert info.value.code in ("RATE_LIMIT_EXCEEDED", "SANDBOX_INJECTED_FAULT")
    assert info.value.request_id and info.value.request_id.startswith("req_")
    assert len(sleeps.calls) == (client.retry.max_attempts - 1 if retried else 0)


def test_real_not_found_and_bad_key(client, admin, sandbox):
    with pytest.raises(NotFoundError, match="FLOW_NOT_FOUND"):
        client.get_flow("flow_does_not_exist")
    with pytest.raises(NotFoundError, match="BATCH_NOT_FOUND"):
        client.get_batch_status("batch_nope")
    with RuntypeClient("rt_test_wrong", sandbox.base_url) as bad:
        with pytest.raises(AuthenticationError, match="invalid or revoked API key"):
            bad.list_flows()


def test_429_retry_after_is_honoured(client, admin, sleeps):
    admin.script({"kind": "status", "status": 429, "retry_after": 3, "path_prefix": "/v1/flows"})
    assert len(client.list_flows()) == 4
    assert sleeps.calls == [3.0]


def test_5xx_is_retried_then_succeeds(client, admin, sleeps):
    admin.script({"kind": "status", "status": 503, "path_prefix": "/v1/flows", "times": 2})
    assert len(client.list_flows()) == 4
    # Full jitter with rng=0.5 over base 0.5 s: 0.25 s, then 0.5 s.
    assert sleeps.calls == [0.25, 0.5]


def test_retries_exhausted_raise_the_last_error(client, admin, sleeps):
    admin.script({"kind": "status", "status": 502, "path_prefix": "/v1/flows", "times": 99})
    with pytest.raises(ServerError) as info:
        client.list_flows()
    assert info.value.status_code == 502
    assert len(sleeps.calls) == 3


def test_total_retry_time_is_capped(sandbox, admin, sleeps):
    policy = RetryPolicy(max_attempts=10, max_total_seconds=5)
    admin.script({"kind": "status", "status": 429, "retry_after": 4, "times": 5})
    with RuntypeClient(sandbox.api_key, sandbox.base_url, retry=policy, sleep=sleeps) as c:
        with pytest.raises(RateLimitError) as info:
            c.list_flows()
    assert info.value.retry_after == 4
    assert sleeps.calls == [4.0]


def test_dropped_get_is_retried(client, admin, sleeps):
    admin.script({"kind": "drop", "path_prefix": "/v1/flows"})
    assert len(client.list_flows()) == 4
    assert len(sleeps.calls) == 1


def test_ambiguous_run_start_is_not_retried(client, admin, sleeps):
    flow_id = admin.flow_for("ticket")
    admin.script({"kind": "drop", "method": "POST", "path_prefix": "/v1/flows"})
    with pytest.raises(RunStartUncertainError) as info:
        client.run_on_record_type(flow_id, "ticket")
    assert info.value.flow_id == flow_id and info.value.target == "record type 'ticket'"
    assert isinstance(info.value.cause, RuntypeConnectionError)
    assert sleeps.calls == []
    assert admin.stats()["runsStarted"] == 1, "the run did start, and only once"


def test_ambiguous_batch_submit_is_not_retried(client, admin, sleeps):
    flow_id = admin.flow_for("ticket")
    ids = [r.id for r in client.list_records(type="ticket")][:3]
    admin.script({"kind": "drop", "method": "POST", "path_prefix": "/v1/batch/flow"})
    with pytest.raises(RunStartUncertainError) as info:
        client.submit_batch(flow_id, ids)
    assert info.value.target == "3 chosen records" and sleeps.calls == []
    assert admin.stats()["runsStarted"] == 1, "the batch did start, and only once"


def test_ambiguous_5xx_on_run_start_is_not_retried(client, admin, sleeps):
    admin.script({"kind": "status", "status": 500, "method": "POST", "path_prefix": "/v1/flows"})
    with pytest.raises(RunStartUncertainError):
        client.run_on_record_type(admin.flow_for("ticket"), "ticket")
    assert sleeps.calls == []


def test_run_start_rejected_with_429_is_retried(client, admin, sleeps):
    admin.script(
        {
            "kind": "status",
            "status": 429,
            "retry_after": 2,
            "method": "POST",
            "path_prefix": "/v1/flows",
        }
    )
    run = client.run_on_record_type(admin.flow_for("ticket"), "ticket")
    assert isinstance(run, ScheduledBatch)
    assert sleeps.calls == [2.0]
    assert admin.stats()["runsStarted"] == 1


def test_run_start_with_connection_refused_is_retried(sleeps):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    policy = RetryPolicy(max_attempts=3, rng=lambda: 0.0)
    with RuntypeClient("k", f"http://127.0.0.1:{port}", retry=policy, sleep=sleeps) as c:
        with pytest.raises(RuntypeConnectionError) as info:
            c.run_on_record_type("flow_x", "ticket")
    assert not isinstance(info.value, RunStartUncertainError)
    assert info.value.request_sent is False
    assert len(sleeps.calls) == 2


def test_non_json_error_body_still_typed(client, admin):
    admin.script(
        {
            "kind": "status",
            "status": 502,
            "body": "<html><h1>502 Bad Gateway</h1></html>",
            "path_prefix": "/v1/flows",
            "times": 9,
        }
    )
    with pytest.raises(ServerError, match="502 Bad Gateway") as info:
        client.list_flows()
    assert info.value.code is None


def test_malformed_json_is_a_clear_retryable_error(client, admin, sleeps):
    admin.script({"kind": "malformed", "path_prefix": "/v1/flows"})
    assert len(client.list_flows()) == 4
    assert len(sleeps.calls) == 1
    admin.script({"kind": "malformed", "path_prefix": "/v1/flows", "times": 9})
    with pytest.raises(MalformedResponseError, match="not valid JSON"):
        client.list_flows()


def test_unknown_batch_status_is_reported_not_waited_on(client, admin):
    run = client.run_on_record_type(admin.flow_for("customer"), "customer")
    admin.http.put(f"/_sandbox/batches/{run.batch_id}/status", params={"status": "paused"})
    with pytest.raises(UnknownBatchStatusError, match="'paused'") as info:
        client.get_batch_status(run.batch_id)
    assert info.value.batch_id == run.batch_id


def test_cancel_a_running_batch(sandbox, admin):
    admin.http.put("/_sandbox/clock", json={"time_scale": 1000.0})
    try:
        with RuntypeClient(sandbox.api_key, sandbox.base_url) as c:
            run = c.run_on_record_type(admin.flow_for("lead"), "lead")
            assert c.cancel_batch(run.batch_id).success
            assert c.get_batch_status(run.batch_id).status is BatchState.CANCELLED
            with pytest.raises(BadRequestError, match="BATCH_NOT_CANCELLABLE"):
                c.cancel_batch(run.batch_id)
    finally:
        admin.http.put("/_sandbox/clock", json={"time_scale": 0.0})


def test_api_key_never_in_logs_reprs_or_errors(sandbox, admin, caplog, sleeps):
    secret = sandbox.api_key
    caplog.set_level(logging.DEBUG)
    admin.script({"kind": "status", "status": 503, "path_prefix": "/v1/flows", "times": 9})
    with RuntypeClient(secret, sandbox.base_url, sleep=sleeps) as c:
        with pytest.raises(ServerError) as info:
            c.list_flows()
        assert secret not in repr(c)
        assert secret not in str(info.value) and secret not in repr(info.value)
    assert caplog.records, "the retries should have been logged"
    assert secret not in caplog.text


def test_unsafe_configuration_is_refused(monkeypatch):
    monkeypatch.delenv(config.API_KEY_ENV, raising=False)
    with pytest.raises(ValueError, match="RUNTYPE_API_KEY"):
        RuntypeClient(base_url="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="unencrypted"):
        RuntypeClient("k", "http://api.runtype.com/v1")
    monkeypatch.setenv(config.API_KEY_ENV, "rt_live_x")
    monkeypatch.setenv(config.BASE_URL_ENV, "http://[::1]:9")
    with RuntypeClient() as c:
        assert c.base_url == "http://[::1]:9/v1/"


SPEC_SUMMARY_ITEM = {
    "id",
    "flowName",
    "status",
    "progress",
    "totalRecords",
    "processedRecords",
    "failedRecords",
    "startedAt",
}
SPEC_STATUS = {
    "batchExecutionId",
    "flowId",
    "status",
    "totalRecords",
    "processedRecords",
    "failedRecords",
    "successCount",
    "progress",
    "startedAt",
    "completedAt",
    "results",
}


def test_batch_summary_and_status_have_exactly_the_specs_fields(client, admin, sandbox):
    run = client.run_on_record_type(admin.flow_for("customer"), "customer")
    wait_terminal(client, run.batch_id)
    client.run_on_record_type(admin.flow_for("vip_account"), "vip_account")
    headers = {"Authorization": f"Bearer {sandbox.api_key}"}
    summary = httpx.get(f"{sandbox.base_url}/batch/summary", headers=headers).json()
    items = summary["batches"] + summary["recent"]
    assert len(items) == 2 and all(set(item) == SPEC_SUMMARY_ITEM for item in items)
    status = httpx.get(f"{sandbox.base_url}/batch/status/{run.batch_id}", headers=headers).json()
    assert set(status) == SPEC_STATUS


def test_ids_are_unique_across_restarts_while_the_world_stays_the_same():
    runs = []
    for _ in range(2):
        with (
            SandboxServer(SandboxSettings(seed=7)) as server,
            RuntypeClient(server.api_key, server.base_url) as c,
        ):
            flow = next(f for f in c.list_flows() if "Ticket" in f.name)
            run = c.run_on_record_type(flow.id, "ticket")
            final = c.wait_for_batch(run.batch_id, timeout=30, poll_interval=0.01)
            step_ids = {
                s.id
                for p in c.iter_step_results(flow.id, batch_execution_id=run.batch_id)
                for s in p.items
            }
            runs.append((flow.id, run.batch_id, final.failed_records, step_ids))
    (flow_a, batch_a, failed_a, steps_a), (flow_b, batch_b, failed_b, steps_b) = runs
    assert flow_a == flow_b, "seeded flows and records are deterministic"
    assert failed_a == failed_b and len(steps_a) == len(steps_b), "and so is what happens"
    assert batch_a != batch_b and not steps_a & steps_b, "but no id repeats"


def test_counting_records_reads_the_apis_clock(client, admin):
    admin.clock(now="2026-11-20T02:00:00Z")
    count = client.count_records("ticket")
    assert count.count == 250
    assert abs((count.as_of - datetime(2026, 11, 20, 2, tzinfo=UTC)).total_seconds()) < 5
    assert client.count_records("no-such-type").count == 0


def test_the_flow_record_and_usage_routes_follow_the_spec(sandbox, admin, client):
    """The routes the client does not call yet, over real HTTP: flows CRUD with draft versions
    and publishing, records (409 on a duplicate), record costs and step results, usage."""
    with httpx.Client(
        base_url=sandbox.base_url + "/",
        headers={"Authorization": f"Bearer {sandbox.api_key}"},
    ) as http:
        made = http.post(
            "flows", json={"name": "Greeter", "steps": [{"type": "prompt", "name": "Hi"}]}
        )
        assert made.status_code == 201 and made.json()["stepCount"] == 1
        flow_id = made.json()["id"]
        assert http.post("flows", json={"name": ""}).status_code == 400
        updated = http.put(f"flows/{flow_id}", json={"name": "Greeter 2"}).json()
        assert updated["name"] == "Greeter 2" and updated["draftVersionId"]
        published = http.post(f"flows/{flow_id}/publish", json={}).json()
        assert published["success"] and published["publishedVersionId"] == updated["draftVersionId"]
        assert http.get(f"flows/{flow_id}").json()["name"] == "Greeter 2"
        assert http.delete(f"flows/{flow_id}").json()["success"] is True
        assert http.get(f"flows/{flow_id}").status_code == 404

        record = http.post("records", json={"type": "vip_account", "name": "New VIP"})
        assert record.status_code == 201
        again = http.post("records", json={"type": "vip_account", "name": "New VIP"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "RECORD_EXISTS"
        assert http.get(f"records/{record.json()['id']}").json()["name"] == "New VIP"
        assert http.get("records/record_nope").status_code == 404

        run = client.run_on_record_type(admin.flow_for("vip_account"), "vip_account")
        rid = run.results[0].record_id
        steps = http.get(f"records/{rid}/step-results").json()
        assert steps["data"] and {s["recordId"] for s in steps["data"]} == {rid}
        costs = http.get(f"records/{rid}/costs").json()
        assert costs["executionCount"] == 1 and costs["totalTokens"] > 0
        usage = http.get("usage-limits").json()["usage"]
        assert usage["daily"]["isUnlimited"] and usage["daily"]["executionsUsed"] == 7


def test_the_sandbox_listens_with_ipproto_tcp_so_asyncio_sets_tcp_nodelay():
    """With proto 0, asyncio leaves Nagle on for accepted connections and every small answer
    on a kept-alive connection waits ~40 ms for a delayed ACK (issue 11's finding)."""
    from runtype_prefect.sandbox.server import bind

    sock = bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_the_sandbox_says_what_it_planted_and_calm_plants_nothing(admin):
    plan = admin.calendar("2026-11-01", "2026-11-30")
    assert plan["calm"] is False
    nights = {n["night"]: n["planted"] for n in plan["nights"]}
    kinds = {p["kind"] for planted in nights.values() for p in planted}
    assert kinds == {"slow_week", "incident"}
    slow = [p for planted in nights.values() for p in planted if p["kind"] == "slow_week"]
    start = next(p for p in slow if p["nightOf"] == 1)  # one starts in any 30 nights
    assert start["description"] == "a slow week starts: prompt steps take 1.9× as long"
    incident = next(p for planted in nights.values() for p in planted if p["kind"] == "incident")
    hit = {h["recordType"] for h in incident["hits"]}
    assert hit == {"customer", "ticket", "lead"}, "vip_account's flow has no api-call step"
    with SandboxServer(SandboxSettings(calm=True)) as calm:
        from runtype_prefect.client.sandbox_control import SandboxControl

        with SandboxControl(calm.base_url, api_key=calm.api_key) as control:
            assert control.calendar("2026-11-01", "2026-11-30") == {
                "calm": True,
                "start": "2026-11-01",
                "end": "2026-11-30",
                "nights": [],
            }
