"""Landing real batches from the sandbox over loopback HTTP, without Prefect: 10 deferred
batches of 1,200 records, each landed by the client and the landing path (`land_batch_results`:
record and step pages → Arrow tables → INSERT/MERGE, overlapped) beside the floor: a raw httpx
loop over the same pages, every row into one Arrow table per table and one INSERT each. Target:
≤ 1.5× the floor's time.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import httpx
import pyarrow as pa

from runtype_prefect.client import RuntypeClient
from runtype_prefect.engine.jobs import Job
from runtype_prefect.engine.landing import land_batch_results
from runtype_prefect.sandbox import SandboxServer, SandboxSettings
from runtype_prefect.warehouse import Warehouse

BATCHES = 10
RECORDS = 1200


def pages(http: httpx.Client, path: str, params: dict) -> list[dict]:
    rows, offset = [], 0
    while True:
        body = http.get(path, params={**params, "limit": 100, "offset": offset}).json()
        rows.extend(body["data"])
        offset += len(body["data"])
        if not body["pagination"]["hasMore"] or not body["data"]:
            return rows


def floor(sandbox: SandboxServer, flow_id: str, batch_ids: list[str], db: Path) -> float:
    """httpx → all rows → one Arrow table per table → one INSERT each (no validation, no
    upsert, unbounded memory)."""
    start = time.perf_counter()
    headers = {"Authorization": f"Bearer {sandbox.api_key}"}
    records, steps = [], []
    with httpx.Client(base_url=sandbox.base_url + "/", headers=headers) as http:
        for batch_id in batch_ids:
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
    with Warehouse(db) as w:
        cur = w._con.cursor()
        cur.register("r", record_table)
        cur.register("s", step_table)
        cur.execute(
            "INSERT INTO record_results (batch_id, record_id, status, record_type, flow_id,"
            " success, landed_at) SELECT *, now() FROM r"
        )
        cur.execute(
            f"INSERT INTO step_results ({', '.join(step_table.column_names)}) SELECT * FROM s"
        )
    return time.perf_counter() - start


def main() -> None:
    settings = SandboxSettings(time_scale=0.0)  # the lead job: 1,200 records, ~5 steps each
    with SandboxServer(settings) as sandbox, tempfile.TemporaryDirectory() as tmp:
        with RuntypeClient(sandbox.api_key, sandbox.base_url) as client:
            flow_id = next(
                f.id
                for f in sandbox.app.state.sandbox.world.flows.values()
                if f.intended_record_type == "lead"
            )
            job = Job(flow_id=flow_id, record_type="lead")
            batch_ids = []
            for _ in range(BATCHES):
                run = client.run_on_record_type(flow_id, "lead")
                batch_ids.append(run.batch_id)
            statuses = [
                client.wait_for_batch(b, timeout=600, poll_interval=0.05) for b in batch_ids
            ]
            floor_s = floor(sandbox, flow_id, batch_ids, Path(tmp) / "floor.duckdb")
            with Warehouse(Path(tmp) / "ours.duckdb") as w:
                start = time.perf_counter()
                steps = 0
                for batch_id, status in zip(batch_ids, statuses, strict=True):
                    # what the start leaves behind: the batch's row, before its results land
                    w.upsert_batch(
                        batch_id, flow_id=flow_id, record_type="lead", status="queued", run_key="b"
                    )
                    steps += land_batch_results(
                        client, w, job, batch_id, status, immediate=False
                    ).steps
                ours = time.perf_counter() - start
    print(
        f"landing {BATCHES} batches of {RECORDS:,} records ({steps:,} step results) from the"
        " sandbox over loopback HTTP, no Prefect"
    )
    print(f"  floor: httpx → one Arrow table → one INSERT {floor_s:6.2f} s")
    print(
        f"  client + landing path                      {ours:6.2f} s   {ours / floor_s:.2f}× the"
        " floor (target ≤ 1.5×)"
    )


if __name__ == "__main__":
    main()
