"""The request/response core of the client.

Every endpoint is described once here as a `Call`: what to send and how to read the answer
(including, for listings, which call fetches the next page). The client only moves bytes and
sleeps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import orjson
from pydantic import TypeAdapter, ValidationError

from . import models as m
from .arrow import RawPage
from .errors import (
    MalformedResponseError,
    RateLimitError,
    RuntypeConnectionError,
    RuntypeError,
    RuntypeTimeoutError,
    UnknownBatchStatusError,
    error_class_for_status,
)
from .retry import parse_retry_after

MAX_PAGE_SIZE = 100

R = TypeVar("R")


@dataclass(frozen=True)
class Call(Generic[R]):
    """One API request and the function that turns its response into a result."""

    method: str
    path: str
    parse: Callable[[httpx.Response], R]
    params: dict[str, str] | None = None
    json: Any = None
    #: Set on a run-starting call so an ambiguous failure can name what may have started:
    #: (flow id, what it runs over in words).
    run_target: tuple[str, str] | None = field(default=None)

    @property
    def idempotent(self) -> bool:
        """False for the call that starts a run (see `RetryPolicy.delay_before_retry`)."""
        return self.run_target is None


def build_request(
    http: httpx.Client | httpx.AsyncClient, call: Call[Any], *, remaining: float | None = None
) -> httpx.Request:
    """Return the httpx request for ``call`` on a client that carries base URL and headers.

    With ``remaining`` (seconds left of the call's budget) every timeout is capped by it.
    """
    timeout: httpx.Timeout | None = None
    if remaining is not None:
        base = http.timeout
        cap = max(remaining, 0.001)
        timeout = httpx.Timeout(
            connect=min(base.connect or cap, cap),
            read=min(base.read or cap, cap),
            write=min(base.write or cap, cap),
            pool=min(base.pool or cap, cap),
        )
    return http.build_request(
        call.method,
        call.path,
        params=call.params,
        json=call.json,
        timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
    )


# --- transport failures and error responses --------------------------------------------------


def map_transport_error(exc: httpx.TransportError, request: httpx.Request) -> RuntypeError:
    """Return the typed error for an httpx transport failure, noting if the request was sent."""
    where = f"{request.method} {request.url.copy_with(query=None)}"
    never_sent = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
    sent = not isinstance(exc, never_sent)
    if isinstance(exc, httpx.TimeoutException):
        return RuntypeTimeoutError(f"timed out: {where} ({type(exc).__name__})", request_sent=sent)
    detail = str(exc) or type(exc).__name__
    return RuntypeConnectionError(f"connection failed: {where}: {detail}", request_sent=sent)


def raise_for_status(response: httpx.Response) -> None:
    """Raise the typed `RuntypeAPIError` for an error response; return for 1xx–3xx."""
    if response.status_code < 400:
        return
    code, message, details = _read_error_body(response)
    cls = error_class_for_status(response.status_code)
    kwargs: dict[str, Any] = {
        "status_code": response.status_code,
        "code": code,
        "request_id": response.headers.get("x-request-id"),
        "method": response.request.method,
        "url": str(response.request.url.copy_with(query=None)),
        "details": details,
    }
    if cls is RateLimitError:
        kwargs["retry_after"] = parse_retry_after(response.headers.get("retry-after"))
    raise cls(message, **kwargs)


def _read_error_body(response: httpx.Response) -> tuple[str | None, str, list[Any] | None]:
    """Return (code, message, details) from the spec's error body, or a fallback for others."""
    fallback = response.reason_phrase or "error"
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        snippet = " ".join(response.text.split())[:200] if response.content else ""
        return None, f"{fallback} (non-JSON body: {snippet!r})" if snippet else fallback, None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return err.get("code"), str(err.get("message") or fallback), err.get("details")
        if isinstance(err, str):
            return body.get("code"), err, body.get("details")
        if "message" in body:
            return body.get("code"), str(body["message"]), body.get("details")
    return None, fallback, None


def read_json(response: httpx.Response) -> Any:
    """Return the decoded JSON body of a success response; raise `MalformedResponseError`."""
    try:
        # orjson decodes a page of step results in half the time of the standard library; a
        # body it refuses (another charset) gets httpx's decoding, and its error if that fails.
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        pass
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError) as exc:
        snippet = response.text[:120]
        raise MalformedResponseError(
            f"{response.request.method} {response.request.url.path}: HTTP {response.status_code}"
            f" body is not valid JSON ({exc}); starts with {snippet!r}",
            retryable=True,
        ) from exc


