"""Choosing the shared table format, by measurement (a one-off study, not part of `make bench`;
its figures are kept in docs/decisions.md): Delta Lake through
delta-rs (`deltalake`) and Apache Iceberg through `pyiceberg` with a SQL catalog, both on an
S3-compatible server (moto's server mode, on loopback), written by 1, 2 and 3 processes at once.

For each format and writer count it checks, against what the writers sent:
- appends: every row present once (no lost commit) and one table version per commit;
- merges on the key, disjoint keys per writer (landing different batches): every row once;
- merges of the same rows by every writer (two workers landing one batch): the rows once;
and prints commits/s, the conflicts the writers retried, and that DuckDB read the result
through Arrow with no extension loaded. It also checks that the store refuses a second
conditional create of one object (If-None-Match), which Delta's commits and a run ledger on
object storage both rely on.

Needs the ``shared-storage`` dependency group: ``make study-table-formats`` installs it and runs
this.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing as mp
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.dataset as ds

from runtype_prefect.cli.processes import free_port

BUCKET = "runtype-bench"
ROWS_PER_COMMIT = 500
COMMITS_PER_WRITER = int(sys.argv[1]) if len(sys.argv) > 1 else 8
SCHEMA = pa.schema([("id", pa.string()), ("batch_id", pa.string()), ("value", pa.float64())])
KEYS = "test"  # moto accepts any credentials


@dataclass(frozen=True)
class Store:
    """Where the tables live: the S3 endpoint, and a folder for Iceberg's catalog database."""

    endpoint: str
    catalog_dir: str

    @property
    def delta_options(self) -> dict[str, str]:
        # conditional_put=etag: commits are a put-if-absent of the next log entry, so two
        # writers never both commit one version (no external lock table needed).
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": KEYS,
            "AWS_SECRET_ACCESS_KEY": KEYS,
            "AWS_REGION": "us-east-1",
            "conditional_put": "etag",
        }

    def iceberg_catalog(self):  # -> pyiceberg.catalog.sql.SqlCatalog
        """This process's catalog client (one per process, as a worker would hold it)."""
        return _iceberg_catalog(self.endpoint, self.catalog_dir)


@functools.cache
def _iceberg_catalog(endpoint: str, catalog_dir: str):  # -> SqlCatalog
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(
        "runtype",
        uri=f"sqlite:///{catalog_dir}/catalog.db",
        warehouse=f"s3://{BUCKET}/iceberg",
        **{
            "s3.endpoint": endpoint,
            "s3.access-key-id": KEYS,
            "s3.secret-access-key": KEYS,
            "s3.region": "us-east-1",
        },
    )


def rows(writer: int, commit: int, *, same_rows: bool) -> pa.Table:
    """One commit's rows: disjoint per writer and commit, or the same rows for everyone."""
    start = 0 if same_rows else (writer * COMMITS_PER_WRITER + commit) * ROWS_PER_COMMIT
    ids = [f"step_{start + i}" for i in range(ROWS_PER_COMMIT)]
    batch = "batch_shared" if same_rows else f"batch_{writer}_{commit}"
    return pa.table(
        {"id": ids, "batch_id": [batch] * len(ids), "value": [float(commit)] * len(ids)},
        schema=SCHEMA,
    )


# --- Delta Lake (delta-rs) ----------------------------------------------------------------


def delta_create(store: Store, name: str) -> str:
    from deltalake import write_deltalake

    uri = f"s3://{BUCKET}/delta/{name}"
    write_deltalake(
        uri, SCHEMA.empty_table(), mode="overwrite", storage_options=store.delta_options
    )
    return uri


def delta_commit(store: Store, uri: str, data: pa.Table, mode: str) -> None:
    from deltalake import DeltaTable, write_deltalake

    if mode == "append":
        write_deltalake(uri, data, mode="append", storage_options=store.delta_options)
        return
    table = DeltaTable(uri, storage_options=store.delta_options)
    (
        table.merge(data, "t.id = s.id", source_alias="s", target_alias="t")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )


def delta_read(store: Store, uri: str) -> tuple[ds.Dataset, int]:
    from deltalake import DeltaTable

    table = DeltaTable(uri, storage_options=store.delta_options)
    return table.to_pyarrow_dataset(), table.version()  # version 0 is the empty table


# --- Iceberg (pyiceberg, SQL catalog) ------------------------------------------------------


def iceberg_create(store: Store, name: str) -> str:
    catalog = store.iceberg_catalog()
    catalog.create_namespace_if_not_exists("runtype")
    catalog.create_table(f"runtype.{name}", schema=SCHEMA)
    return f"runtype.{name}"


def iceberg_commit(store: Store, identifier: str, data: pa.Table, mode: str) -> None:
    table = store.iceberg_catalog().load_table(identifier)
    if mode == "append":
        table.append(data)
    else:
        table.upsert(data, join_cols=["id"])


