"""Prefect global concurrency limits: the API rate limit and the running-batch limit.

The code works without them (``strict=False``); ``runtype-prefect setup`` creates them.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency, rate_limit
from prefect.exceptions import ObjectNotFound

#: Rate limit on Runtype API requests (slots decay: requests per second).
API_RATE_LIMIT = "runtype-api"
#: Concurrency limit on Runtype batches running at once.
BATCH_CONCURRENCY_LIMIT = "runtype-batches"
#: Prefix of the per-flow limits (1 slot each) that serialise starting runs of one flow.
START_LIMIT_PREFIX = "runtype-start-"
#: Longest wait for a flow's start slot before the job fails (another start is stuck).
START_SLOT_TIMEOUT = 600.0

_local_start_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_known_start_limits: set[str] = set()
_registry_lock = threading.Lock()

log = logging.getLogger(__name__)


def ensure_limits(*, api_requests_per_second: float = 20.0, max_running_batches: int = 4) -> dict:
    """Create or update both global concurrency limits; return {name: "created"|"updated"}."""
    wanted = {
        API_RATE_LIMIT: (max(1, int(api_requests_per_second)), api_requests_per_second),
        BATCH_CONCURRENCY_LIMIT: (max_running_batches, None),
    }
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


def api_rate_limit_hook() -> Callable[[httpx.Request], None] | None:
    """Return an HTTP request hook taking a slot of the API rate limit, or None when unset.

    Checking once avoids a round trip to the Prefect API per request when no limit exists.
    """
    try:
        with get_client(sync_client=True) as client:
            client.read_global_concurrency_limit_by_name(API_RATE_LIMIT)
    except ObjectNotFound:
        log.info(
            "no %r rate limit (run `runtype-prefect setup`); not rate limiting", API_RATE_LIMIT
        )
        return None

    def hook(request: httpx.Request) -> None:
        rate_limit(API_RATE_LIMIT, occupy=1, strict=False)

    return hook


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
                    client.upsert_global_concurrency_limit_by_name(name=name, limit=1)
            _known_start_limits.add(name)
        # The lease outlives a crashed holder by at most a minute (the server's minimum).
        with concurrency(
            name, occupy=1, timeout_seconds=timeout_seconds, lease_duration=60, strict=True
        ):
            yield
    finally:
        lock.release()
