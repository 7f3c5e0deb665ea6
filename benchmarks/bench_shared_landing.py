"""Landing into the shared warehouse (issue 13) with 1, 2 and 3 concurrent writers, against the
local DuckDB path, as ratios of throughput (step results landed per second, all writers
together).

Each writer is a process that lands ``BATCHES`` batches of ``ROWS`` step results: chunks of
20,000 rows upserted into its DuckDB file (the local path stops here), and for the shared
warehouse each landed batch then committed to the Delta tables on an S3-compatible server (moto's
server mode, in its own process, on loopback) as one partition overwrite. The shared tables
are then checked to hold every row exactly once.

moto is a Python server on the same two cores: real S3 answers faster and in parallel, so the
shared figures here are a floor. Needs the ``shared`` extra and moto (dev group).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from runtype_prefect.warehouse import SharedWarehouse, Warehouse, step_results_table
from runtype_prefect.warehouse.rows import STEP_FIELDS, TS
from runtype_prefect.warehouse.shared import DeltaTables, SharedLocation

BATCHES = int(sys.argv[1]) if len(sys.argv) > 1 else 4
ROWS = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
CHUNK = 20_000
BUCKET = "runtype-bench-shared"
KEYS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}


def steps(batch_id: str, rows: int) -> pa.Table:
    """Return ``rows`` API-shaped step results of one batch, built column-wise."""
    i = pa.array(range(rows), pa.int64())
    text = pc.cast(i, pa.string())
    base = pa.scalar(1_764_554_400_000_000, pa.int64())
    started = pc.add(base, pc.multiply(i, 7_000)).cast(TS)
    columns: dict[str, pa.Array] = {}
    for name, dtype in STEP_FIELDS:
        if name == "id":
            columns[name] = pc.binary_join_element_wise(f"{batch_id}_step", text, "_")
        elif name == "batch_execution_id":
            columns[name] = pa.repeat(pa.scalar(batch_id), rows)
        elif name == "record_id":
            columns[name] = pc.binary_join_element_wise(
                "record", pc.cast(pc.divide(i, 4), pa.string()), "_"
            )
        elif dtype == TS:
            columns[name] = started
        elif pa.types.is_integer(dtype):
            columns[name] = pc.cast(pc.add(pc.bit_wise_and(i, 511), 400), dtype)
        elif pa.types.is_decimal(dtype):
            columns[name] = pa.repeat(pa.scalar(0.00395).cast(dtype), rows)
        elif name == "status":
            columns[name] = pa.repeat(pa.scalar("completed"), rows)
        else:
            columns[name] = pa.repeat(pa.scalar(f"{name} value"), rows)
    return pa.table(columns)


def writer(target: str, number: int, out: mp.Queue) -> None:
    """Land this writer's batches into ``target`` (a DuckDB file or a shared URL); put the
    seconds it took on ``out``."""
    tables = [
        step_results_table(steps(f"batch_w{number}_{b}", ROWS), record_type="lead")
        for b in range(BATCHES)
    ]
    started = time.perf_counter()
    shared = target.startswith("s3://")
    with SharedWarehouse(target) if shared else Warehouse(target) as warehouse:
        for table in tables:
            for offset in range(0, table.num_rows, CHUNK):
                warehouse.land_step_results(table.slice(offset, CHUNK))
            warehouse.mark_landed(table["batch_execution_id"][0].as_py())
    out.put(time.perf_counter() - started)


def run(target: str, writers: int) -> float:
    """Return the step results per second ``writers`` processes landed into ``target``."""
    ctx = mp.get_context("spawn")  # delta-rs's runtime does not survive a fork
    out = ctx.Queue()
    procs = [ctx.Process(target=writer, args=(target, n, out)) for n in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0, f"writer failed ({p.exitcode})"
    # The slowest writer's landing time: not the processes' start-up and imports.
    seconds = max(out.get() for _ in procs)
    return writers * BATCHES * ROWS / seconds


def main() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.environ.update({**KEYS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import boto3

        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).create_bucket(Bucket=BUCKET)
        print(
            f"landing step results, {BATCHES} batches × {ROWS:,} rows per writer (processes);"
            " shared = Delta on moto's S3 server (loopback)"
        )
        with tempfile.TemporaryDirectory() as tmp:
            local = run(str(Path(tmp) / "local.duckdb"), 1)
            print(f"  local DuckDB, 1 writer: {local:,.0f} rows/s (the baseline)")
            for writers in (1, 2, 3):
                url = f"s3://{BUCKET}/w{writers}"
                rate = run(url, writers)
                landed = DeltaTables(SharedLocation.parse(url)).read("step_results")
                assert landed is not None
                exact = (
                    landed.num_rows == writers * BATCHES * ROWS
                    and pc.count_distinct(landed["id"]).as_py() == landed.num_rows
                )
                print(
                    f"  shared, {writers} writer{'s' if writers > 1 else ' '}: {rate:,.0f} rows/s"
                    f" together = {rate / local:.2f}× local; every row once: {exact}"
                )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
