"""Runs over chosen records through the API: the client's `submit_batch` against the sandbox's
``POST /v1/batch/flow`` over real loopback HTTP, record updates and deletes, and a world that
changes between simulated days."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from conftest import SandboxAdmin

from runtype_prefect.client import (
    MAX_BATCH_RECORDS,
    BadRequestError,
    BatchOptions,
    NotFoundError,
    PaymentRequiredError,
    RateLimitError,
    RuntypeClient,
    split_record_ids,
)
from runtype_prefect.sandbox import SandboxServer, SandboxSettings


def test_submit_batch_runs_exactly_the_chosen_records(
    admin: SandboxAdmin, client: RuntypeClient
) -> None:
    flow_id = admin.flow_for("lead")
    leads = [r.id for r in client.list_records(type="lead")]
    chosen = leads[10:13]
    (batch,) = client.submit_batch(flow_id, chosen, BatchOptions(record_concurrency=2))
    status = client.wait_for_batch(batch.batch_execution_id, timeout=10, poll_interval=0.01)
    assert status.status.value == "completed"
    assert status.total_records == 3  # a small batch over chosen records is still deferred
    results = [
        row.record_id
        for page in client.iter_batch_record_results(batch.batch_execution_id)
        for row in page.items
    ]
    assert sorted(results) == sorted(chosen)
    steps = {
        row.record_id
        for page in client.iter_step_results(flow_id, batch_execution_id=batch.batch_execution_id)
        for row in page.items
    }
    assert steps == set(chosen)
    assert client.get_batch_cost(batch.batch_execution_id).total_cost_usd > 0
    summary = client.get_batch_summary()
    assert batch.batch_execution_id in {b.id for b in [*summary.batches, *summary.recent]}


def test_submit_batch_splits_above_the_api_limit(
    admin: SandboxAdmin, client: RuntypeClient
) -> None:
    flow_id = admin.flow_for("lead")
    leads = [r.id for r in client.list_records(type="lead")]
    assert len(leads) > MAX_BATCH_RECORDS
    parts = split_record_ids(leads)
    assert [len(p) for p in parts] == [MAX_BATCH_RECORDS, len(leads) - MAX_BATCH_RECORDS]
    batches = client.submit_batch(flow_id, leads)
    assert len(batches) == 2
    totals = [client.get_batch_status(b.batch_execution_id).total_records for b in batches]
    assert totals == [len(p) for p in parts]
    assert admin.stats()["runsStarted"] == 2


def test_submit_batch_errors_name_the_problem(admin: SandboxAdmin, client: RuntypeClient) -> None:
    flow_id = admin.flow_for("lead")
    with pytest.raises(BadRequestError) as bad:
        client.submit_batch(flow_id, ["record_nope", "record_gone"])
    assert bad.value.code == "VALIDATION_ERROR"
    assert {d["recordId"] for d in bad.value.details} == {"record_nope", "record_gone"}
    assert "record_nope" in str(bad.value)
    with pytest.raises(ValueError, match="must not be empty"):
        client.submit_batch(flow_id, [])
    with pytest.raises(NotFoundError):
        client.submit_batch("flow_missing", ["record_x"])
    assert admin.stats()["runsStarted"] == 0


def test_submit_batch_refused_by_the_plan_or_the_quota() -> None:
    gated = SandboxSettings(batch_runs=False, daily_execution_limit=None)
    limited = SandboxSettings(daily_execution_limit=5)
    for settings, error in ((gated, PaymentRequiredError), (limited, RateLimitError)):
        with (
            SandboxServer(settings) as server,
            SandboxAdmin(server.base_url, api_key=server.api_key) as admin,
        ):
            with RuntypeClient(server.api_key, server.base_url, sleep=lambda s: None) as client:
                client.retry = client.retry.__class__(max_attempts=1)
                ids = [r.id for r in client.list_records(type="customer")][:6]
                with pytest.raises(error) as refused:
                    client.submit_batch(admin.flow_for("customer"), ids)
                assert not refused.value.retryable or error is RateLimitError
            assert admin.stats()["runsStarted"] == 0


def test_record_update_and_delete(admin: SandboxAdmin, client: RuntypeClient) -> None:
    record = client.list_records(type="customer")[0]
    changed = admin.change_record(record.id)
    assert changed["metadata"]["seats"] == record.metadata["seats"] + 1
    assert datetime.fromisoformat(changed["updatedAt"]) > record.updated_at
    http = client._http
    response = http.put(f"records/{record.id}", json={"name": "Renamed 0001"})
    assert response.status_code == 200 and response.json()["name"] == "Renamed 0001"
    assert http.delete(f"records/{record.id}").status_code == 200
    assert record.id not in {r.id for r in client.list_records(type="customer")}
    with pytest.raises(BadRequestError):
        client.submit_batch(admin.flow_for("customer"), [record.id])


def test_published_version(admin: SandboxAdmin, client: RuntypeClient) -> None:
    flow_id = admin.flow_for("ticket")
    version = client.get_published_version(flow_id)
    assert version.id.startswith("flowver_")
    (step,) = {
        row.flow_version_id
        for page in client.iter_step_results(
            flow_id,
            batch_execution_id=client.run_on_record_type(flow_id, "ticket").batch_id,
        )
        for row in page.items
    }
    assert step == version.id


@pytest.fixture(scope="module")
def changing() -> Iterator[SandboxServer]:
    """A sandbox whose records change every simulated day, like a CRM's."""
    start = datetime(2026, 3, 1, 2, tzinfo=UTC)
    with SandboxServer(SandboxSettings(churn=1.0, start=start)) as server:
        yield server


def test_the_world_changes_between_days_the_same_way_for_a_seed(
    changing: SandboxServer,
) -> None:
    def snapshot(server: SandboxServer, day: int) -> dict[str, tuple[str, str]]:
        with SandboxAdmin(server.base_url, api_key=server.api_key) as admin:
            admin.clock(now=datetime(2026, 3, 1, 2, tzinfo=UTC) + timedelta(days=day))
            with RuntypeClient(server.api_key, server.base_url) as client:
                return {
                    r.id: (r.updated_at.isoformat(), r.created_at.isoformat())
                    for r in client.list_records(type="lead")
                }

    first = snapshot(changing, 0)
    second = snapshot(changing, 1)
    new = second.keys() - first.keys()
    gone = first.keys() - second.keys()
    updated = {k for k in first.keys() & second.keys() if first[k] != second[k]}
    assert 3 <= len(new) <= 30 and 1 <= len(updated) <= 80 and len(gone) <= 15
    assert len(updated) > len(new)
    night = datetime(2026, 3, 2, tzinfo=UTC)
    assert all(datetime.fromisoformat(second[k][0]) >= night for k in updated | new)
    with SandboxServer(SandboxSettings(churn=1.0, start=datetime(2026, 3, 1, 2, tzinfo=UTC))) as b:
        assert snapshot(b, 0) == first
        assert snapshot(b, 1) == second