def iceberg_read(store: Store, identifier: str) -> tuple[pa.Table, int]:
    table = store.iceberg_catalog().load_table(identifier)
    return table.scan().to_arrow(), len(table.snapshots())


def _formats() -> dict[str, tuple[Callable, Callable, Callable, type[Exception]]]:
    from deltalake.exceptions import CommitFailedError
    from pyiceberg.exceptions import CommitFailedException

    return {
        "delta": (delta_create, delta_commit, delta_read, CommitFailedError),
        "iceberg": (iceberg_create, iceberg_commit, iceberg_read, CommitFailedException),
    }


def writer(fmt: str, store: Store, target: str, number: int, mode: str, out) -> None:
    """Commit ``COMMITS_PER_WRITER`` times, retrying a commit that lost a race; report
    (conflicts retried, other errors)."""
    logging.getLogger("pyiceberg").setLevel(logging.ERROR)  # its own commit retries
    _, commit, _, conflict = _formats()[fmt]
    conflicts, errors, seen = 0, 0, set()
    for c in range(COMMITS_PER_WRITER):
        data = rows(number, c, same_rows=mode == "merge same rows")
        for _ in range(100):
            try:
                commit(store, target, data, "append" if mode == "append" else "merge")
                break
            except conflict:
                conflicts += 1
            except Exception as exc:  # counted, shown once, and the commit given up
                errors += 1
                if (kind := type(exc).__name__) not in seen:
                    seen.add(kind)
                    print(f"    {fmt} writer {number}: {kind}: {str(exc)[:140]}")
                break
    out.put((conflicts, errors))


def run(fmt: str, store: Store, writers: int, mode: str) -> bool:
    """Run ``writers`` processes against one new table; print a line; return whether the
    table holds exactly what was sent."""
    import duckdb

    create, _, read, _ = _formats()[fmt]
    target = create(store, f"t_{uuid.uuid4().hex[:10]}")
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=writer, args=(fmt, store, target, n, mode, out)) for n in range(writers)
    ]
    start = time.perf_counter()
    for p in procs:
        p.start()
    reports = [out.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - start
    data, versions = read(store, target)
    con = duckdb.connect()
    con.register("t", data)
    n, distinct = con.execute("SELECT count(*), count(DISTINCT id) FROM t").fetchone()
    downloaded = con.execute(
        "SELECT count(*) FROM duckdb_extensions()"
        " WHERE loaded AND install_mode IS DISTINCT FROM 'STATICALLY_LINKED'"
    ).fetchone()[0]
    commits = writers * COMMITS_PER_WRITER
    expected = ROWS_PER_COMMIT * (1 if mode == "merge same rows" else commits)
    conflicts, errors = (sum(r[i] for r in reports) for i in (0, 1))
    exact = n == distinct == expected and errors == 0
    print(
        f"  {fmt:<8} {mode:<16} {writers} writer{'s' if writers > 1 else ' '}"
        f"  {commits / wall:6.1f} commits/s  rows {n:>6,} of {expected:>6,}"
        f"  {'exact' if exact else 'WRONG'}  versions {versions:>3}"
        f"  conflicts retried {conflicts:>3}  errors {errors:>2}"
        f"  DuckDB extensions downloaded {downloaded}"
    )
    return exact


def conditional_create_is_enforced(endpoint: str) -> bool:
    """Return whether the store refuses a second If-None-Match create of one key."""
    import boto3
    from botocore.exceptions import ClientError

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEYS,
        aws_secret_access_key=KEYS,
        region_name="us-east-1",
    )
    key = f"ledger/{uuid.uuid4().hex}"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"first", IfNoneMatch="*")
    try:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"second", IfNoneMatch="*")
    except ClientError as exc:
        refused = exc.response["Error"]["Code"] == "PreconditionFailed"
        return refused and s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"first"
    return False


def main() -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=KEYS,
            aws_secret_access_key=KEYS,
            region_name="us-east-1",
        ).create_bucket(Bucket=BUCKET)
        print(
            f"shared table formats on an S3-compatible server (moto, loopback): writers in"
            f" separate processes, {COMMITS_PER_WRITER} commits of {ROWS_PER_COMMIT} rows each"
        )
        enforced = conditional_create_is_enforced(endpoint)
        print(f"  the store refuses a second conditional create of one object: {enforced}")
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(endpoint, tmp)
            exact = {
                fmt: [
                    run(fmt, store, writers, mode)
                    for mode in ("append", "merge", "merge same rows")
                    for writers in (1, 2, 3)
                ]
                for fmt in ("delta", "iceberg")
            }
        print(
            "  tables exactly as sent: "
            + ", ".join(f"{fmt} {sum(ok)} of {len(ok)}" for fmt, ok in exact.items())
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
