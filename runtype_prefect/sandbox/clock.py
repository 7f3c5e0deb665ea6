"""The sandbox's simulated clock: a settable "now" that runs at wall speed from its anchor.

Batches run on simulated time: a deferred batch's records finish ``time_scale`` wall seconds
per simulated second (0 = at once), so many nights of history take seconds to produce.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class SimClock:
    """A simulated UTC clock; ``monotonic`` is injectable for tests."""

    def __init__(
        self,
        start: datetime | None = None,
        *,
        time_scale: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._monotonic = monotonic
        self.time_scale = time_scale
        self.set(start or datetime.now(UTC))

    def set(self, now: datetime) -> None:
        """Jump the clock to ``now`` (a timezone-aware datetime)."""
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        self._anchor = now.astimezone(UTC)
        self._wall_anchor = self._monotonic()

    def now(self) -> datetime:
        """Return the current simulated time."""
        return self._anchor + timedelta(seconds=self._monotonic() - self._wall_anchor)

    def advance_to(self, when: datetime) -> None:
        """Move the clock forward to ``when`` if it is later than now; never backwards."""
        if when > self.now():
            self.set(when)

    def wall(self) -> float:
        """Return the monotonic wall time used to pace batches."""
        return self._monotonic()
