"""A worker of a pool, for tests/test_shared_warehouse.py: runs the ``run-record-type`` flow for
each job-night given as JSON on the command line, against the shared warehouse at ``--db``, and
prints one JSON line per finished run. The environment carries the Prefect API, the Runtype
sandbox and the S3 endpoint."""

from __future__ import annotations

import json
import sys

from helpers import job_settings


def main() -> None:
    from runtype_prefect.flows import run_record_type

    db, jobs = sys.argv[1], json.loads(sys.argv[2])
    for job in jobs:
        state = run_record_type(
            flow_id=job["flow_id"],
            record_type=job["record_type"],
            job_name=job["name"],
            run_key=job["run_key"],
            return_state=True,
            settings=job_settings(db, waiting={"poll_interval_seconds": 0.05}, preflight=False),
        )
        result = state.result(raise_on_failure=False)
        print(
            json.dumps(
                {
                    "run_key": job["run_key"],
                    "record_type": job["record_type"],
                    "state": state.name,
                    "message": state.message,
                    "batch_id": getattr(result, "batch_id", None),
                    "records": getattr(result, "records", None),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