def validate(model: type[R], data: Any, response: httpx.Response) -> R:
    """Return ``data`` validated as ``model``; raise `MalformedResponseError` naming the fields."""
    return row_validator(model, response)(data)


def _where(response: httpx.Response) -> str:
    return f"{response.request.method} {response.request.url.path}"


def _malformed(where: str, model: type[Any], exc: ValidationError) -> MalformedResponseError:
    """Return the error for a body ``model`` refused: the request, the model, the fields."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<body>'}: {e['msg']}" for e in exc.errors()[:5]
    )
    return MalformedResponseError(
        f"{where}: unexpected response shape for {model.__name__}: {problems}", retryable=False
    )


def row_validator(model: type[R], response: httpx.Response) -> Callable[[Any], R]:
    """Return a function validating one object of ``response`` as ``model`` (raising
    `MalformedResponseError` naming the request and the fields); it keeps only the request's
    method and path, not the response."""
    where = _where(response)

    def check(data: Any) -> R:
        try:
            validated: R = model.model_validate(data)  # type: ignore[attr-defined]
            return validated
        except ValidationError as exc:
            raise _malformed(where, model, exc) from exc

    return check


_ROWS_ADAPTERS: dict[type[Any], TypeAdapter[list[Any]]] = {}


def _rows_adapter(model: type[Any]) -> TypeAdapter[list[Any]]:
    """Return the (cached) adapter validating a list of ``model``."""
    if (adapter := _ROWS_ADAPTERS.get(model)) is None:
        adapter = _ROWS_ADAPTERS[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
    return adapter


def validate_rows(model: type[R], rows: list[Any], response: httpx.Response) -> list[R]:
    """Return a page's ``rows`` validated as ``model`` in one pydantic call (a model per row,
    without a Python call per row); raise `MalformedResponseError` naming the request, the
    row's index and its fields."""
    try:
        validated: list[R] = _rows_adapter(model).validate_python(rows)
        return validated
    except ValidationError as exc:
        raise _malformed(_where(response), model, exc) from exc


