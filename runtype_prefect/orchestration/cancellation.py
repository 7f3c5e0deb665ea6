"""Noticing within seconds that a flow run is being cancelled, from inside its own tasks.

In Prefect 3.9 a cancelled flow run's process is signalled by its worker, and the threads still
polling Runtype keep that process alive (and keep polling, and landing) until the worker's grace
period ends. So waiting tasks watch for the cancellation themselves: the flow run or its root
being ``CANCELLING``/``CANCELLED`` on the Prefect API, or the run's ``on_cancellation`` hook
having fired in this process. They sleep in short slices so they notice promptly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import StateType

#: How often the Prefect API is asked (at most) whether the run is being cancelled.
CHECK_EVERY_SECONDS = 2.0
#: What a job cancelled with its flow run says.
CANCELLED_MESSAGE = "cancelled with the Prefect flow run; its Runtype batch was cancelled too"
_STOPPING = (StateType.CANCELLING, StateType.CANCELLED)

_requested: set[str] = set()
_requested_lock = threading.Lock()


def request_stop(flow_run_id: str) -> None:
    """Tell every watch in this process that covers ``flow_run_id`` to stop (hook side)."""
    with _requested_lock:
        _requested.add(str(flow_run_id))


class CancellationWatch:
    """``should_stop`` and an interruptible ``sleep`` for one job's waiting task.

    Use as a context manager (it holds one Prefect API client). ``read_state``, ``clock`` and
    ``wait`` are injectable for tests.
    """

    def __init__(
        self,
        flow_run_ids: Iterable[str | None],
        *,
        check_every: float = CHECK_EVERY_SECONDS,
        read_state: Callable[[str], StateType | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], None] = time.sleep,
    ) -> None:
        self.flow_run_ids = [str(i) for i in dict.fromkeys(flow_run_ids) if i]
        self.check_every = check_every
        self._read_state = read_state
        self._clock = clock
        self._client: SyncPrefectClient | None = None
        self._checked_at: float | None = None
        self._stopping = False
        self._wait = wait

    def __enter__(self) -> CancellationWatch:
        if self._read_state is None and self.flow_run_ids:
            self._client = get_client(sync_client=True)
            self._client.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            self._client.__exit__(exc_type, exc, tb)
            self._client = None

    def _state_of(self, flow_run_id: str) -> StateType | None:
        if self._read_state is not None:
            return self._read_state(flow_run_id)
        assert self._client is not None
        state = self._client.read_flow_run(UUID(flow_run_id)).state
        return state.type if state else None

    def should_stop(self) -> bool:
        """Return True once the run (or its root) is being cancelled; asks the Prefect API at
        most every ``check_every`` seconds."""
        if self._stopping:
            return True
        with _requested_lock:
            if any(i in _requested for i in self.flow_run_ids):
                self._stopping = True
                return True
        now = self._clock()
        if self._checked_at is not None and now - self._checked_at < self.check_every:
            return False
        self._checked_at = now
        try:
            self._stopping = any(self._state_of(i) in _STOPPING for i in self.flow_run_ids)
        except Exception:  # a Prefect API blip must not fail the wait
            return False
        return self._stopping

    def sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds``, in slices of ``check_every``; return early once stopping."""
        deadline = self._clock() + seconds
        while not self.should_stop():
            left = deadline - self._clock()
            if left <= 0:
                return
            self._wait(min(left, self.check_every))
