"""Small helpers shared by test modules (import as ``from helpers import ...``)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

from runtype_prefect.engine.settings import JobSettings

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


def worker_environ(sandbox, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a run in a process of its own: the session's Prefect server, the
    sandbox, a Prefect home of its own and this checkout on the path; ``extra`` on top."""
    from prefect.settings import get_current_settings

    return {
        **os.environ,
        **extra,
        "PREFECT_API_URL": str(get_current_settings().api.url),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "RUNTYPE_API_KEY": sandbox.api_key,
        "RUNTYPE_BASE_URL": sandbox.base_url,
        "PYTHONPATH": str(Path(__file__).parent.parent),  # the checkout, for an editable-less run
    }


def read_lines(stream: IO[str]) -> tuple[list[str], threading.Thread]:
    """Return a list that a daemon thread fills with ``stream``'s lines as they come (a child
    process's output, read without blocking the test), and that thread."""
    lines: list[str] = []

    def read() -> None:
        for line in stream:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return lines, reader


def report_payload(page: str) -> tuple[str, dict]:
    """Return what a report page carries packed (`analytics.payload`): plotly.js and the
    figures (``{"templates": [...], "figures": {element id: {"data", "layout", ...}}}``)."""
    import base64
    import gzip
    import json
    import re

    def unpacked(element_id: str) -> str:
        found = re.search(
            rf'<script id="{element_id}" type="application/gzip\+base64">(.*?)</script>', page, re.S
        )
        assert found, f"no packed {element_id} in the page"
        return gzip.decompress(base64.b64decode(found.group(1))).decode()

    return unpacked("plotly-js"), json.loads(unpacked("figures"))


#: Polling fast enough for the sandbox at time scale 0 (a test waits milliseconds, not seconds).
FAST_WAITING = {"poll_interval_seconds": 0.02, "max_poll_interval_seconds": 0.1}


def job_settings(
    db: str | os.PathLike[str] | None = None,
    *,
    fast: bool = False,
    waiting: dict[str, float] | None = None,
    **fields: object,
) -> JobSettings:
    """Return job settings landing into ``db``; ``fast`` polls as `FAST_WAITING`, ``waiting``
    sets further waiting fields, ``fields`` the other `JobSettings` fields."""
    pace = {**(FAST_WAITING if fast else {}), **(waiting or {})}
    return JobSettings.model_validate(
        {"db_path": str(db) if db is not None else None, "waiting": pace, **fields}
    )


def undo_setup() -> None:
    """Remove what `run_setup` made on the session's Prefect server (limits, work pool, alert
    automations): the server is shared, and limits left behind would throttle other tests."""
    from prefect.client.orchestration import get_client

    from runtype_prefect.orchestration.automations import TAG
    from runtype_prefect.orchestration.limits import API_RATE_LIMIT, BATCH_CONCURRENCY_LIMIT
    from runtype_prefect.orchestration.provisioning import WORK_POOL

    with get_client(sync_client=True) as client:
        for name in (API_RATE_LIMIT, BATCH_CONCURRENCY_LIMIT):
            client.delete_global_concurrency_limit_by_name(name)
        client.delete_work_pool(WORK_POOL)
        for automation in client.read_automations():
            if TAG in automation.tags:
                client.delete_automation(automation.id)
