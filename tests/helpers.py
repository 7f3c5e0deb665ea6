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


def read_events(prefix: str, *, resource: str | None = None) -> list[dict]:
    """Return the events the Prefect server (the session's test harness) stored whose name
    starts with ``prefix`` (and whose resource id is ``resource``), oldest first. Events still
    queued in this process are sent first."""
    from prefect.client.orchestration import get_client
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=10, at_exit=False)
    event_filter: dict = {"event": {"prefix": [prefix]}, "order": "ASC"}
    if resource:
        event_filter["resource"] = {"id": [resource]}
    with get_client(sync_client=True) as client:
        response = client.request(
            "POST", "/events/filter", json={"filter": event_filter, "limit": 50}
        )
    return response.json()["events"]


def wait_for_events(prefix: str, count: int, *, resource: str | None = None) -> list[dict]:
    """Return the stored events (as `read_events`) once there are at least ``count``."""
    return wait_for(
        lambda: (
            (events := read_events(prefix, resource=resource)) and len(events) >= count and events
        ),
        f"{count} {prefix} events" + (f" of {resource}" if resource else ""),
        timeout=30,
    )


def latest_preflight_markdown() -> str:
    """Return the markdown of the newest ``runtype-preflight`` artifact on the Prefect server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["runtype-preflight"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    return str(artifact.data)