def _data_list(body: Any, response: httpx.Response) -> tuple[list[Any], dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise MalformedResponseError(
            f"{response.request.url.path}: expected a listing with a 'data' array",
            retryable=False,
        )
    pagination = body.get("pagination")
    return body["data"], pagination if isinstance(pagination, dict) else {}


def _tail_pagination(body: bytes) -> dict[str, Any] | None:
    """Return a listing's top-level ``pagination`` object read from the end of its body, without
    decoding its ``data``; None when it is not the body's last member (then read it all).

    The suffix from the last ``"pagination"`` key parses as the rest of an object only when that
    key is a member of the outermost object: a key nested in a row would leave its own closing
    brackets in the suffix, and one inside a string is preceded by a backslash, not by ``,`` or
    ``{``. Anything else about the body (valid JSON, a ``data`` array) is checked when the page
    is parsed with the others.
    """
    at = body.rfind(b'"pagination"')
    if at <= 0 or not body[:at].rstrip().endswith((b",", b"{")):
        return None
    try:
        tail = orjson.loads(b"{" + body[at:])
    except orjson.JSONDecodeError:
        return None
    pagination = tail.get("pagination") if isinstance(tail, dict) else None
    return pagination if isinstance(pagination, dict) else None


def raw_page(response: httpx.Response, model: type[Any], limit: int) -> tuple[RawPage, bool]:
    """Return one listing page kept as its body for `arrow.PageBuffer`, and whether more pages
    follow. Raises `MalformedResponseError` for a body that is not a listing.

    When the pagination says how many rows the page holds (``returned``, spec style B) the rows
    are not decoded here: a page of step results is read once, by Arrow, instead of twice (this
    decoding was 1.3 of the 5.6 s it took to fetch and parse a million rows). Arrow checks the
    count when it parses the page, and the page is refused if it differs. Otherwise the body is
    decoded and its first row validated by the model, as before.
    """
    validate_row = row_validator(model, response)
    pagination = _tail_pagination(response.content)
    returned = pagination.get("returned") if pagination is not None else None
    # A page that says it is empty is decoded: a table is only parsed (and its counts checked)
    # for pages with rows, so an empty page's count is never taken on trust.
    if pagination is not None and type(returned) is int and returned > 0:
        count = returned
    else:
        rows, pagination = _data_list(read_json(response), response)
        count = len(rows)
        if rows:
            validate_row(rows[0])
    has_more = bool(pagination.get("hasMore", count >= limit)) and count > 0
    page = RawPage(response.content, count, validate_row, _rows_reader(response))
    return page, has_more


def _rows_reader(response: httpx.Response) -> Callable[[bytes, int], list[Any]]:
    """Return a function reading a page's rows back from its body the client's way (decoding,
    listing shape and errors as `read_json`), refusing a page whose rows are not the count its
    pagination gave. It keeps the request and the content type, not the response."""
    request, status = response.request, response.status_code
    headers = {"content-type": response.headers.get("content-type", "application/json")}
    where = _where(response)

    def read(body: bytes, expected: int) -> list[Any]:
        again = httpx.Response(status, headers=headers, content=body, request=request)
        rows, _ = _data_list(read_json(again), again)
        if len(rows) != expected:
            raise MalformedResponseError(
                f"{where}: the page's pagination says it returned {expected} rows, its data"
                f" holds {len(rows)}",
                retryable=False,
            )
        return rows

    return read


def _seg(value: str) -> str:
    if not value:
        raise ValueError("identifiers must be non-empty")
    return quote(value, safe="")


# --- endpoints -------------------------------------------------------------------------------

#: One page of a listing: parsed into a `Page` of models, or kept as a `RawPage` for Arrow.
PageCall = Call[tuple["m.Page[Any] | RawPage", "Call[Any] | None"]]


def list_flows_page(cursor: str | None = None, limit: int = MAX_PAGE_SIZE) -> PageCall:
    """Return the call for one page of ``GET /flows`` (cursor pagination)."""
    params = {"limit": str(limit)}
    if cursor:
        params["cursor"] = cursor

    def parse(response: httpx.Response) -> tuple[m.Page[Any], Call[Any] | None]:
        rows, pagination = _data_list(read_json(response), response)
        items = validate_rows(m.FlowSummary, rows, response)
        nxt = pagination.get("nextCursor") if pagination.get("hasMore", False) else None
        page = m.Page[m.FlowSummary](items=items, has_more=bool(nxt))
        return page, (list_flows_page(nxt, limit) if nxt else None)

    return Call("GET", "flows", parse, params=params)


def get_flow(flow_id: str) -> Call[m.Flow]:
    """Return the call for ``GET /flows/:id``."""
    return Call("GET", f"flows/{_seg(flow_id)}", lambda r: validate(m.Flow, read_json(r), r))


def run_on_record_type(flow_id: str, record_type: str) -> Call[m.RunStart]:
    """Return the (non-idempotent) call for ``POST /flows/:id/run-on-record-type``."""
    if not record_type:
        raise ValueError("record_type must be a non-empty string")

    def parse(response: httpx.Response) -> m.RunStart:
        body = read_json(response)
        deferred = response.status_code == 202 or (
            isinstance(body, dict) and body.get("executedImmediately") is False
        )
        if deferred:
            return validate(m.ScheduledBatch, body, response)
        return validate(m.ImmediateRun, body, response)

    return Call(
        "POST",
        f"flows/{_seg(flow_id)}/run-on-record-type",
        parse,
        json={"recordType": record_type},
        run_target=(flow_id, f"record type {record_type!r}"),
    )


#: Most record ids one ``POST /batch/flow`` takes (spec decision 10; the sandbox enforces it).
MAX_BATCH_RECORDS = 1000


def submit_batch(
    flow_id: str, record_ids: list[str], options: m.BatchOptions | None = None
) -> Call[m.SubmittedBatch]:
    """Return the (non-idempotent) call for ``POST /batch/flow`` over ``record_ids`` (at most
    `MAX_BATCH_RECORDS`; raises ValueError for an empty or longer list)."""
    if not record_ids:
        raise ValueError("record_ids must not be empty")
    if len(record_ids) > MAX_BATCH_RECORDS:
        raise ValueError(f"{len(record_ids)} record ids; one call takes {MAX_BATCH_RECORDS}")
    body: dict[str, Any] = {"flowId": flow_id, "recordIds": list(record_ids)}
    if options is not None:
        body["options"] = options.model_dump(by_alias=True, exclude_none=True)
    return Call(
        "POST",
        "batch/flow",
        lambda r: validate(m.SubmittedBatch, read_json(r), r),
        json=body,
        run_target=(flow_id, f"{len(record_ids)} chosen records"),
    )


def split_record_ids(record_ids: list[str], size: int = MAX_BATCH_RECORDS) -> list[list[str]]:
    """Return ``record_ids`` in consecutive parts of at most ``size`` ids (one call each)."""
    return [record_ids[i : i + size] for i in range(0, len(record_ids), size)]


def get_published_version(flow_id: str) -> Call[m.FlowVersion]:
    """Return the call for ``GET /flow-versions/:flowId/published``."""
    return Call(
        "GET",
        f"flow-versions/{_seg(flow_id)}/published",
        lambda r: validate(m.FlowVersion, read_json(r), r),
    )


def get_batch_status(batch_id: str) -> Call[m.BatchStatus]:
    """Return the call for ``GET /batch/status/:id``; unknown statuses raise clearly."""

    def parse(response: httpx.Response) -> m.BatchStatus:
        body = read_json(response)
        status = body.get("status") if isinstance(body, dict) else None
        if status not in set(m.BatchState):
            raise UnknownBatchStatusError(batch_id, status)
        return validate(m.BatchStatus, body, response)

    return Call("GET", f"batch/status/{_seg(batch_id)}", parse)


def get_batch_summary() -> Call[m.BatchSummary]:
    """Return the call for ``GET /batch/summary`` (active and recently finished batches)."""
    return Call("GET", "batch/summary", lambda r: validate(m.BatchSummary, read_json(r), r))


def cancel_batch(batch_id: str) -> Call[m.CancelResult]:
    """Return the call for ``POST /batch/cancel/:id`` (idempotent: cancelling twice is safe)."""
    return Call(
        "POST",
        f"batch/cancel/{_seg(batch_id)}",
        lambda r: validate(m.CancelResult, read_json(r), r),
        json={},
    )


def get_batch_cost(batch_id: str) -> Call[m.BatchCost]:
    """Return the call for ``GET /batch/:id/cost``."""
    return Call(
        "GET", f"batch/{_seg(batch_id)}/cost", lambda r: validate(m.BatchCost, read_json(r), r)
    )


def _offset_page(
    path: str,
    model: type[Any],
    params: dict[str, str],
    offset: int,
    limit: int,
    *,
    raw: bool = False,
) -> PageCall:
    """Return the call for one offset-paginated page (spec styles B and C): its items as
    models, or with ``raw`` the page's body as a `RawPage` (`raw_page`) for `arrow.PageBuffer`
    to read with the others."""

    def parse(response: httpx.Response) -> tuple[Any, Call[Any] | None]:
        page: Any
        if raw:
            page, has_more = raw_page(response, model, limit)
            count = page.rows
        else:
            rows, pagination = _data_list(read_json(response), response)
            count = len(rows)
            has_more = bool(pagination.get("hasMore", count >= limit)) and bool(rows)
            items: list[Any] = validate_rows(model, rows, response)
            page = m.Page[model](items=items, offset=offset, has_more=has_more)  # type: ignore[valid-type]
        if not has_more:
            return page, None
        return page, _offset_page(path, model, params, offset + count, limit, raw=raw)

    return Call("GET", path, parse, params={**params, "limit": str(limit), "offset": str(offset)})


def _filters(**kwargs: str | None) -> dict[str, str]:
    return {k: v for k, v in kwargs.items() if v is not None}


def batch_record_results_page(
    batch_id: str,
    *,
    status: str | None = None,
    offset: int = 0,
    limit: int = MAX_PAGE_SIZE,
    raw: bool = False,
) -> PageCall:
    """Return the call for the first page of ``GET /schedules/batch/:id/results``."""
    path = f"schedules/batch/{_seg(batch_id)}/results"
    params = _filters(status=status)
    return _offset_page(path, m.BatchRecordResult, params, offset, limit, raw=raw)


def step_results_page(
    flow_id: str,
    *,
    batch_execution_id: str | None = None,
    record_id: str | None = None,
    execution_session_id: str | None = None,
    status: str | None = None,
    step_type: str | None = None,
    offset: int = 0,
    limit: int = MAX_PAGE_SIZE,
    raw: bool = False,
) -> PageCall:
    """Return the call for the first page of ``GET /flows/:id/step-results`` with filters."""
    params = _filters(
        batchExecutionId=batch_execution_id,
        recordId=record_id,
        executionSessionId=execution_session_id,
        status=status,
        stepType=step_type,
    )
    path = f"flows/{_seg(flow_id)}/step-results"
    return _offset_page(path, m.StepResult, params, offset, limit, raw=raw)


def list_records_page(
    type: str | None = None,
    search: str | None = None,
    cursor: str | None = None,
    limit: int = MAX_PAGE_SIZE,
) -> PageCall:
    """Return the call for one page of ``GET /records`` (cursor pagination, spec decision 9)."""
    params = _filters(type=type, search=search, cursor=cursor)
    params["limit"] = str(limit)

    def parse(response: httpx.Response) -> tuple[m.Page[Any], Call[Any] | None]:
        rows, pagination = _data_list(read_json(response), response)
        items = validate_rows(m.Record, rows, response)
        nxt = pagination.get("nextCursor")
        page = m.Page[m.Record](items=items, has_more=bool(nxt))
        return page, (list_records_page(type, search, nxt, limit) if nxt else None)

    return Call("GET", "records", parse, params=params)


def count_records(record_type: str) -> Call[tuple[int | None, datetime | None]]:
    """Return the call counting the records of ``record_type`` with one small ``GET /records``
    page: (``totalCount``, the API's clock). The count is None when the API leaves it out
    and there are more pages (the caller then pages through)."""
    params = {"type": record_type, "limit": "1", "includeCount": "true"}

    def parse(response: httpx.Response) -> tuple[int | None, datetime | None]:
        rows, pagination = _data_list(read_json(response), response)
        total = pagination.get("totalCount")
        if not isinstance(total, int):
            more = pagination.get("nextCursor") or pagination.get("hasMore")
            total = None if more else len(rows)
        return total, server_time(response)

    return Call("GET", "records", parse, params=params)


def server_time(response: httpx.Response) -> datetime | None:
    """Return the response's ``Date`` header as a UTC datetime (the API's clock), or None."""
    value = response.headers.get("date")
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def get_record_schema(record_type: str, sample: int | None = None) -> Call[m.RecordSchema]:
    """Return the call for ``GET /records/schema?type=``."""
    params = _filters(type=record_type, sample=str(sample) if sample else None)
    return Call(
        "GET", "records/schema", lambda r: validate(m.RecordSchema, read_json(r), r), params=params
    )


def get_usage_limits() -> Call[m.UsageLimits]:
    """Return the call for ``GET /usage-limits/daily``."""
    return Call("GET", "usage-limits/daily", lambda r: validate(m.UsageLimits, read_json(r), r))


log = logging.getLogger("runtype_prefect.client")


def count_types(records: list[m.Record]) -> dict[str, int]:
    """Return record counts per type, sorted by type name."""
    counts: dict[str, int] = {}
    for record in records:
        counts[record.type] = counts.get(record.type, 0) + 1
    return dict(sorted(counts.items()))
