"""When to retry a failed call and how long to wait first: the one place retries are decided.

Exponential backoff with full jitter (AWS architecture blog's "full jitter"), a server's
``Retry-After`` honoured, and caps on attempts and on total time. The policy only decides; the
client owns the sleeping (an injected ``sleep``, so tests never wait).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

from .errors import (
    RateLimitError,
    RunStartUncertainError,
    RuntypeConnectionError,
    RuntypeError,
)


class RetriedCall(Protocol):
    """What the retry decision needs to know of a call (`_core.Call` is one)."""

    @property
    def method(self) -> str: ...

    @property
    def path(self) -> str: ...

    @property
    def run_target(self) -> tuple[str, str] | None: ...

    @property
    def idempotent(self) -> bool: ...


log = logging.getLogger("runtype_prefect.client")


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and for how long a retryable failure is retried.

    ``max_attempts`` counts every try, the first included; ``max_total_seconds`` bounds the time
    spent waiting between tries; ``max_call_seconds`` bounds the whole call, every attempt's
    request time included (each attempt's timeouts shrink to what is left of it), so a server
    that accepts connections and never answers costs one budget, not attempts × timeout. A
    wait the server asks for (``Retry-After``) that would exceed a bound ends the retries
    instead of being cut short.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_total_seconds: float = 120.0
    max_call_seconds: float = 60.0
    rng: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def backoff(self, attempt: int) -> float:
        """Return the jittered wait before retry number ``attempt`` (1 = first retry)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return float(ceiling * self.rng())

    def delay_before_retry(
        self,
        error: RuntypeError,
        *,
        attempt: int,
        waited: float,
        idempotent: bool,
        elapsed: float = 0.0,
    ) -> float | None:
        """Return seconds to wait before trying again, or None when the error must be raised.

        ``attempt`` is the number of tries made so far, ``waited`` the seconds already spent
        waiting and ``elapsed`` the seconds since the call began. A non-idempotent call
        (starting a run) is retried only when the server certainly did not act on it: a 429,
        or a connection that never reached the server.
        """
        if not error.retryable or attempt >= self.max_attempts:
            return None
        if not idempotent and not certainly_not_processed(error):
            return None
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            delay = error.retry_after
        else:
            delay = self.backoff(attempt)
        if waited + delay > self.max_total_seconds or elapsed + delay >= self.max_call_seconds:
            return None
        return delay


def certainly_not_processed(error: RuntypeError) -> bool:
    """Return True when the server cannot have acted on the request that raised ``error``."""
    if isinstance(error, RateLimitError):
        return True
    return isinstance(error, RuntypeConnectionError) and not error.request_sent


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Return the wait a ``Retry-After`` header asks for, in seconds, or None if absent/invalid.

    Accepts delta-seconds (``"3"``, ``"1.5"``) and HTTP dates; a date in the past means 0.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def delay_or_raise(
    policy: RetryPolicy,
    call: RetriedCall,
    error: RuntypeError,
    *,
    attempt: int,
    waited: float,
    started_at: datetime,
    elapsed: float = 0.0,
) -> float:
    """Return seconds to wait before retrying ``call``; raise the error to surface instead.

    An ambiguous failure of a run-starting call surfaces as `RunStartUncertainError`.
    """
    delay = policy.delay_before_retry(
        error, attempt=attempt, waited=waited, idempotent=call.idempotent, elapsed=elapsed
    )
    if delay is not None:
        log.warning(
            "Runtype %s %s failed (%s); retry %d/%d in %.2fs",
            call.method,
            call.path,
            type(error).__name__,
            attempt,
            policy.max_attempts - 1,
            delay,
        )
        return delay
    if call.run_target and error.retryable and not certainly_not_processed(error):
        flow_id, target = call.run_target
        raise RunStartUncertainError(
            flow_id=flow_id, target=target, started_at=started_at, cause=error
        ) from error
    raise error
