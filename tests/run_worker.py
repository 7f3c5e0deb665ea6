"""One run in a process of its own, for tests/test_concurrent_runs.py: the ``runtype-nightly``
flow over the jobs given as JSON, or the ``run-record-type`` flow (on-demand, with its
preflight) over the first of them, into the DuckDB file ``argv[2]``. Prints one JSON line with
the run's final state; its Prefect log lines go to stderr."""

from __future__ import annotations

import json
import sys

from helpers import job_settings


def main() -> None:
    from runtype_prefect.engine.jobs import Job
    from runtype_prefect.flows import nightly, run_record_type

    kind, db, run_key, jobs = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    settings = job_settings(
        db, waiting={"poll_interval_seconds": 0.05, "max_poll_interval_seconds": 0.5}
    )
    if kind == "nightly":
        state = nightly(
            jobs=[Job(**job) for job in jobs], run_key=run_key, settings=settings, return_state=True
        )
    else:
        state = run_record_type(**jobs[0], run_key=run_key, settings=settings, return_state=True)
    print(json.dumps({"kind": kind, "state": state.name, "message": state.message}), flush=True)


if __name__ == "__main__":
    main()
