"""Shared fixtures: one sandbox server per session, reset between tests that need a clean slate."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from runtype_prefect.client import RetryPolicy, RuntypeClient
from runtype_prefect.sandbox import SandboxServer, SandboxSettings


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    """The sandbox over real loopback HTTP, finishing deferred work at once (time scale 0)."""
    with SandboxServer(SandboxSettings(seed=7, time_scale=0.0)) as server:
        yield server


class SandboxAdmin:
    """Test helper for the sandbox-only ``/_sandbox`` controls."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.root_url, timeout=10)

    def reset(self) -> None:
        self.http.post("/_sandbox/reset").raise_for_status()

    def faults(self, **config) -> None:
        self.http.put("/_sandbox/faults", json=config).raise_for_status()

    def script(self, *actions: dict) -> None:
        self.faults(script=list(actions))

    def stats(self) -> dict:
        return self.http.get("/_sandbox/stats").json()

    def flow_for(self, record_type: str) -> str:
        return next(f["id"] for f in self.stats()["flows"] if f["recordType"] == record_type)

    def set_clock(self, now: str) -> None:
        self.http.put("/_sandbox/clock", json={"now": now}).raise_for_status()


@pytest.fixture
def admin(sandbox: SandboxServer) -> Iterator[SandboxAdmin]:
    """Sandbox controls, with the sandbox reset (no batches, no faults) before the test."""
    helper = SandboxAdmin(sandbox)
    helper.reset()
    yield helper
    helper.faults()
    helper.http.close()


class RecordedSleep:
    """A sleep that records what it was asked to wait instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> RecordedSleep:
    return RecordedSleep()


@pytest.fixture
def client(sandbox: SandboxServer, sleeps: RecordedSleep) -> Iterator[RuntypeClient]:
    """A sync client on the sandbox whose retries sleep through `sleeps` (never for real)."""
    policy = RetryPolicy(max_attempts=4, rng=lambda: 0.5)
    with RuntypeClient(sandbox.api_key, sandbox.base_url, retry=policy, sleep=sleeps) as c:
        yield c
