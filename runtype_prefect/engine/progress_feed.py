"""Batch progress for whoever runs the flows in this process: the command line's display.

Flows publish, listeners (if any) receive; no Prefect here, and a listener's failure never
reaches a flow.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobProgress:
    """Where one job's batch stands."""

    job: str  # the job as run names show it, e.g. "Lead Enrichment · lead"
    run_key: str
    processed: int
    total: int
    status: str  # the batch's remote status, then the job's outcome


Listener = Callable[[JobProgress], None]

_listeners: list[Listener] = []
_lock = threading.Lock()


@contextmanager
def listen(listener: Listener) -> Iterator[None]:
    """Call ``listener`` with every `JobProgress` published in this process while inside."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)


def publish(progress: JobProgress) -> None:
    """Hand ``progress`` to every listener; a failing listener is logged, never raised."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(progress)
        except Exception as exc:  # a display must never fail a job
            log.debug("progress listener failed: %s", exc)
