"""A small client for the sandbox-only controls under ``/_sandbox`` (faults, clock, stats).

It lives with the client (plain HTTP, no server code), so flows such as the backfill can drive
a sandbox without importing it.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import httpx

#: The key a sandbox accepts when started without one.
SANDBOX_TEST_KEY = "rt_test_sandbox"


class NotASandboxError(RuntimeError):
    """The base URL does not answer the sandbox-only controls: it is not the sandbox."""


class SandboxControl:
    """Drives a running sandbox: reset, faults, simulated clock, statistics.

    The controls take the sandbox's API key (default: ``$RUNTYPE_API_KEY``, else the test
    key). Raises `NotASandboxError` from `check` when the URL is not a sandbox (e.g. the real
    API).
    """

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 10.0) -> None:
        self.root_url = base_url.rstrip("/").removesuffix("/v1")
        key = api_key or os.environ.get("RUNTYPE_API_KEY") or SANDBOX_TEST_KEY
        self.http = httpx.Client(
            base_url=self.root_url, timeout=timeout, headers={"Authorization": f"Bearer {key}"}
        )

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()

    def check(self) -> dict[str, Any]:
        """Return the sandbox's clock; raise `NotASandboxError` when there is no sandbox."""
        try:
            response = self.http.get("/_sandbox/clock")
        except httpx.HTTPError as exc:
            raise NotASandboxError(
                f"no sandbox answers at {self.root_url} ({exc}): start one (`make server` or"
                " `runtype-prefect sandbox`) or point --sandbox-url / RUNTYPE_BASE_URL at it"
            ) from exc
        if response.status_code == 401:
            raise NotASandboxError(
                f"the sandbox at {self.root_url} refused the API key: use the key it accepts"
                " (RUNTYPE_API_KEY, or the one it printed when it started)"
            )
        if response.status_code != 200:
            raise NotASandboxError(
                f"{self.root_url} has no sandbox controls (HTTP {response.status_code}):"
                " simulated nights need the runtype-prefect sandbox"
            )
        body: dict[str, Any] = response.json()
        return body

    def reset(self) -> None:
        """Forget every batch and result and switch faults off."""
        self.http.post("/_sandbox/reset").raise_for_status()

    def faults(self, **config: object) -> None:
        """Replace the fault switches (no arguments: all off)."""
        self.http.put("/_sandbox/faults", json=config).raise_for_status()

    def script(self, *actions: dict[str, Any]) -> None:
        """Fire exactly these faults (``FaultAction`` fields) on the next matching requests."""
        self.faults(script=list(actions))

    def clock(
        self, *, now: datetime | str | None = None, time_scale: float | None = None
    ) -> dict[str, Any]:
        """Set the simulated time and/or the time scale; return the clock."""
        body: dict[str, Any] = {}
        if now is not None:
            body["now"] = now.isoformat() if isinstance(now, datetime) else now
        if time_scale is not None:
            body["time_scale"] = time_scale
        response = self.http.put("/_sandbox/clock", json=body)
        response.raise_for_status()
        clock: dict[str, Any] = response.json()
        return clock

    def force_status(self, batch_id: str, status: str) -> None:
        """Make the batch report ``status`` while it really goes on (e.g. ``completed`` early)."""
        self.http.put(
            f"/_sandbox/batches/{batch_id}/status", params={"status": status}
        ).raise_for_status()

    def change_record(self, record_id: str) -> dict[str, Any]:
        """Change one record now (its metadata and ``updatedAt``); return it as the API does."""
        response = self.http.post(f"/_sandbox/records/{record_id}/change")
        response.raise_for_status()
        record: dict[str, Any] = response.json()
        return record

    def stats(self) -> dict[str, Any]:
        """Return runs started, requests served, every batch with its ground truth (flow id,
        record type, creation time, step results so far), record types and flows."""
        stats: dict[str, Any] = self.http.get("/_sandbox/stats").json()
        return stats

    def calendar(self, start: str | None = None, end: str | None = None) -> dict[str, Any]:
        """Return what the sandbox plants from ``start`` to ``end`` (ISO dates; default the 30
        nights up to its today): ``{"calm": bool, "nights": [{"night", "planted": [...]}]}``."""
        params = {k: v for k, v in (("start", start), ("end", end)) if v}
        calendar: dict[str, Any] = self.http.get("/_sandbox/calendar", params=params).json()
        return calendar


def sandbox_page_template(base_url: str) -> str:
    """Return the sandbox's batch page URL template for an API base URL
    (``http://127.0.0.1:8765/v1`` → ``http://127.0.0.1:8765/ui/batches/{batch_id}``)."""
    root = base_url.rstrip("/").removesuffix("/v1")
    return f"{root}/ui/batches/{{batch_id}}"
