"""`RuntypeClient`: the synchronous Runtype API client over one pooled `httpx.Client`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pyarrow as pa
from pydantic import SecretStr

from . import _config as config
from . import _core as core
from . import models as m
from .arrow import DEFAULT_CHUNK_BYTES, PageBuffer
from .errors import BatchWaitStopped, RuntypeError
from .retry import RetryPolicy, delay_or_raise, log
from .waiting import BatchWait

R = TypeVar("R")


class RuntypeClient:
    """Synchronous client for the Runtype ``/v1`` API.

    Reads ``RUNTYPE_API_KEY`` / ``RUNTYPE_BASE_URL`` when arguments are omitted. Use it as a
    context manager (or call `close`) to release pooled connections. ``sleep`` and ``retry``
    are injectable so tests never wait for real; ``request_hooks`` run before every HTTP
    request (the Prefect layer uses one to apply its rate limit). Raises ValueError for a
    missing key or an unsafe base URL.
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        *,
        timeout: float | httpx.Timeout = config.DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        request_hooks: list[Callable[[httpx.Request], None]] | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api_key = config.resolve_api_key(api_key)
        self.base_url = config.resolve_base_url(base_url)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=config.default_headers(self._api_key),
            timeout=timeout,
            verify=config.tls_context(),
            transport=transport,
            event_hooks={"request": list(request_hooks or [])},
        )

    def __repr__(self) -> str:
        return f"RuntypeClient(base_url={self.base_url!r})"

    def __enter__(self) -> RuntypeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def request(self, call: core.Call[R]) -> R:
        """Send ``call`` with the retry policy and return its parsed result.

        Raises the typed `RuntypeError` of the final failure.
        """
        attempt, waited, started_at, began = 0, 0.0, datetime.now(UTC), self._clock()
        while True:
            attempt += 1
            remaining = self.retry.max_call_seconds - (self._clock() - began)
            request = core.build_request(self._http, call, remaining=remaining)
            try:
                response = self._http.send(request)
                core.raise_for_status(response)
                return call.parse(response)
            except httpx.TransportError as exc:
                error: RuntypeError = core.map_transport_error(exc, request)
            except RuntypeError as exc:
                error = exc
            delay = delay_or_raise(
                self.retry,
                call,
                error,
                attempt=attempt,
                waited=waited,
                started_at=started_at,
                elapsed=self._clock() - began,
            )
            self._sleep(delay)
            waited += delay

    def pages(self, call: core.PageCall) -> Iterator[Any]:
        """Yield every page of a listing, starting with ``call`` (a `Page` of models, or a
        `RawPage` for a ``raw`` call)."""
        next_call: core.PageCall | None = call
        while next_call is not None:
            page, next_call = self.request(next_call)
            yield page

    # --- flows ---------------------------------------------------------------------------

    def list_flows(self) -> list[m.FlowSummary]:
        """Return every flow of the account, paging through the cursor listing."""
        return [flow for page in self.pages(core.list_flows_page()) for flow in page.items]

    def get_flow(self, flow_id: str) -> m.Flow:
        """Return one flow with its steps; raises `NotFoundError` for an unknown id."""
        return self.request(core.get_flow(flow_id))

    def run_on_record_type(self, flow_id: str, record_type: str) -> m.RunStart:
        """Start ``flow_id`` over every record of ``record_type``.

        Returns an `ImmediateRun` (results inline) or a `ScheduledBatch` (follow ``batch_id``).
        Raises `RunStartUncertainError` when the request failed after it may have started a run.
        """
        return self.request(core.run_on_record_type(flow_id, record_type))

    def submit_batch(
        self, flow_id: str, record_ids: list[str], options: m.BatchOptions | None = None
    ) -> list[m.SubmittedBatch]:
        """Start ``flow_id`` over exactly ``record_ids`` (of any record types), one batch per
        `core.MAX_BATCH_RECORDS` ids (`core.split_record_ids`), in order; return the batches
        to follow. The parts are separate calls: an error in one leaves the earlier ones
        started, so a caller that must survive that (the engine's ledger) records each part
        and calls this once per part.

        Raises ValueError for an empty list, `BadRequestError` naming unknown ids in its
        ``details``, `PaymentRequiredError` when the plan lacks batch runs (a stop),
        `RateLimitError` on the daily limit, and `RunStartUncertainError` when a call failed
        after it may have started a batch.
        """
        if not record_ids:
            raise ValueError("record_ids must not be empty: a batch runs at least one record")
        submitted: list[m.SubmittedBatch] = []
        for part in core.split_record_ids(record_ids):
            submitted.append(self.request(core.submit_batch(flow_id, part, options)))
        return submitted

    def get_published_version(self, flow_id: str) -> m.FlowVersion:
        """Return the flow's published version; raises `NotFoundError` when it has none."""
        return self.request(core.get_published_version(flow_id))

    def iter_step_results(
        self,
        flow_id: str,
        *,
        batch_execution_id: str | None = None,
        record_id: str | None = None,
        execution_session_id: str | None = None,
        status: str | None = None,
        step_type: str | None = None,
        page_size: int = core.MAX_PAGE_SIZE,
    ) -> Iterator[m.Page[m.StepResult]]:
        """Yield pages of step results of ``flow_id`` matching the filters, oldest first."""
        yield from self.pages(
            core.step_results_page(
                flow_id,
                batch_execution_id=batch_execution_id,
                record_id=record_id,
                execution_session_id=execution_session_id,
                status=status,
                step_type=step_type,
                limit=page_size,
            )
        )

    def iter_step_result_tables(
        self,
        flow_id: str,
        *,
        batch_execution_id: str | None = None,
        page_size: int = core.MAX_PAGE_SIZE,
        max_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> Iterator[pa.Table]:
        """Yield step results as Arrow tables in `StepResult`'s layout (its field names as
        columns), each from about ``max_bytes`` of pages, validated by the model's schema
        without a model per row (see `client.arrow`); raises `MalformedResponseError` for rows
        the model refuses."""
        call = core.step_results_page(
            flow_id, batch_execution_id=batch_execution_id, limit=page_size, raw=True
        )
        yield from PageBuffer(m.StepResult, max_bytes).tables(self.pages(call))

    # --- batches -------------------------------------------------------------------------

    def get_batch_status(self, batch_id: str) -> m.BatchStatus:
        """Return a batch's status; raises `UnknownBatchStatusError` for an unknown status."""
        return self.request(core.get_batch_status(batch_id))

    def get_batch_summary(self) -> m.BatchSummary:
        """Return the account's active and recently finished batches."""
        return self.request(core.get_batch_summary())

    def cancel_batch(self, batch_id: str) -> m.CancelResult:
        """Cancel a queued or running batch; raises `BadRequestError` if it already ended."""
        return self.request(core.cancel_batch(batch_id))

    def wait_for_batch(
        self,
        batch_id: str,
        *,
        timeout: float,
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
        incomplete_grace: float | None = None,
        on_status: Callable[[m.BatchStatus], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> m.BatchStatus:
        """Poll the batch until it has ended and return its last status (see `BatchWait`).

        A batch that says ``completed`` before all its records are processed is polled on
        (for ``incomplete_grace`` seconds, or until the deadline) and then returned as it is:
        check ``status.is_short``. A transient error while polling is logged and polling goes
        on. Raises `BatchWaitTimeout` at the deadline, `BatchWaitStopped` as soon as
        ``should_stop()`` says so, `UnknownBatchStatusError` for a status the client does not
        know, and any non-retryable `RuntypeError` (e.g. 404) at once.
        """
        plan = BatchWait(
            batch_id,
            timeout,
            clock(),
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            incomplete_grace=incomplete_grace,
        )
        while True:
            if should_stop is not None and should_stop():
                raise BatchWaitStopped(batch_id, plan.last)
            status: m.BatchStatus | None = None
            try:
                status = self.get_batch_status(batch_id)
            except RuntypeError as exc:
                if not exc.retryable:
                    raise
                log.warning("polling batch %s: transient error, polling on: %s", batch_id, exc)
            else:
                if on_status is not None:
                    on_status(status)
            step = plan.next(status, clock())
            if isinstance(step, m.BatchStatus):
                return step
            (sleep or self._sleep)(step)

    def get_batch_cost(self, batch_id: str) -> m.BatchCost:
        """Return the batch's total cost in USD."""
        return self.request(core.get_batch_cost(batch_id))

    def iter_batch_record_results(
        self, batch_id: str, *, status: str | None = None, page_size: int = core.MAX_PAGE_SIZE
    ) -> Iterator[m.Page[m.BatchRecordResult]]:
        """Yield pages of per-record results of a deferred batch."""
        yield from self.pages(
            core.batch_record_results_page(batch_id, status=status, limit=page_size)
        )

    def iter_batch_record_result_tables(
        self,
        batch_id: str,
        *,
        page_size: int = core.MAX_PAGE_SIZE,
        max_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> Iterator[pa.Table]:
        """Yield a deferred batch's per-record results as Arrow tables in
        `BatchRecordResult`'s layout (``record`` a struct), each from about ``max_bytes`` of
        pages; raises `MalformedResponseError` for rows the model refuses."""
        call = core.batch_record_results_page(batch_id, limit=page_size, raw=True)
        yield from PageBuffer(m.BatchRecordResult, max_bytes).tables(self.pages(call))

    # --- records and account -------------------------------------------------------------

    def list_records(self, type: str | None = None, search: str | None = None) -> list[m.Record]:
        """Return every record, optionally of one ``type``, paging through the listing."""
        return [r for page in self.pages(core.list_records_page(type, search)) for r in page.items]

    def count_records(self, record_type: str) -> m.RecordCount:
        """Return how many records of ``record_type`` exist, with the API's clock at the time.

        One small request when the listing carries ``totalCount``; otherwise pages through.
        """
        count, as_of = self.request(core.count_records(record_type))
        if count is None:
            count = len(self.list_records(type=record_type))
        return m.RecordCount(record_type=record_type, count=count, as_of=as_of)

    def list_record_types(self) -> dict[str, int]:
        """Return each record type with its record count, found by paging all records."""
        return core.count_types(self.list_records())

    def get_record_schema(self, record_type: str, sample: int | None = None) -> m.RecordSchema:
        """Return the inferred metadata schema of ``record_type``."""
        return self.request(core.get_record_schema(record_type, sample))

    def get_usage_limits(self) -> m.UsageLimits:
        """Return the daily and monthly execution quota usage."""
        return self.request(core.get_usage_limits())
