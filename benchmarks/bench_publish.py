"""Publishing the analytics snapshot: the same new night (50,000 step results and 10,000 record
results, landed through the warehouse's landing path) published over 1,000,000 and 5,000,000
step results of history landed on 30 earlier days. Printed: the time to land the night, the time
to publish it (incremental: only the touched day's Parquet parts and a new catalog), their ratio
(target ≤ 2×), the ratio of the publish times at 5M and 1M (target ≤ 1.5×), and the previous full
copy of the database at each size for reference.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from runtype_prefect.warehouse import Warehouse

HISTORY = [int(a) for a in sys.argv[1:]] or [1_000_000, 5_000_000]
NIGHT_STEPS = 50_000
DAYS = 30

HISTORY_SQL = """
INSERT INTO step_results (id, batch_execution_id, flow_id, record_id, record_type, step_name,
    step_type, step_order, status, started_at, completed_at, created_at, duration_ms,
    model_used, total_tokens, estimated_cost, retry_count, landed_at)
SELECT 'old_' || i, 'batch_' || (i // 5000), 'flow_x', 'record_' || (i // 5), 'lead',
       'Step ' || (i % 5), 'prompt', i % 5 + 1,
       CASE WHEN hash(i) % 53 = 0 THEN 'failed' ELSE 'completed' END,
       TIMESTAMPTZ '2026-10-01 02:00:00+00', TIMESTAMPTZ '2026-10-01 02:00:01+00',
       TIMESTAMPTZ '2026-10-01 02:00:01+00', 50 + hash(i) % 5000, 'gpt-4o', 920, 0.0039, 0,
       now() - to_days(1 + CAST(i * {days} // {n} AS INTEGER))
FROM range({n}) r(i);
INSERT INTO record_results (batch_id, record_id, record_type, flow_id, status, success,
    execution_time_s, landed_at)
SELECT 'batch_' || (i // 1000), 'record_' || i, 'lead', 'flow_x', 'completed', true, 1.5,
       now() - to_days(1 + CAST(i * {days} // {r} AS INTEGER))
FROM range({r}) r(i);
"""

NIGHT_STEPS_SQL = """
SELECT 'new_' || i AS id, 'batch_new' AS batch_execution_id, 'flow_x' AS flow_id,
       'new_record_' || (i // 5) AS record_id, 'lead' AS record_type,
       'Step ' || (i % 5) AS step_name,
       'prompt' AS step_type, CAST(i % 5 + 1 AS INTEGER) AS step_order, 'completed' AS status,
       now() AS started_at, now() AS completed_at, now() AS created_at,
       CAST(50 + hash(i) % 5000 AS BIGINT) AS duration_ms, 'gpt-4o' AS model_used,
       920 AS total_tokens, CAST(0.0039 AS DECIMAL(18, 8)) AS estimated_cost, 0 AS retry_count
FROM range({n}) r(i)
"""

NIGHT_RECORDS_SQL = """
SELECT 'batch_new' AS batch_id, 'new_record_' || i AS record_id, 'lead' AS record_type,
       'flow_x' AS flow_id, 'completed' AS status, true AS success, 1.5 AS execution_time_s
FROM range({n}) r(i)
"""


def measure(history: int) -> tuple[float, float, float]:
    """Return (land the night, publish it, full copy) seconds over ``history`` step results."""
    with tempfile.TemporaryDirectory() as tmp, Warehouse(Path(tmp) / "bench.duckdb") as w:
        w._con.execute(HISTORY_SQL.format(n=history, r=history // 5, days=DAYS))
        w.publish_snapshot(full=True)  # the history, published once before the night
        steps = w._con.sql(NIGHT_STEPS_SQL.format(n=NIGHT_STEPS)).to_arrow_table()
        records = w._con.sql(NIGHT_RECORDS_SQL.format(n=NIGHT_STEPS // 5)).to_arrow_table()
        start = time.perf_counter()
        w.land_step_results(steps)
        w.land_record_results(records)
        landed = time.perf_counter() - start
        start = time.perf_counter()
        w.publish_snapshot()
        published = time.perf_counter() - start
        with w.transaction() as cur:
            total = cur.execute("SELECT count(*) FROM step_results").fetchone()
        assert total == (history + NIGHT_STEPS,), total
        start = time.perf_counter()
        w._con.execute(f"ATTACH '{Path(tmp) / 'full.duckdb'}' AS full_copy")
        w._con.execute("COPY FROM DATABASE bench TO full_copy")
        w._con.execute("DETACH full_copy")
        full = time.perf_counter() - start
    return landed, published, full


def main() -> None:
    print(
        f"publishing one night ({NIGHT_STEPS:,} step results, {NIGHT_STEPS // 5:,} record"
        f" results) over history landed on {DAYS} earlier days"
    )
    publish_times = {}
    for history in HISTORY:
        landed, published, full = measure(history)
        publish_times[history] = published
        print(
            f"  history {history:>9,} step results: land the night {landed:5.2f} s,"
            f" publish it {published:5.2f} s = {published / landed:.2f}× landing (target ≤ 2×);"
            f" the former full copy {full:5.2f} s"
        )
    if len(HISTORY) > 1:
        small, large = min(HISTORY), max(HISTORY)
        print(
            f"  publish at {large:,} / at {small:,}:"
            f" {publish_times[large] / publish_times[small]:.2f}× (target ≤ 1.5×)"
        )


if __name__ == "__main__":
    main()
