"""`RuntypeClient.wait_for_batch`: deadlines, backoff, blips, unknown statuses, batches that say
`completed` early, and stopping, with a fake clock."""

from __future__ import annotations

import httpx
import pytest

from runtype_prefect.client import (
    BatchWaitStopped,
    BatchWaitTimeout,
    NotFoundError,
    RetryPolicy,
    RuntypeClient,
    UnknownBatchStatusError,
)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def status(value: str, processed: int = 0) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "batchExecutionId": "b",
            "status": value,
            "totalRecords": 10,
            "processedRecords": processed,
        },
    )


def client_answering(*responses: httpx.Response) -> RuntypeClient:
    queue = list(responses)
    transport = httpx.MockTransport(lambda request: queue.pop(0))
    return RuntypeClient(
        "k", "https://api.runtype.test", transport=transport, retry=RetryPolicy(max_attempts=1)
    )


def test_interval_backs_off_to_a_cap_and_returns_terminal_status():
    t = FakeTime()
    client = client_answering(*[status("running")] * 5, status("completed", 10))
    seen = []
    final = client.wait_for_batch(
        "b",
        timeout=600,
        poll_interval=2,
        max_poll_interval=5,
        on_status=seen.append,
        clock=t.clock,
        sleep=t.sleep,
    )
    assert final.status.value == "completed"
    assert t.sleeps == [2, 3, 4.5, 5, 5]
    assert len(seen) == 6


def test_one_transient_error_does_not_fail_the_wait():
    t = FakeTime()
    client = client_answering(status("running"), httpx.Response(503), status("completed", 10))
    final = client.wait_for_batch("b", timeout=60, poll_interval=1, clock=t.clock, sleep=t.sleep)
    assert final.processed_records == 10


def test_deadline_polls_once_more_at_the_deadline_then_raises():
    t = FakeTime()
    client = client_answering(*[status("running", 4)] * 4)
    with pytest.raises(BatchWaitTimeout) as info:
        client.wait_for_batch(
            "b",
            timeout=10,
            poll_interval=4,
            max_poll_interval=4,
            clock=t.clock,
            sleep=t.sleep,
        )
    assert t.sleeps == [4, 4, 2]  # the last poll happens exactly at the deadline
    assert info.value.elapsed == 10 and info.value.limit == 10
    assert "within 10s" in str(info.value) and "4/10 records" in str(info.value)


def test_a_batch_finishing_at_the_deadline_is_a_success():
    t = FakeTime()
    client = client_answering(status("running"), status("completed", 10))
    final = client.wait_for_batch("b", timeout=3, poll_interval=5, clock=t.clock, sleep=t.sleep)
    assert final.status.value == "completed" and t.sleeps == [3]


def test_unknown_status_is_an_error_not_an_endless_wait():
    t = FakeTime()
    client = client_answering(status("running"), status("rescheduled"))
    with pytest.raises(UnknownBatchStatusError, match="rescheduled"):
        client.wait_for_batch("b", timeout=60, poll_interval=1, clock=t.clock, sleep=t.sleep)


def test_not_found_stops_at_once():
    t = FakeTime()
    client = client_answering(
        httpx.Response(404, json={"error": {"code": "BATCH_NOT_FOUND", "message": "gone"}})
    )
    with pytest.raises(NotFoundError, match="BATCH_NOT_FOUND"):
        client.wait_for_batch("b", timeout=60, poll_interval=1, clock=t.clock, sleep=t.sleep)
    assert t.sleeps == []


def test_completed_before_every_record_is_processed_is_polled_on_until_it_is():
    t = FakeTime()
    client = client_answering(
        status("completed", 3), status("completed", 7), status("completed", 10)
    )
    final = client.wait_for_batch("b", timeout=60, poll_interval=1, clock=t.clock, sleep=t.sleep)
    assert final.processed_records == 10 and final.has_ended
    assert len(t.sleeps) == 2


def test_a_batch_that_stays_short_is_returned_as_it_stands_after_the_grace():
    t = FakeTime()
    client = client_answering(*[status("completed", 9)] * 4)
    final = client.wait_for_batch(
        "b",
        timeout=600,
        poll_interval=2,
        max_poll_interval=2,
        incomplete_grace=5,
        clock=t.clock,
        sleep=t.sleep,
    )
    assert final.is_short and final.processed_records == 9
    assert t.sleeps == [2, 2, 2]  # seen short at 0, still short at 6 > 5 s of grace


def test_a_short_batch_at_the_deadline_is_returned_not_a_timeout():
    t = FakeTime()
    client = client_answering(*[status("completed", 9)] * 3)
    final = client.wait_for_batch(
        "b", timeout=4, poll_interval=2, max_poll_interval=2, clock=t.clock, sleep=t.sleep
    )
    assert final.is_short and t.sleeps == [2, 2]


def test_should_stop_ends_the_wait_before_the_next_poll():
    t = FakeTime()
    client = client_answering(status("running", 1), status("running", 2))
    polls = []
    with pytest.raises(BatchWaitStopped) as info:
        client.wait_for_batch(
            "b",
            timeout=60,
            poll_interval=1,
            on_status=polls.append,
            should_stop=lambda: len(polls) >= 1,
            clock=t.clock,
            sleep=t.sleep,
        )
    assert len(polls) == 1 and info.value.last.processed_records == 1
