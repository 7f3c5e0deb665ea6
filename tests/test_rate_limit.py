"""The API rate limit: tokens leased from Prefect's global limit in blocks, spent locally, and
the global limit still bounding every worker together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid

import pytest

from runtype_prefect.orchestration.limits import LeasedTokens


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_lease_per_block_of_requests():
    leased: list[int] = []
    bucket = LeasedTokens(leased.append, block=10, rate=20.0, clock=FakeClock())
    for _ in range(25):
        bucket.take()
    assert leased == [10, 10, 10] and bucket.leases == 3


def test_unspent_tokens_expire_when_their_slots_have_decayed():
    """Slots leased at t free themselves by t + block/rate: spending them later would be a
    burst the server has since granted to someone else."""
    clock = FakeClock()
    leased: list[int] = []
    bucket = LeasedTokens(leased.append, block=10, rate=20.0, clock=clock)
    bucket.take()
    clock.now = 0.49
    bucket.take()
    assert len(leased) == 1
    clock.now = 0.5  # 10 slots at 20/s: gone after 0.5 s
    bucket.take()
    assert len(leased) == 2


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        LeasedTokens(lambda n: None, block=0, rate=1.0)
    with pytest.raises(ValueError):
        LeasedTokens(lambda n: None, block=1, rate=0.0)


WORKER = textwrap.dedent(
    """
    import json, sys, time
    from runtype_prefect.orchestration.limits import leased_tokens
    name, limit, rate, n = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    bucket = leased_tokens(name, limit, rate)
    bucket.take()  # the first lease pays Prefect's client start-up; time from here
    print("ready", flush=True)
    sys.stdin.readline()  # both workers start together
    times = []
    for _ in range(n):
        bucket.take()
        times.append(time.time())
    print(json.dumps({"times": times, "leases": bucket.leases}), flush=True)
    """
)


@pytest.mark.usefixtures("prefect_api")
def test_two_processes_under_one_limit_stay_within_it():
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    name = f"test-rate-{uuid.uuid4().hex[:8]}"
    limit, rate, per_worker = 8, 40.0, 60
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(
            name=name, limit=limit, slot_decay_per_second=rate
        )
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, name, str(limit), str(rate), str(per_worker)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        reports = [json.loads(worker.stdout.readline()) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    times = sorted(t for report in reports for t in report["times"])
    first = times[0]
    # Granted slots never exceed limit + rate × elapsed; every request spent one. The slack
    # covers the tokens each worker held from before the start (less than a block each) and
    # the two processes' clocks being read a few milliseconds apart.
    block = min(10, limit // 2)
    slack = 2 * block + rate * 0.05
    for spent, at in enumerate(times, start=1):
        assert spent <= limit + rate * (at - first) + slack, (spent, at - first)
    # The limit does bind: 120 requests at 40/s take well over a second, not milliseconds.
    assert times[-1] - first >= (len(times) - limit - slack) / rate
    # And one Prefect round trip per block, not per request.
    for report in reports:
        assert report["leases"] <= per_worker // block + 3
