"""Landing speed and memory: 1,000,000 synthetic step results through the warehouse's landing
path (API models → Arrow → upsert, streamed in chunks) beside a raw DuckDB insert of the same
Arrow table in one statement (the limit), in the same run. Each variant runs in its own process
so its peak memory (max RSS) is its own.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from runtype_prefect.client import Page, StepResult
from runtype_prefect.orchestration.landing import LANDING_CHUNK_ROWS, chunked
from runtype_prefect.warehouse import Warehouse, step_results_table

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
PAGE = 100
BASE = datetime(2026, 11, 1, 2, tzinfo=UTC)


def synthetic_pages(rows: int):
    """Yield pages of API-shaped StepResult models (built without validation, like parsed ones)."""
    for start in range(0, rows, PAGE):
        items = []
        for i in range(start, min(rows, start + PAGE)):
            t = BASE + timedelta(milliseconds=i * 7)
            items.append(
                StepResult.model_construct(
                    id=f"stepres_{i:010d}",
                    batch_execution_id=f"batch_{i // 5000}",
                    execution_session_id=f"sess_{i // 4}",
                    flow_id="flow_bench",
                    flow_version_id="v1",
                    record_id=f"record_{i // 4}",
                    record_name=f"Record {i // 4}",
                    step_id=f"step_{i % 4}",
                    step_name="Qualify lead",
                    step_type="prompt",
                    order=i % 4 + 1,
                    status="failed" if i % 37 == 0 else "completed",
                    started_at=t,
                    completed_at=t + timedelta(milliseconds=900),
                    created_at=t,
                    duration_ms=900 + i % 500,
                    output_preview='{"ok":true}',
                    model_used="gpt-4o",
                    prompt_tokens=700,
                    completion_tokens=220,
                    total_tokens=920,
                    estimated_cost=Decimal("0.003950"),
                    error_message=None,
                    retry_count=0,
                    user_id="user_1",
                    organization_id="org_1",
                )
            )
        yield Page[StepResult](items=items, offset=start)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def warm_up() -> None:
    """Pay pyarrow's one-time initialisation (~1 s) outside the timed region."""
    step_results_table(next(synthetic_pages(PAGE)).items, record_type="lead")


def landing_path(rows: int, chunk_rows: int, out) -> None:
    warm_up()
    with tempfile.TemporaryDirectory() as tmp, Warehouse(Path(tmp) / "bench.duckdb") as w:
        build = upsert = 0.0
        for chunk in chunked(synthetic_pages(rows), chunk_rows):
            start = time.perf_counter()
            table = step_results_table(chunk, record_type="lead")
            mid = time.perf_counter()
            w.land_step_results(table)
            build, upsert = build + mid - start, upsert + time.perf_counter() - mid
        landed = w.query("SELECT count(*) FROM step_results")[0][0]
    out.put(((build, upsert), landed, peak_mb()))


def raw_insert(rows: int, out) -> None:
    table = pa.concat_tables(
        step_results_table(p.items, record_type="lead") for p in synthetic_pages(rows)
    ).append_column("landed_at", pa.array([BASE] * rows, type=pa.timestamp("us", tz="UTC")))
    with tempfile.TemporaryDirectory() as tmp, Warehouse(Path(tmp) / "bench.duckdb") as w:
        cur = w._con.cursor()
        cur.register("staged", table)
        start = time.perf_counter()
        cur.execute(
            f"INSERT INTO step_results ({', '.join(table.column_names)}) SELECT * FROM staged"
        )
        elapsed = time.perf_counter() - start
        landed = w.query("SELECT count(*) FROM step_results")[0][0]
    out.put((elapsed, landed, peak_mb()))


def in_process(target, *args):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, out))
    proc.start()
    result = out.get()
    proc.join()
    return result


def main() -> None:
    print(f"landing {ROWS:,} synthetic step results (time spent in landing calls only)")
    raw_s, raw_n, raw_mb = in_process(raw_insert, ROWS)
    print(
        f"  raw DuckDB INSERT of one Arrow table (limit) {raw_n / raw_s:>10,.0f} rows/s"
        f"   peak RSS {raw_mb:,.0f} MB (holds all rows)"
    )
    for chunk_rows in (PAGE, LANDING_CHUNK_ROWS):
        rows = ROWS if chunk_rows != PAGE else min(ROWS, 50_000)
        (build, upsert), landed, mb = in_process(landing_path, rows, chunk_rows)
        secs = build + upsert
        assert landed == rows
        print(
            f"  landing path, {chunk_rows:>5} rows/transaction     {landed / secs:>10,.0f} rows/s"
            f"   peak RSS {mb:,.0f} MB   ratio {(landed / secs) / (raw_n / raw_s):.2f} of limit"
            + (f"  ({rows:,} rows)" if rows != ROWS else "")
        )
        print(
            f"      of which models → Arrow {landed / build:,.0f} rows/s,"
            f" upsert {landed / upsert:,.0f} rows/s"
            f" (ratio {(landed / upsert) / (raw_n / raw_s):.2f} of limit)"
        )


if __name__ == "__main__":
    main()
