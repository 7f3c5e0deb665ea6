"""Client edge cases the sandbox cannot produce, through `httpx.MockTransport`."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from runtype_prefect.client import (
    BadRequestError,
    MalformedResponseError,
    RateLimitError,
    RetryPolicy,
    RuntypeClient,
    RuntypeTimeoutError,
    ServerError,
    is_retryable,
)
from runtype_prefect.client.retry import parse_retry_after


def mock_client(handler, sleeps=None, **policy) -> RuntypeClient:
    return RuntypeClient(
        "rt_test_unit",
        "https://api.runtype.test/v1",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(rng=lambda: 1.0, **policy),
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
    )


def test_request_carries_bearer_key_user_agent_and_filters():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": [], "pagination": {"hasMore": False}})

    with mock_client(handler) as c:
        list(c.iter_step_results("flow 1", batch_execution_id="b1", step_type="prompt"))
    request = seen[0]
    assert request.headers["authorization"] == "Bearer rt_test_unit"
    assert request.headers["user-agent"].startswith("runtype-prefect/")
    assert request.url.raw_path.startswith(b"/v1/flows/flow%201/step-results?")
    assert dict(request.url.params) == {
        "batchExecutionId": "b1",
        "stepType": "prompt",
        "limit": "100",
        "offset": "0",
    }


def test_error_body_variants():
    bodies = iter(
        [
            httpx.Response(
                400,
                json={
                    "error": {
                        "code": "VALIDATION_ERROR",
                        "message": "bad",
                        "details": [{"field": "recordType"}],
                    }
                },
            ),
            httpx.Response(400, json={"error": "plain message", "code": "X"}),
            httpx.Response(400, content=b""),
        ]
    )
    with mock_client(lambda r: next(bodies)) as c:
        with pytest.raises(BadRequestError) as first:
            c.get_flow("f")
        assert first.value.code == "VALIDATION_ERROR"
        assert first.value.details == [{"field": "recordType"}]
        with pytest.raises(BadRequestError, match="plain message"):
            c.get_flow("f")
        with pytest.raises(BadRequestError, match="HTTP 400: Bad Request"):
            c.get_flow("f")


def test_retry_after_as_http_date_is_honoured():
    when = datetime(2030, 1, 1, 0, 0, 10, tzinfo=UTC)
    assert (
        parse_retry_after("Tue, 01 Jan 2030 00:00:10 GMT", now=datetime(2030, 1, 1, tzinfo=UTC))
        == 10.0
    )
    assert (
        parse_retry_after(
            when.strftime("%a, %d %b %Y %H:%M:%S GMT"), now=datetime(2031, 1, 1, tzinfo=UTC)
        )
        == 0.0
    )
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_read_timeout_on_get_is_retried_then_raised():
    sleeps: list[float] = []

    def handler(request):
        raise httpx.ReadTimeout("slow", request=request)

    with mock_client(handler, sleeps, max_attempts=3) as c:
        with pytest.raises(RuntypeTimeoutError) as info:
            c.get_batch_status("b")
    assert info.value.request_sent is True
    assert sleeps == [0.5, 1.0]


def test_backoff_is_exponential_capped_and_jittered():
    policy = RetryPolicy(base_delay=1, max_delay=5, rng=lambda: 1.0)
    assert [policy.backoff(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]
    assert RetryPolicy(base_delay=1, rng=lambda: 0.0).backoff(3) == 0.0


def test_schema_mismatch_is_not_retryable():
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(
            200, json={"batchExecutionId": "b", "status": "running", "totalRecords": "many"}
        )

    with mock_client(handler) as c:
        with pytest.raises(MalformedResponseError, match="totalRecords") as info:
            c.get_batch_status("b")
    assert not is_retryable(info.value)
    assert len(calls) == 1


def test_a_refused_row_of_a_page_is_named_by_request_index_and_field():
    good = {"id": "s", "flowId": "f", "status": "completed"}
    rows = [good, good, {**good, "durationMs": "slow"}]

    def handler(request):
        return httpx.Response(200, json={"data": rows, "pagination": {"hasMore": False}})

    with mock_client(handler) as c:
        with pytest.raises(MalformedResponseError) as info:
            list(c.iter_step_results("f"))
    message = str(info.value)
    assert "GET /v1/flows/f/step-results" in message and "StepResult" in message
    assert "2.durationMs" in message, "the row's index and the field, as on the wire"
    assert not is_retryable(info.value)


def test_step_result_money_is_exact_decimal():
    row = {
        "id": "s",
        "flowId": "f",
        "status": "completed",
        "estimatedCost": "0.004500",
        "futureField": 1,
    }
    with mock_client(lambda r: httpx.Response(200, json={"data": [row], "pagination": {}})) as c:
        (page,) = list(c.iter_step_results("f"))
    step = page.items[0]
    assert step.estimated_cost == Decimal("0.004500")
    assert step.model_extra == {"futureField": 1}


def test_retryable_flags():
    assert is_retryable(RateLimitError("x", status_code=429))
    assert is_retryable(ServerError("x", status_code=500))
    assert not is_retryable(BadRequestError("x", status_code=400))
    assert not is_retryable(ValueError("x"))


def test_a_server_that_never_answers_costs_one_call_budget_not_attempts_times_timeout():
    """Each attempt's timeouts shrink to what is left of the call's budget (fake clock)."""
    now = [0.0]
    read_timeouts: list[float] = []

    def never_answers(request: httpx.Request) -> httpx.Response:
        read = request.extensions["timeout"]["read"]
        read_timeouts.append(read)
        now[0] += read  # the time the read timeout takes
        raise httpx.ReadTimeout("no answer", request=request)

    client = RuntypeClient(
        "k",
        "https://api.runtype.test",
        transport=httpx.MockTransport(never_answers),
        timeout=httpx.Timeout(30.0, connect=5.0),
        retry=RetryPolicy(max_attempts=5, max_call_seconds=45.0, rng=lambda: 0.0),
        sleep=lambda seconds: now.__setitem__(0, now[0] + seconds),
        clock=lambda: now[0],
    )
    with pytest.raises(RuntypeTimeoutError, match=r"timed out: GET https://api.runtype.test/v1/"):
        client.get_flow("f")
    assert read_timeouts == [30.0, 15.0] and now[0] == 45.0


def test_clients_share_one_tls_context_per_ca_setting(monkeypatch):
    # Building a context reads the whole CA bundle (~17 ms); every job's client paid it anew.
    import certifi

    from runtype_prefect.client._config import tls_context

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    url = "https://api.runtype.test/v1"
    with RuntypeClient("rt_test", url) as a, RuntypeClient("rt_test", url) as b:
        contexts = {id(c._http._transport._pool._ssl_context) for c in (a, b)}
    assert contexts == {id(tls_context())}
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())  # another CA setting: its own context
    with RuntypeClient("rt_test", url) as c:
        assert id(c._http._transport._pool._ssl_context) not in contexts
