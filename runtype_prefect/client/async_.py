"""`AsyncRuntypeClient`: the asyncio twin of `RuntypeClient` over one pooled `httpx.AsyncClient`.

Every call is described once in `_core`; this class only awaits the I/O and the sleeps, so its
results and errors are exactly those of the sync client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
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


class AsyncRuntypeClient:
    """Asynchronous client for the Runtype ``/v1`` API; same methods as `RuntypeClient`.

    Raises ValueError for a missing key or an unsafe base URL.
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        *,
        timeout: float | httpx.Timeout = config.DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        request_hooks: list[Callable[[httpx.Request], Awaitable[None]]] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api_key = config.resolve_api_key(api_key)
        self.base_url = config.resolve_base_url(base_url)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=config.default_headers(self._api_key),
            timeout=timeout,
            verify=config.tls_context(),
            transport=transport,
            event_hooks={"request": list(request_hooks or [])},
        )

    def __repr__(self) -> str:
        return f"AsyncRuntypeClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> AsyncRuntypeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    async def request(self, call: core.Call[R]) -> R:
        """Send ``call`` with the retry policy and return its parsed result (see sync twin)."""
        attempt, waited, started_at, began = 0, 0.0, datetime.now(UTC), self._clock()
        while True:
            attempt += 1
            remaining = self.retry.max_call_seconds - (self._clock() - began)
            request = core.build_request(self._http, call, remaining=remaining)
            try:
                response = await self._http.send(request)
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
            await self._sleep(delay)
            waited += delay

    async def pages(self, call: core.PageCall) -> AsyncIterator[Any]:
        """Yield every page of a listing, starting with ``call`` (a `Page` of models, or a
        `RawPage` for a ``raw`` call)."""
        next_call: core.PageCall | None = call
        while next_call is not None:
            page, next_call = await self.request(next_call)
            yield page

    async def _all(self, call: core.PageCall) -> list[Any]:
        return [item async for page in self.pages(call) for item in page.items]

    async def list_flows(self) -> list[m.FlowSummary]:
        """Return every flow of the account (see `RuntypeClient.list_flows`)."""
        return await self._all(core.list_flows_page())

    async def get_flow(self, flow_id: str) -> m.Flow:
        """Return one flow with its steps (see `RuntypeClient.get_flow`)."""
        return await self.request(core.get_flow(flow_id))

    async def run_on_record_type(self, flow_id: str, record_type: str) -> m.RunStart:
        """Start a run over a record type (see `RuntypeClient.run_on_record_type`)."""
        return await self.request(core.run_on_record_type(flow_id, record_type))

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
    ) -> AsyncIterator[m.Page[m.StepResult]]:
        """Yield pages of step results (see `RuntypeClient.iter_step_results`)."""
        return self.pages(
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

    async def iter_step_result_tables(
        self,
        flow_id: str,
        *,
        batch_execution_id: str | None = None,
        page_size: int = core.MAX_PAGE_SIZE,
        max_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> AsyncIterator[pa.Table]:
        """Yield step results as Arrow tables (see `RuntypeClient.iter_step_result_tables`)."""
        call = core.step_results_page(
            flow_id, batch_execution_id=batch_execution_id, limit=page_size, raw=True
        )
        async for table in PageBuffer(m.StepResult, max_bytes).atables(self.pages(call)):
            yield table

    async def get_batch_status(self, batch_id: str) -> m.BatchStatus:
        """Return a batch's status (see `RuntypeClient.get_batch_status`)."""
        return await self.request(core.get_batch_status(batch_id))

    async def get_batch_summary(self) -> m.BatchSummary:
        """Return active and recent batches (see `RuntypeClient.get_batch_summary`)."""
        return await self.request(core.get_batch_summary())

    async def cancel_batch(self, batch_id: str) -> m.CancelResult:
        """Cancel a batch (see `RuntypeClient.cancel_batch`)."""
        return await self.request(core.cancel_batch(batch_id))

    async def wait_for_batch(
        self,
        batch_id: str,
        *,
        timeout: float,
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
        incomplete_grace: float | None = None,
        on_status: Callable[[m.BatchStatus], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> m.BatchStatus:
        """Poll the batch until it has ended (see `RuntypeClient.wait_for_batch`); cancelling
        the awaiting task stops the wait too."""
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
                status = await self.get_batch_status(batch_id)
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
            await self._sleep(step)

    async def get_batch_cost(self, batch_id: str) -> m.BatchCost:
        """Return a batch's total cost (see `RuntypeClient.get_batch_cost`)."""
        return await self.request(core.get_batch_cost(batch_id))

    def iter_batch_record_results(
        self, batch_id: str, *, status: str | None = None, page_size: int = core.MAX_PAGE_SIZE
    ) -> AsyncIterator[m.Page[m.BatchRecordResult]]:
        """Yield pages of per-record results (see `RuntypeClient.iter_batch_record_results`)."""
        return self.pages(core.batch_record_results_page(batch_id, status=status, limit=page_size))

    async def iter_batch_record_result_tables(
        self,
        batch_id: str,
        *,
        page_size: int = core.MAX_PAGE_SIZE,
        max_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> AsyncIterator[pa.Table]:
        """Yield per-record results as Arrow tables (see
        `RuntypeClient.iter_batch_record_result_tables`)."""
        call = core.batch_record_results_page(batch_id, limit=page_size, raw=True)
        async for table in PageBuffer(m.BatchRecordResult, max_bytes).atables(self.pages(call)):
            yield table

    async def list_records(
        self, type: str | None = None, search: str | None = None
    ) -> list[m.Record]:
        """Return every record, optionally of one type (see `RuntypeClient.list_records`)."""
        return await self._all(core.list_records_page(type, search))

    async def count_records(self, record_type: str) -> m.RecordCount:
        """Return how many records of a type exist (see `RuntypeClient.count_records`)."""
        count, as_of = await self.request(core.count_records(record_type))
        if count is None:
            count = len(await self.list_records(type=record_type))
        return m.RecordCount(record_type=record_type, count=count, as_of=as_of)

    async def list_record_types(self) -> dict[str, int]:
        """Return record counts per type (see `RuntypeClient.list_record_types`)."""
        return core.count_types(await self.list_records())

    async def get_record_schema(
        self, record_type: str, sample: int | None = None
    ) -> m.RecordSchema:
        """Return a record type's schema (see `RuntypeClient.get_record_schema`)."""
        return await self.request(core.get_record_schema(record_type, sample))

    async def get_usage_limits(self) -> m.UsageLimits:
        """Return quota usage (see `RuntypeClient.get_usage_limits`)."""
        return await self.request(core.get_usage_limits())
