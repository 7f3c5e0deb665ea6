"""End to end: a nightly run over 4 record types × 1,000 records against the sandbox at time
scale 0, through Prefect, beside a plain loop that uses the client and the warehouse alone with
the same concurrency, in the same run. Prints the overhead Prefect adds.

The CLI's local Prefect server (or the one PREFECT_API_URL names) is started and warmed up with
one small run before timing. The two sides then take turns for `ROUNDS` rounds (each on a fresh
warehouse and run key) and the medians are compared: one run of each swung 1.42-1.57x on this
2-core machine.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from _prefect import prefect_server

from runtype_prefect.client import RuntypeClient
from runtype_prefect.engine.jobs import Job, JobRun
from runtype_prefect.engine.landing import (
    immediate_status,
    land_batch_results,
    land_records,
)
from runtype_prefect.engine.outcomes import outcome_of
from runtype_prefect.engine.settings import JobSettings, NightSettings, Waiting
from runtype_prefect.engine.starting import start_job
from runtype_prefect.flows import nightly
from runtype_prefect.orchestration.limits import ensure_limits
from runtype_prefect.sandbox import SandboxServer, SandboxSettings
from runtype_prefect.warehouse import Warehouse

SIZES = {"bench_a": 1000, "bench_b": 1000, "bench_c": 1000, "bench_d": 1000}
CONCURRENCY = 4
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3


def fast(db_path: str) -> JobSettings:
    """The Prefect run's settings: the plain loop's polling pace, into ``db_path``."""
    waiting = Waiting(poll_interval_seconds=0.05, max_poll_interval_seconds=0.2)
    return JobSettings(db_path=db_path, waiting=waiting)


def plain_job(client: RuntypeClient, warehouse: Warehouse, job: Job) -> int:
    """The same work as one Prefect job (the same start, wait and landing functions), with the
    client and the warehouse alone."""
    started = start_job(client, warehouse, JobRun(job, "bench"))
    land_records(client, warehouse, job.record_type, "bench")  # while the batch runs, as jobs do
    if started.immediate is not None:
        status = immediate_status(started.batch_id, started.immediate)
    else:
        status = client.wait_for_batch(
            started.batch_id, timeout=600, poll_interval=0.05, max_poll_interval=0.2
        )
    landing = land_batch_results(
        client, warehouse, job, started.batch_id, status, immediate=started.immediate is not None
    )
    warehouse.upsert_batch(
        started.batch_id, outcome=outcome_of(status, complete=landing.complete).value
    )
    return landing.steps


@contextlib.contextmanager
def one_core_busy() -> Iterator[None]:
    """Keep one core busy (a process spinning) for the block: a shared machine's load."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def rounds(jobs: list[Job], tmp: str, label: str) -> tuple[list[float], list[float], int]:
    """Take ``ROUNDS`` turns of the plain loop and the nightly flow; return their seconds and
    the step results landed."""
    plain_times, prefect_times = [], []
    for round_ in range(ROUNDS):
        start = time.perf_counter()
        with (
            RuntypeClient() as client,
            Warehouse(Path(tmp) / f"plain-{label}{round_}.duckdb") as warehouse,
        ):
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                steps = sum(pool.map(lambda j: plain_job(client, warehouse, j), jobs))
            warehouse.publish_snapshot()
        plain_times.append(time.perf_counter() - start)

        start = time.perf_counter()
        results = nightly(
            jobs=jobs,
            run_key=f"bench-{label}{round_}",
            settings=fast(f"{tmp}/prefect-{label}{round_}.duckdb"),
            night=NightSettings(max_concurrent_jobs=CONCURRENCY),
        )
        prefect_times.append(time.perf_counter() - start)
        assert sum(r.records for r in results) == sum(SIZES.values())
    return plain_times, prefect_times, steps


def report(label: str, plain_times: list[float], prefect_times: list[float], jobs: int) -> None:
    """Print one load's medians and Prefect's time per job."""
    plain, prefect = statistics.median(plain_times), statistics.median(prefect_times)
    spread = ", ".join(f"{p / q:.2f}" for p, q in zip(prefect_times, plain_times, strict=True))
    print(f"  {label} (each round's ratio: {spread})")
    print(f"    plain loop, client + warehouse only (baseline) {plain:6.2f} s")
    print(
        f"    Prefect nightly flow                           {prefect:6.2f} s   "
        f"overhead ratio {prefect / plain:.2f}× (target ≤ 1.5×),"
        f" {(prefect - plain) / jobs:.2f} s of Prefect per job (target ≤ 0.3 s)"
    )


def main() -> None:
    settings = SandboxSettings(time_scale=0.0, record_type_sizes=SIZES)
    with prefect_server() as server, SandboxServer(settings) as sandbox:
        os.environ["RUNTYPE_API_KEY"] = sandbox.api_key
        os.environ["RUNTYPE_BASE_URL"] = sandbox.base_url
        flows = sandbox.app.state.sandbox.world.flows.values()
        jobs = [Job(flow_id=f.id, record_type=f.intended_record_type) for f in flows]
        # As `runtype-prefect setup` leaves a server: the nightly takes a batch slot per job
        # (the API rate limit is left out: it would pace both sides' requests differently).
        ensure_limits(api_requests_per_second=None, max_running_batches=CONCURRENCY)
        with tempfile.TemporaryDirectory() as tmp:
            nightly(jobs=jobs[:1], run_key="warm-up", settings=fast(f"{tmp}/warm.duckdb"))
            quiet = rounds(jobs, tmp, "quiet")
            with one_core_busy():
                busy = rounds(jobs, tmp, "busy")
    print(
        f"nightly over {len(jobs)} record types × 1,000 records ({quiet[2]:,} step results), "
        f"{CONCURRENCY} at a time, sandbox at time scale 0, on {server}; medians of {ROUNDS}"
        " rounds"
    )
    report("as the machine is", quiet[0], quiet[1], len(jobs))
    report("busy: one of the cores kept busy by another process", busy[0], busy[1], len(jobs))


if __name__ == "__main__":
    main()
