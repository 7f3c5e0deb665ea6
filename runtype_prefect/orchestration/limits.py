"""Prefect global concurrency limits: the API rate limit and the running-batch limit.

The code works without them (``strict=False``); ``runtype-prefect setup`` creates them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass

import httpx
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency, rate_limit
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

#: Rate limit on Runtype API requests (slots decay: requests per second).
API_RATE_LIMIT = "runtype-api"
#: Concurrency limit on Runtype batches running at once.
BATCH_CONCURRENCY_LIMIT = "runtype-batches"
#: Prefix of the per-flow limits (1 slot each) that serialise starting runs of one flow.
START_LIMIT_PREFIX = "runtype-start-"
#: Longest wait for a flow's start slot before the job fails (another start is stuck).
START_SLOT_TIMEOUT = 600.0
#: A start slot's lease (the server's minimum): a holder renews it while it runs; once a
#: holder dies, the server's repossessor frees the slot when the lease expires. Every server
#: this product starts runs the repossessor over leases kept in files (`local_prefect`).
START_LEASE_SECONDS = 60.0

_local_start_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_known_start_limits: set[str] = set()
_registry_lock = threading.Lock()

log = logging.getLogger(__name__)


def ensure_limits(
    *, api_requests_per_second: float | None = 20.0, max_running_batches: int = 4
) -> dict:
    """Create or update the global concurrency limits (the API rate limit only when
    ``api_requests_per_second`` is given); return {name: "created"|"updated"}."""
    wanted: dict[str, tuple[int, float | None]] = {
        BATCH_CONCURRENCY_LIMIT: (max_running_batches, None)
    }
    if api_requests_per_second is not None:
        wanted[API_RATE_LIMIT] = (max(1, int(api_requests_per_second)), api_requests_per_second)
    done = {}
    with get_client(sync_client=True) as client:
        for name, (limit, decay) in wanted.items():
            try:
                client.read_global_concurrency_limit_by_name(name)
                done[name] = "updated"
            except ObjectNotFound:
                done[name] = "created"
            client.upsert_global_concurrency_limit_by_name(
                name=name, limit=limit, slot_decay_per_second=decay
            )
    return done


_limits_by_run: dict[str, frozenset[str]] = {}


def existing_limits(run_id: str | None) -> frozenset[str]:
    """Return the names of this project's global concurrency limits that exist, looked up
    once per flow run (pass the root run's id: a night's jobs share one look-up). The first
    look-up that finds one missing logs it once, naming the command that creates it."""
    key = run_id or ""
    with _registry_lock:
        known = _limits_by_run.get(key)
    if known is not None:
        return known
    with get_client(sync_client=True) as client:
        found = [
            limit
            for limit in client.read_global_concurrency_limits(limit=200)
            if limit.name in (API_RATE_LIMIT, BATCH_CONCURRENCY_LIMIT)
        ]
    names = frozenset(limit.name for limit in found)
    for limit in found:
        if limit.name != API_RATE_LIMIT:
            continue
        if limit.slot_decay_per_second:
            _limit_shapes[limit.name] = (limit.limit, limit.slot_decay_per_second)
        else:
            log.warning(
                "%r has no slot decay, so it is not a rate limit: API requests are not rate"
                " limited (`runtype-prefect setup` recreates it)",
                API_RATE_LIMIT,
            )
    with _registry_lock:
        if key not in _limits_by_run:
            if BATCH_CONCURRENCY_LIMIT not in names:
                log.warning(
                    "no %r limit on this Prefect server: batches are not limited"
                    " (`runtype-prefect setup` creates it)",
                    BATCH_CONCURRENCY_LIMIT,
                )
            if API_RATE_LIMIT not in names:
                log.info("no %r limit: API requests are not rate limited", API_RATE_LIMIT)
            if len(_limits_by_run) > 1000:  # a long-lived worker: forget old runs
                _limits_by_run.clear()
            _limits_by_run[key] = names
    return names


def batch_slot(limits: frozenset[str]) -> AbstractContextManager[object]:
    """Return a context holding one slot of the running-batch limit, or nothing when the
    limit does not exist (see `existing_limits`)."""
    if BATCH_CONCURRENCY_LIMIT not in limits:
        return nullcontext()
    return concurrency(BATCH_CONCURRENCY_LIMIT, occupy=1, strict=False)


class LeasedTokens:
    """Tokens of a Prefect rate limit leased in blocks and spent locally.

    A rate limit is a global concurrency limit whose slots decay (``limit`` slots, freed at
    ``rate`` per second). Taking one slot per request costs one Prefect round trip per Runtype
    request; this leases ``block`` slots in one call and spends them one request at a time.
    Every token spent is a slot the server granted, so all processes together stay within
    ``limit + rate × t`` requests. A leased slot frees itself after ``block / rate`` seconds,
    so unspent tokens expire then: a token kept longer would let this process spend a burst
    the server has already given to others. Thread-safe; one per limit per process.
    """

    def __init__(
        self,
        lease: Callable[[int], None],
        *,
        block: int,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if block < 1 or rate <= 0:
            raise ValueError("block must be ≥ 1 and rate > 0")
        self._lease = lease
        self.block = block
        self._ttl = block / rate
        self._clock = clock
        self._tokens = 0
        self._expires = 0.0
        self._lock = threading.Lock()
        #: How many leases (Prefect round trips) this bucket made.
        self.leases = 0

    def take(self) -> None:
        """Spend one token, leasing a block first (waiting for the server to grant it) when
        none is left or the last block expired."""
        with self._lock:
            if self._tokens == 0 or self._clock() >= self._expires:
                self._lease(self.block)
                self.leases += 1
                self._tokens = self.block
                self._expires = self._clock() + self._ttl
            self._tokens -= 1


#: Most slots of the API rate limit leased at once (one Prefect round trip per this many
#: Runtype requests); at most half the limit, so two workers can always both progress.
LEASE_BLOCK = 10

_buckets: dict[tuple[str, int, float], LeasedTokens] = {}
_limit_shapes: dict[str, tuple[int, float]] = {}


def leased_tokens(name: str, limit: int, rate: float) -> LeasedTokens:
    """Return this process's bucket for the rate limit ``name`` (``limit`` slots decaying at
    ``rate`` per second), created on first use."""
    key = (name, limit, rate)  # a limit changed on the server gets a new bucket
    with _registry_lock:
        bucket = _buckets.get(key)
        if bucket is None:
            block = max(1, min(LEASE_BLOCK, limit // 2))

            def lease(slots: int) -> None:
                rate_limit(name, occupy=slots, strict=False)

            bucket = _buckets[key] = LeasedTokens(lease, block=block, rate=rate)
        return bucket


def api_rate_limit_hook(limits: frozenset[str]) -> Callable[[httpx.Request], None] | None:
    """Return an HTTP request hook spending one token of the API rate limit (leased from
    Prefect in blocks, see `LeasedTokens`), or None when the limit does not exist (see
    `existing_limits`)."""
    shape = _limit_shapes.get(API_RATE_LIMIT)
    if API_RATE_LIMIT not in limits or shape is None:
        return None
    bucket = leased_tokens(API_RATE_LIMIT, *shape)

    def hook(request: httpx.Request) -> None:
        bucket.take()

    return hook


#: Start-slot acquisitions of this process go to the Prefect API one at a time: concurrent
#: writes to a SQLite-backed server collide and each then backs off ~2 s (measured: 4 threads
#: acquiring 4 different limits at once took 2.0-2.5 s each, one at a time 0.2-0.3 s in all).
#: Only the acquisition is serialised (one call, never abandoned half-way: an acquisition that
#: times out can still be granted and leak the slot); releases go straight through.
_acquire_lock = threading.Lock()


def _acquire_start_slot(held: ExitStack, name: str, timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    if not _acquire_lock.acquire(timeout=timeout_seconds):
        raise TimeoutError(f"waited {timeout_seconds:.0f}s to ask for the start slot {name!r}")
    try:
        # The lease outlives a crashed holder by at most a minute, where the server runs
        # Prefect's repossessor (a full server; our local server too).
        held.enter_context(
            concurrency(
                name,
                occupy=1,
                timeout_seconds=max(1.0, deadline - time.monotonic()),
                lease_duration=START_LEASE_SECONDS,
                strict=True,
            )
        )
    finally:
        _acquire_lock.release()


def start_limit_name(flow_id: str) -> str:
    """Return the name of the global concurrency limit that serialises starts of ``flow_id``."""
    return START_LIMIT_PREFIX + flow_id


@contextmanager
def start_slot(flow_id: str, *, timeout_seconds: float = START_SLOT_TIMEOUT) -> Iterator[None]:
    """Hold the one start slot of ``flow_id``: at most one start of a flow is in doubt at once.

    The batch summary names batches by flow only, so two starts of one flow in doubt at the
    same time could not be told apart. Threads of one process queue on a lock (instant
    hand-over); processes and machines queue on a Prefect global concurrency limit of one
    slot, created on first use. Raises `TimeoutError` after ``timeout_seconds``.
    """
    name = start_limit_name(flow_id)
    with _registry_lock:
        lock = _local_start_locks[flow_id]
    if not lock.acquire(timeout=timeout_seconds):
        raise TimeoutError(f"waited {timeout_seconds:.0f}s for the start slot of {flow_id}")
    try:
        if name not in _known_start_limits:
            with get_client(sync_client=True) as client:
                try:
                    client.read_global_concurrency_limit_by_name(name)
                except ObjectNotFound:
                    # Workers on a pool meet the flow's first start together: one creates
                    # the limit, the others find it made.
                    with contextlib.suppress(ObjectAlreadyExists):
                        client.upsert_global_concurrency_limit_by_name(name=name, limit=1)
            _known_start_limits.add(name)
        with ExitStack() as held:
            _acquire_start_slot(held, name, timeout_seconds)
            yield
    finally:
        lock.release()


#: The flows whose runs hold this project's slots.
OUR_FLOWS = ("runtype-nightly", "run-record-type", "runtype-backfill")


@dataclass(frozen=True)
class TakenSlots:
    """A concurrency limit of this project (not a rate limit) with slots taken."""

    name: str
    active_slots: int
    limit: int


def taken_slots() -> list[TakenSlots]:
    """Return this project's concurrency limits (start slots, running batches) that hold
    slots now; rate limits are left out (their slots decay on their own)."""
    with get_client(sync_client=True) as client:
        limits = client.read_global_concurrency_limits(limit=200)
    return sorted(
        (
            TakenSlots(limit.name, limit.active_slots, limit.limit)
            for limit in limits
            if limit.name.startswith((START_LIMIT_PREFIX, BATCH_CONCURRENCY_LIMIT))
            and limit.active_slots > 0
            and not limit.slot_decay_per_second
        ),
        key=lambda taken: taken.name,
    )


def active_runs() -> int:
    """Return how many flow runs of this project are pending, running or being cancelled:
    the only runs that may hold its slots."""
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    states = [StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=list(OUR_FLOWS))),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=states))
            ),
            limit=200,
        )
    return len(runs)


def release_slots(names: list[str]) -> None:
    """Free every slot of the limits ``names`` (their holders are gone: see `active_runs`)."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    with get_client(sync_client=True) as client:
        for name in names:
            client.update_global_concurrency_limit(
                name, GlobalConcurrencyLimitUpdate(active_slots=0)
            )
