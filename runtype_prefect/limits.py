"""Prefect global concurrency limits: the API rate limit and the running-batch limit.

The code works without them (``strict=False``); ``runtype-prefect setup`` creates them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import rate_limit
from prefect.exceptions import ObjectNotFound

#: Rate limit on Runtype API requests (slots decay: requests per second).
API_RATE_LIMIT = "runtype-api"
#: Concurrency limit on Runtype batches running at once.
BATCH_CONCURRENCY_LIMIT = "runtype-batches"

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
