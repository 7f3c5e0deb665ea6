"""The demo's work after Prefect is up: the backfill of 7 nights × 4 jobs over the sandbox at
time scale 0 (what `make demo` runs), on the CLI's local Prefect server started before the clock
starts (or the server PREFECT_API_URL names).
Target: ≤ 40 s.
"""

from __future__ import annotations

import os
import tempfile
import time

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")

from _prefect import prefect_server

from runtype_prefect.cli.demo import sandbox_jobs
from runtype_prefect.flows import backfill
from runtype_prefect.orchestration.limits import ensure_limits
from runtype_prefect.rehearsal.backfill import SANDBOX_PACE
from runtype_prefect.sandbox import SandboxServer, SandboxSettings

NIGHTS = 7


def main() -> None:
    with (
        prefect_server() as server,
        SandboxServer(SandboxSettings(time_scale=0.0)) as sandbox,
        tempfile.TemporaryDirectory() as tmp,
    ):
        os.environ["RUNTYPE_API_KEY"] = sandbox.api_key
        os.environ["RUNTYPE_BASE_URL"] = sandbox.base_url
        ensure_limits(api_requests_per_second=None, max_running_batches=4)
        start = time.perf_counter()
        settings = SANDBOX_PACE.model_copy(update={"db_path": f"{tmp}/demo.duckdb"})
        results = backfill(nights=NIGHTS, jobs=sandbox_jobs(sandbox), settings=settings)
        elapsed = time.perf_counter() - start
    jobs = sum(len(r) for r in results.values())
    print(
        f"the demo's backfill, {NIGHTS} nights × 4 jobs ({jobs} jobs) after Prefect is up, on"
        f" {server}:"
        f" {elapsed:.1f} s (target ≤ 40 s), {elapsed / NIGHTS:.1f} s a night"
    )


if __name__ == "__main__":
    main()
