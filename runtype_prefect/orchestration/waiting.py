"""Following a batch to its end: polling with backoff, a deadline, tolerance for blips."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..client import BatchStatus, RuntypeClient, RuntypeError
from .outcomes import BatchWaitTimeout


def follow_batch(
    client: RuntypeClient,
    batch_id: str,
    *,
    timeout: float,
    poll_interval: float = 5.0,
    max_poll_interval: float = 60.0,
    on_status: Callable[[BatchStatus], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    log: logging.Logger | logging.LoggerAdapter = logging.getLogger(__name__),
) -> BatchStatus:
    """Poll until the batch reaches a terminal status and return that status.

    The interval grows by half each poll up to ``max_poll_interval``; the last poll happens at
    the deadline. A retryable error (429, 5xx, connection) is logged and polling goes on.
    Raises `BatchWaitTimeout` past ``timeout`` seconds, `UnknownBatchStatusError` for a status
    the client does not know, and any non-retryable `RuntypeError` (e.g. 404) at once.
    """
    start = clock()
    interval = poll_interval
    last: BatchStatus | None = None
    while True:
        try:
            status = client.get_batch_status(batch_id)
        except RuntypeError as exc:
            if not exc.retryable:
                raise
            log.warning("polling batch %s: transient error, will poll again: %s", batch_id, exc)
        else:
            last = status
            if on_status is not None:
                on_status(status)
            if status.status.is_terminal:
                return status
        elapsed = clock() - start
        if elapsed >= timeout:
            raise BatchWaitTimeout(batch_id, elapsed, timeout, last)
        sleep(min(interval, timeout - elapsed))
        interval = min(interval * 1.5, max_poll_interval)
