"""Shared fixtures: one sandbox server and one Prefect test server per session; the sandbox is
reset between tests that need a clean slate."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import job_settings

from runtype_prefect.client import RetryPolicy, RuntypeClient
from runtype_prefect.client.sandbox_control import SandboxControl
from runtype_prefect.sandbox import SandboxServer, SandboxSettings

#: A key distinctive enough to search for in logs, artifacts and the database.
SECRET_KEY = "rt_test_SECRET_7f3a9c1e5b"


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    """The sandbox over real loopback HTTP, finishing deferred work at once (time scale 0)."""
    settings = SandboxSettings(seed=7, time_scale=0.0, api_keys=("rt_test_sandbox", SECRET_KEY))
    with SandboxServer(settings) as server:
        yield server


class SandboxAdmin(SandboxControl):
    """The sandbox-only controls, plus lookups the tests need."""

    def flow_for(self, record_type: str) -> str:
        """Return the id of the seeded flow written for ``record_type``."""
        return next(f["id"] for f in self.stats()["flows"] if f["recordType"] == record_type)


@pytest.fixture
def admin(sandbox: SandboxServer) -> Iterator[SandboxAdmin]:
    """Sandbox controls, with the sandbox reset (no batches, no faults) before the test."""
    with SandboxAdmin(sandbox.base_url, api_key=sandbox.api_key) as helper:
        helper.reset()
        yield helper
        helper.faults()
        helper.clock(time_scale=0.0)


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


#: The session server's clocks for lateness, short so the late and missed alerts fire in
#: seconds: a scheduled run is marked Late 1 s after it was due (checked every second), and
#: proactive triggers are evaluated every second.
FAST_LATENESS = {
    "PREFECT_SERVER_SERVICES_LATE_RUNS_AFTER_SECONDS": "1",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_LOOP_SECONDS": "1",
    "PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY": "PT1S",
}


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """One Prefect server for the whole session (it takes ~20 s to start): the CLI's local
    server (`local_prefect`), on a temporary database, with `FAST_LATENESS`."""
    from runtype_prefect.cli.local_prefect import local_prefect_server

    with local_prefect_server(temporary_database=True, server_env=FAST_LATENESS):
        yield


@pytest.fixture
def runtype_env(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point flows at the sandbox through the environment, with a key we can search for."""
    monkeypatch.setenv("RUNTYPE_API_KEY", SECRET_KEY)
    monkeypatch.setenv("RUNTYPE_BASE_URL", sandbox.base_url)
    return SECRET_KEY


@pytest.fixture(scope="session")
def sandbox_warehouse(prefect_api, sandbox: SandboxServer, tmp_path_factory) -> str:
    """A warehouse landed by the nightly flow from the sandbox: two nights of every job."""
    from runtype_prefect.engine.jobs import Job
    from runtype_prefect.flows import nightly

    db = str(tmp_path_factory.mktemp("landed") / "runtype.duckdb")
    admin = SandboxAdmin(sandbox.base_url, api_key=sandbox.api_key)
    admin.reset()
    flows = admin.stats()["flows"]
    jobs = [Job(flow_id=f["id"], record_type=f["recordType"], name=f["name"]) for f in flows]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RUNTYPE_API_KEY", sandbox.api_key)
        mp.setenv("RUNTYPE_BASE_URL", sandbox.base_url)
        for night in ("2026-11-27", "2026-11-28"):
            admin.clock(now=f"{night}T02:00:00Z")
            nightly(
                jobs=jobs,
                run_key=night,
                settings=job_settings(db, waiting={"poll_interval_seconds": 0.02}),
            )
    admin.close()
    return db
