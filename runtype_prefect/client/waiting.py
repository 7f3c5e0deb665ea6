"""When to poll a batch next and when to stop waiting: the rules both clients' `wait_for_batch`
loops follow (the loops only poll and sleep)."""

from __future__ import annotations

from dataclasses import dataclass

from . import models as m
from .errors import BatchWaitTimeout


@dataclass
class BatchWait:
    """When to poll a batch next and when to stop: the one place the waiting rules live.

    The interval grows by half per poll up to ``max_poll_interval``; the last poll happens at
    the deadline. A batch that says ``completed`` with records unprocessed is not done: it is
    polled on for ``incomplete_grace`` seconds (None: until the deadline), then returned as it
    stands, so the caller can land what exists and call it incomplete.
    """

    batch_id: str
    timeout: float
    started: float
    poll_interval: float = 5.0
    max_poll_interval: float = 60.0
    incomplete_grace: float | None = None
    last: m.BatchStatus | None = None
    _short_since: float | None = None

    def __post_init__(self) -> None:
        self._interval = self.poll_interval

    def next(self, status: m.BatchStatus | None, now: float) -> float | m.BatchStatus:
        """Return the final status, or seconds to sleep before the next poll.

        ``status`` is None when the poll failed transiently. Raises `BatchWaitTimeout` at the
        deadline.
        """
        if status is not None:
            self.last = status
            if status.has_ended:
                return status
            if status.is_short:
                self._short_since = now if self._short_since is None else self._short_since
                if (
                    self.incomplete_grace is not None
                    and now - self._short_since >= self.incomplete_grace
                ):
                    return status
        elapsed = now - self.started
        if elapsed >= self.timeout:
            if self.last is not None and self.last.is_short:
                return self.last
            raise BatchWaitTimeout(self.batch_id, elapsed, self.timeout, self.last)
        delay = min(self._interval, self.timeout - elapsed)
        self._interval = min(self._interval * 1.5, self.max_poll_interval)
        return delay
