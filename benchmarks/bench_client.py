"""Client throughput: step-result rows per second paged from the sandbox by the client (models
and Arrow tables), beside a raw httpx loop over the same pages in the same run; and the HTTP
requests one deferred 1,200-record batch costs from start to the last step-result page.

Run with ``make bench``. Ratios matter; absolute figures drift between machines.
"""

from __future__ import annotations

import statistics
import time

import httpx

from runtype_prefect.client import RuntypeClient
from runtype_prefect.client.sandbox_control import SandboxControl
from runtype_prefect.sandbox import SandboxServer, SandboxSettings

REPEATS = 5


def best_of(fn, repeats: int = REPEATS) -> tuple[float, int]:
    """Return (median seconds, rows) over ``repeats`` runs of ``fn``."""
    times, rows = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        rows = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), rows


def main() -> None:
    with SandboxServer(SandboxSettings(time_scale=0.0)) as sandbox:
        stats = SandboxControl(sandbox.base_url, api_key=sandbox.api_key).stats
        flow_id = next(f["id"] for f in stats()["flows"] if f["recordType"] == "lead")
        with RuntypeClient(sandbox.api_key, sandbox.base_url) as client:
            before = stats()["requestsServed"]
            run = client.run_on_record_type(flow_id, "lead")
            polls = 0
            while not client.get_batch_status(run.batch_id).status.is_terminal:
                polls += 1
                time.sleep(0.05)
            n_records = sum(len(p.items) for p in client.iter_batch_record_results(run.batch_id))
            n_steps = sum(
                len(p.items)
                for p in client.iter_step_results(flow_id, batch_execution_id=run.batch_id)
            )
            requests = stats()["requestsServed"] - before - 1  # minus the stats call itself

            def raw() -> int:
                rows, offset = 0, 0
                headers = {"Authorization": f"Bearer {sandbox.api_key}"}
                with httpx.Client(base_url=sandbox.base_url + "/", headers=headers) as http:
                    while True:
                        params = {"batchExecutionId": run.batch_id, "limit": 100, "offset": offset}
                        body = http.get(f"flows/{flow_id}/step-results", params=params).json()
                        rows += len(body["data"])
                        offset += len(body["data"])
                        if not body["pagination"]["hasMore"]:
                            return rows

            def tables() -> int:
                parts = client.iter_step_result_tables(flow_id, batch_execution_id=run.batch_id)
                return sum(t.num_rows for t in parts)

            def sync() -> int:
                pages = client.iter_step_results(flow_id, batch_execution_id=run.batch_id)
                return sum(len(p.items) for p in pages)

            raw_s, raw_rows = best_of(raw)
            sync_s, sync_rows = best_of(sync)
            tables_s, tables_rows = best_of(tables)
    assert raw_rows == sync_rows == tables_rows == n_steps
    print(f"step results paged: {n_steps} rows in {-(-n_steps // 100)} pages (median of {REPEATS})")
    print(f"  raw httpx loop (baseline) {raw_rows / raw_s:>9,.0f} rows/s")
    print(
        f"  RuntypeClient             {sync_rows / sync_s:>9,.0f} rows/s   "
        f"ratio {raw_s / sync_s:.2f} of baseline"
    )
    print(
        f"  RuntypeClient, Arrow tables {tables_rows / tables_s:>7,.0f} rows/s   "
        f"ratio {raw_s / tables_s:.2f} of baseline (what landing uses)"
    )
    print(
        f"one deferred batch of {n_records} records, start to last step page: {requests} "
        f"HTTP requests (1 start, {polls + 1} status, {-(-n_records // 100)} record pages, "
        f"{-(-n_steps // 100)} step pages; the step count, and so the pages, vary by draw)"
    )


if __name__ == "__main__":
    main()
