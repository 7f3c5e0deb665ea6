"""The whole job path on real batches from the sandbox (in a process of its own, as the API is
remote) over loopback HTTP, without Prefect: 10 deferred batches of 1,200 records, each started
through the ledger (`start_job`), waited for, landed (`land_batch_results`: status, record and
step pages → Arrow tables → INSERT/MERGE, overlapped, cost, the batch's numbers; the records
dimension once a night, while the batch runs) and summed up as the job's result reads it,
beside the floor: a raw httpx loop that starts the same batches, lists the records, polls the
batches and reads the same pages and cost, every row into one Arrow table per table and one
INSERT each, no bookkeeping. Each round (3, or the first argument) runs both on fresh batches;
the ratio is the median of the rounds' ratios. Target: ≤ 1.1× the floor's time.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyarrow as pa
from _sandbox import API_KEY, sandbox_process

from runtype_prefect.client import RuntypeClient
from runtype_prefect.engine.jobs import Job, JobRun
from runtype_prefect.engine.landing import land_batch_results, land_records
from runtype_prefect.engine.settings import JobSettings
from runtype_prefect.engine.starting import start_job
from runtype_prefect.warehouse import Warehouse

BATCHES = 10
RECORDS = 1200
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
LATENCY_MS = 20
POLL = 0.05


def pages(http: httpx.Client, path: str, params: dict) -> list[dict]:
    rows, offset = [], 0
    while True:
        body = http.get(path, params={**params, "limit": 100, "offset": offset}).json()
        rows.extend(body["data"])
        offset += len(body["data"])
        if not body["pagination"]["hasMore"] or not body["data"]:
            return rows


def listing(http: httpx.Client, record_type: str) -> list[dict]:
    """Every record of ``record_type`` (the records listing's cursor pages)."""
    rows, params = [], {"type": record_type, "limit": 100}
    while True:
        body = http.get("records", params=params).json()
        rows.extend(body["data"])
        if not (cursor := body["pagination"].get("nextCursor")):
            return rows
        params = {**params, "cursor": cursor}


def floor(base_url: str, flow_id: str, db: Path) -> float:
    """Start each batch, list the type's records while it runs, poll it to its end, read its
    cost, then httpx → all rows → one Arrow table per table → one INSERT each (no
    validation, no upsert, no ledger, unbounded memory)."""
    start = time.perf_counter()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    records, steps, dimension, costs = [], [], [], []
    with httpx.Client(base_url=base_url + "/", headers=headers) as http:
        for night in range(BATCHES):
            run = http.post(f"flows/{flow_id}/run-on-record-type", json={"recordType": "lead"})
            batch_id = run.json()["batchId"]
            for r in listing(http, "lead"):
                dimension.append(
                    {"record_id": r["id"], "record_type": "lead", "name": r.get("name"),
                     "run_key": f"2026-11-{night + 1:02d}"}
                )  # fmt: skip
            while http.get(f"batch/status/{batch_id}").json()["status"] not in (
                "completed",
                "failed",
                "cancelled",
            ):
                time.sleep(POLL)
            costs.append(http.get(f"batch/{batch_id}/cost").json())
            for r in pages(http, f"schedules/batch/{batch_id}/results", {}):
                records.append(
                    {"batch_id": batch_id, "record_id": r["recordId"], "status": r["status"],
                     "record_type": "lead", "flow_id": flow_id,
                     "success": r["status"] == "completed"}
                )  # fmt: skip
            for s in pages(http, f"flows/{flow_id}/step-results", {"batchExecutionId": batch_id}):
                steps.append(
                    {"id": s["id"], "batch_execution_id": s["batchExecutionId"],
                     "flow_id": s["flowId"], "record_id": s["recordId"], "status": s["status"],
                     "step_name": s["stepName"], "duration_ms": s["durationMs"],
                     "started_at": s["startedAt"], "completed_at": s["completedAt"],
                     "model_used": s["modelUsed"], "total_tokens": s["totalTokens"],
                     "estimated_cost": s["estimatedCost"], "landed_at": "2026-12-02T00:00:00Z"}
                )  # fmt: skip
    record_table = pa.Table.from_pylist(records)
    step_table = pa.Table.from_pylist(steps)
    # the dimension holds each record once, as the last night listed it
    dimension_table = pa.Table.from_pylist(list({r["record_id"]: r for r in dimension}.values()))
    with Warehouse(db) as w:
        cur = w._con.cursor()
        cur.register("r", record_table)
        cur.register("s", step_table)
        cur.register("d", dimension_table)
        cur.execute(
            "INSERT INTO records (record_id, record_type, name, last_run_key, first_landed_at,"
            " last_landed_at) SELECT *, now(), now() FROM d"
        )
        cur.execute(
            "INSERT INTO record_results (batch_id, record_id, status, record_type, flow_id,"
            " success, landed_at) SELECT *, now() FROM r"
        )
        cur.execute(
            f"INSERT INTO step_results ({', '.join(step_table.column_names)}) SELECT * FROM s"
        )
    return time.perf_counter() - start


def with_batch(batch_id: str):
    """Return a dlt map step adding ``batch_id`` to each row."""

    def add(row: dict) -> dict:
        return {**row, "batchId": batch_id}

    return add


def dlt_path(base_url: str, flow_id: str, batch_ids: list[str], db: Path) -> float | None:
    """Land the same batches' record and step results with dlt's ``rest_api`` source into
    DuckDB in its idempotent mode (merge on the keys, parquet files); return the seconds, or
    None when dlt is not installed (`make bench` installs it)."""
    try:
        os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
        import dlt
        from dlt.sources.rest_api import rest_api_source
    except ImportError:
        return None
    paging = {
        "type": "offset",
        "limit": 100,
        "total_path": None,
        "has_more_path": "pagination.hasMore",
    }
    resources = []
    for batch_id in batch_ids:
        resources += [
            {
                "name": f"records_{batch_id}",
                "table_name": "record_results",
                "primary_key": ["batch_id", "record_id"],
                # a record's row does not carry its batch: added as our landing adds it
                "processing_steps": [{"map": with_batch(batch_id)}],
                "endpoint": {
                    "path": f"schedules/batch/{batch_id}/results",
                    "data_selector": "data",
                    "paginator": paging,
                },
            },
            {
                "name": f"steps_{batch_id}",
                "table_name": "step_results",
                "primary_key": "id",
                "endpoint": {
                    "path": f"flows/{flow_id}/step-results",
                    "params": {"batchExecutionId": batch_id},
                    "data_selector": "data",
                    "paginator": paging,
                },
            },
        ]
    source = rest_api_source(
        {
            "client": {
                "base_url": base_url + "/",
                "auth": {"type": "bearer", "token": API_KEY},
            },
            "resource_defaults": {"write_disposition": "merge"},
            "resources": resources,
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{db.stem}",
        pipelines_dir=str(db.parent / "dlt"),
        destination=dlt.destinations.duckdb(str(db)),
        dataset_name="runtype",
    )
    start = time.perf_counter()
    pipeline.run(source, loader_file_format="parquet")
    return time.perf_counter() - start


def job_path(client: RuntypeClient, job: Job, db: Path) -> tuple[float, float, int, list[str]]:
    """Run the job path over ``BATCHES`` nights, one batch each; return (seconds, of which
    landing the results, steps, the batch ids)."""
    start = time.perf_counter()
    steps, batch_ids, landing = 0, [], 0.0
    with Warehouse(db) as w:
        for night in range(BATCHES):
            run = JobRun(job, f"2026-11-{night + 1:02d}", JobSettings())
            started = start_job(client, w, run)
            batch_ids.append(started.batch_id)
            # the records dimension while the batch runs, as the job path does
            land_records(client, w, job.record_type, run.run_key)
            status = client.wait_for_batch(started.batch_id, timeout=600, poll_interval=POLL)
            landing_start = time.perf_counter()
            steps += land_batch_results(
                client, w, job, started.batch_id, status, immediate=False
            ).steps
            landing += time.perf_counter() - landing_start
            # what the job's result reads (the orchestration layer's summary)
            w.query(
                "SELECT records, succeeded FROM batch_runs WHERE batch_id = ?", [started.batch_id]
            )
    return time.perf_counter() - start, landing, steps, batch_ids


@dataclass
class Rounds:
    """Seconds per round of each path, and the step results of the last round."""

    floor: list[float] = field(default_factory=list)
    ours: list[float] = field(default_factory=list)
    #: Of ``ours``, landing the results (what dlt does).
    landing: list[float] = field(default_factory=list)
    dlt: list[float] = field(default_factory=list)
    steps: int = 0


def measure(rounds: int, *sandbox_options: str, with_dlt: bool = False) -> Rounds:
    """Run the floor, the job path (and dlt, landing the job path's batches) ``rounds`` times
    on one sandbox; return their seconds."""
    out = Rounds()
    # the lead job: 1,200 records, ~5 steps each
    options = ("--time-scale", "0", *sandbox_options)
    with sandbox_process(*options) as base_url, tempfile.TemporaryDirectory() as tmp:
        with RuntypeClient(API_KEY, base_url) as client:
            flow_id = next(f.id for f in client.list_flows() if f.name == "Lead Enrichment")
            job = Job(flow_id=flow_id, record_type="lead")
            for round_ in range(rounds):
                out.floor.append(floor(base_url, flow_id, Path(tmp) / f"floor{round_}.duckdb"))
                seconds, landing, out.steps, batch_ids = job_path(
                    client, job, Path(tmp) / f"ours{round_}.duckdb"
                )
                out.ours.append(seconds)
                out.landing.append(landing)
                if with_dlt:
                    took = dlt_path(base_url, flow_id, batch_ids, Path(tmp) / f"dlt{round_}.duckdb")
                    if took is not None:
                        out.dlt.append(took)
    return out


def main() -> None:
    median = statistics.median
    runs = measure(ROUNDS, with_dlt=True)
    ratios = [o / f for o, f in zip(runs.ours, runs.floor, strict=True)]
    print(
        f"the job path over {BATCHES} batches of {RECORDS:,} records (~{runs.steps:,} step"
        " results) from the sandbox (its own process) over loopback HTTP, no Prefect; medians"
        f" of {ROUNDS} rounds (each round's ratio: {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    print(
        "  floor: start, poll, list, httpx → one Arrow table → one INSERT"
        f" {median(runs.floor):6.2f} s"
    )
    print(
        f"  start (ledger), wait, land, cost, records, summary      {median(runs.ours):6.2f} s"
        f"   {median(ratios):.2f}× the floor (target ≤ 1.1×)"
    )
    if runs.dlt:
        print(
            "  landing the same batches' results: the job path's landing"
            f" {median(runs.landing):.2f} s,"
            f" dlt rest_api → DuckDB with merge + parquet {median(runs.dlt):.2f} s: ours is"
            f" {median(runs.dlt) / median(runs.landing):.1f}× faster (target ≥ 2.5×)"
        )
    else:
        print("  dlt is not installed: `make bench` installs it (the bench dependency group)")
    slow = measure(1, "--latency-ms", str(LATENCY_MS))
    print(
        f"  with {LATENCY_MS} ms of latency per request, as a remote API has (one round): floor"
        f" {slow.floor[0]:.2f} s, job path {slow.ours[0]:.2f} s ="
        f" {slow.ours[0] / slow.floor[0]:.2f}× (the record and step results are paged at once;"
        " the records listing runs while the batch does)"
    )


if __name__ == "__main__":
    main()
