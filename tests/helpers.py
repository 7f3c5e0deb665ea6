"""Small helpers shared by test modules (import as ``from helpers import ...``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], what: str, timeout: float = 60.0) -> T:
    """Return ``condition()``'s first truthy value, polling every 0.05 s; fail after
    ``timeout`` seconds naming ``what`` (bounded: tests never wait forever)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
