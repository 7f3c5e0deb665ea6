"""Streamed landing: pages → Arrow tables by the model's schema (and the model's way when a
page does not fit), byte-bounded chunks, the upsert's paths, and chunks landed while the next
one is fetched."""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
import pyarrow as pa
import pytest

from runtype_prefect.client import (
    MalformedResponseError,
    RuntypeClient,
    StepResult,
    models_to_table,
)
from runtype_prefect.client.arrow import ArrowLayout
from runtype_prefect.engine.landing import LANDING_SWITCH_INTERVAL, land_overlapped
from runtype_prefect.warehouse import Warehouse, step_results_table


def row(i: int, **over) -> dict:
    base = {
        "id": f"stepres_{i:05d}",
        "batchExecutionId": "batch_1",
        "flowId": "flow_1",
        "recordId": f"record_{i // 3}",
        "recordName": f"Record {i // 3}",
        "stepType": "prompt",
        "order": i % 3 + 1,
        "status": "completed",
        "startedAt": "2026-11-01T02:00:00.000Z",
        "completedAt": "2026-11-01T02:00:01.500Z",
        "createdAt": "2026-11-01T02:00:01.500Z",
        "durationMs": 1500,
        "promptTokens": 700,
        "estimatedCost": "0.001234567891",
        "resolvedPrompt": "Qualify",
        "recordMetadata": {"tier": "gold"},  # not a column: ignored
        "retryCount": 0,
    }
    return {**base, **over}


def listing(rows: list[dict], page_size: int = 10):
    """Return a handler serving ``rows`` in offset pages, and the offsets it was asked for."""
    asked: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        asked.append(offset)
        page = rows[offset : offset + page_size]
        more = offset + page_size < len(rows)
        return httpx.Response(200, json={"data": page, "pagination": {"hasMore": more}})

    return handler, asked


def client_for(handler) -> RuntypeClient:
    return RuntypeClient(
        "rt_test", "https://api.runtype.test/v1", transport=httpx.MockTransport(handler)
    )


def test_pages_become_typed_tables_in_the_models_layout():
    handler, _ = listing([row(i) for i in range(25)])
    (table,) = client_for(handler).iter_step_result_tables("flow_1", page_size=10)
    assert table.column_names == list(StepResult.model_fields)
    assert table.num_rows == 25
    first = table.slice(0, 1).to_pylist()[0]
    model = StepResult.model_validate(row(0))
    assert first == model.model_dump(exclude=set(model.model_extra or {}))  # as the model reads
    assert table.schema.field("started_at").type == pa.timestamp("us", tz="UTC")


def test_the_byte_budget_bounds_each_table():
    rows = [row(i) for i in range(100)]
    handler, asked = listing(rows)
    page_bytes = len(httpx.Response(200, json={"data": rows[:10]}).content)
    tables = list(
        client_for(handler).iter_step_result_tables(
            "flow_1", page_size=10, max_bytes=page_bytes * 3
        )
    )
    assert [t.num_rows for t in tables] == [30, 30, 30, 10]
    assert asked == list(range(0, 100, 10))
    ids = [i for t in tables for i in t["id"].to_pylist()]
    assert ids == [r["id"] for r in rows]


def test_a_page_that_does_not_fit_the_schema_is_read_the_models_way():
    # A zone-less timestamp and an integer sent as a string: pydantic reads both.
    rows = [row(0), row(1, startedAt="2026-11-01T02:00:00", durationMs="1500")]
    handler, _ = listing(rows)
    (table,) = client_for(handler).iter_step_result_tables("flow_1")
    assert table.num_rows == 2
    assert table["duration_ms"].to_pylist() == [1500, 1500]
    assert table["started_at"][1].as_py().isoformat() == "2026-11-01T02:00:00+00:00"


def test_a_chunk_of_several_pages_read_the_models_way_keeps_every_row_in_order():
    rows = [row(i) for i in range(25)]
    rows[13] = row(13, startedAt="2026-11-01T02:00:00")  # the second page does not fit
    handler, _ = listing(rows)
    (table,) = client_for(handler).iter_step_result_tables("flow_1", page_size=10)
    assert table["id"].to_pylist() == [r["id"] for r in rows]


def style_b(rows: list[dict], page_size: int = 10, *, pagination_first=False, lie=None):
    """A handler serving ``rows`` as the spec's style B listing (``returned`` and ``hasMore``),
    its body written by hand so the key order and the count can be chosen."""

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        page = rows[offset : offset + page_size]
        returned = lie(offset, len(page)) if lie else len(page)
        pagination = orjson.dumps(
            {"limit": page_size, "offset": offset, "returned": returned,
             "hasMore": offset + len(page) < len(rows)}
        )  # fmt: skip
        data = orjson.dumps(page)
        parts = [b'"pagination": ' + pagination, b'"data": ' + data]
        body = b"{" + b", ".join(parts if pagination_first else parts[::-1]) + b"}"
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    return handler


@pytest.mark.parametrize("pagination_first", [False, True])
def test_pages_that_give_their_row_count_are_read_once_by_arrow(pagination_first):
    rows = [row(i) for i in range(25)]
    # A row of the last page carries a nested "pagination" key: never taken for the listing's.
    rows[24] = row(24, recordMetadata={"pagination": {"returned": 99, "hasMore": True}})
    handler = style_b(rows, pagination_first=pagination_first)
    (table,) = client_for(handler).iter_step_result_tables("flow_1", page_size=10)
    assert table["id"].to_pylist() == [r["id"] for r in rows]
    expected, _ = listing(rows)
    (same,) = client_for(expected).iter_step_result_tables("flow_1", page_size=10)
    assert table.equals(same)


def test_pretty_printed_pages_read_as_compact_ones_by_arrow(monkeypatch):
    rows = [row(i) for i in range(25)]

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        page = rows[offset : offset + 10]
        body = {"data": page, "pagination": {"returned": len(page), "hasMore": offset + 10 < 25}}
        # The middle page spread over lines (CRLF), the others on one.
        indent = orjson.OPT_INDENT_2 if offset == 10 else 0
        content = orjson.dumps(body, option=indent).replace(b"\n", b"\r\n")
        return httpx.Response(200, content=content)

    compact, _ = listing(rows)
    (same,) = client_for(compact).iter_step_result_tables("flow_1", page_size=10)
    # Arrow reads them (the model's way would give the same table, slower).
    monkeypatch.setattr(ArrowLayout, "from_models", None)
    (table,) = client_for(handler).iter_step_result_tables("flow_1", page_size=10)
    assert table.equals(same)


def test_a_last_page_that_says_it_is_empty_but_holds_rows_loses_none():
    rows = [row(i) for i in range(25)]
    handler = style_b(rows, lie=lambda offset, n: 0 if offset == 20 else n)
    (table,) = client_for(handler).iter_step_result_tables("flow_1", page_size=10)
    assert table["id"].to_pylist() == [r["id"] for r in rows]


@pytest.mark.parametrize("said", [9, 11])
def test_a_page_whose_rows_are_not_its_returned_count_is_refused(said):
    rows = [row(i) for i in range(25)]
    handler = style_b(rows, lie=lambda offset, n: said if offset == 10 else n)
    with pytest.raises(MalformedResponseError, match=f"returned {said} rows, its data holds 10"):
        list(client_for(handler).iter_step_result_tables("flow_1", page_size=10))


def test_a_body_broken_before_its_pagination_is_refused_as_not_json():
    def handler(request: httpx.Request) -> httpx.Response:
        good = orjson.dumps({"data": [row(0)], "pagination": {"returned": 1, "hasMore": False}})
        return httpx.Response(200, content=good.replace(b'"status"', b'"status'))

    with pytest.raises(MalformedResponseError, match="not valid JSON"):
        list(client_for(handler).iter_step_result_tables("flow_1"))


@pytest.mark.parametrize(
    "bad, field",
    [({"status": None}, "status"), ({"durationMs": "slow"}, "durationMs")],
)
def test_a_row_the_model_refuses_raises_naming_the_field(bad, field):
    handler, _ = listing([row(0), row(1), row(2, **bad)])
    with pytest.raises(MalformedResponseError, match=f"step-results.*{field}"):
        list(client_for(handler).iter_step_result_tables("flow_1"))


@pytest.fixture
def warehouse(tmp_path):
    with Warehouse(tmp_path / "w.duckdb") as w:
        yield w


def steps(*rows: dict) -> pa.Table:
    models = [StepResult.model_validate(r) for r in rows]
    return step_results_table(models_to_table(models, StepResult), record_type="lead")


def test_relanding_a_changed_row_updates_it_and_keeps_its_first_landing(warehouse):
    warehouse.land_step_results(steps(row(0), row(1)))
    (landed_at,) = warehouse.query("SELECT landed_at FROM step_results WHERE id = 'stepres_00001'")
    # One key already there (MERGE), one new: both land, nothing twice.
    warehouse.land_step_results(steps(row(1, status="failed"), row(2)))
    assert warehouse.query("SELECT id, status FROM step_results ORDER BY id") == [
        ("stepres_00000", "completed"),
        ("stepres_00001", "failed"),
        ("stepres_00002", "completed"),
    ]
    assert warehouse.query("SELECT landed_at FROM step_results WHERE id = 'stepres_00001'") == [
        landed_at
    ]
    assert warehouse.query("SELECT estimated_cost::VARCHAR FROM step_results LIMIT 1") == [
        ("0.00123457",)  # rounded to the column's 8 places
    ]


def test_a_key_twice_in_one_chunk_lands_once_as_its_newest_row(warehouse):
    warehouse.land_step_results(steps(row(5)))
    chunk = steps(
        row(5, createdAt="2026-11-01T03:00:00Z", status="failed"),
        row(6),
        row(5, createdAt="2026-11-01T04:00:00Z", status="completed"),
        row(6, createdAt="2026-11-01T01:00:00Z", status="failed"),
    )
    warehouse.land_step_results(chunk)
    assert warehouse.query("SELECT id, status FROM step_results ORDER BY id") == [
        ("stepres_00005", "completed"),
        ("stepres_00006", "completed"),
    ]


def test_chunks_land_in_order_while_the_next_is_fetched():
    landed: list[int] = []
    fetched_while_landing = threading.Event()
    landing_started = threading.Event()

    def chunks():
        yield pa.table({"n": [0]})
        landing_started.wait(5)
        fetched_while_landing.set()
        yield pa.table({"n": [1]})

    def land(chunk: pa.Table) -> int:
        landing_started.set()
        if chunk["n"][0].as_py() == 0:
            assert fetched_while_landing.wait(5)  # the next chunk was built meanwhile
        landed.append(chunk["n"][0].as_py())
        return chunk.num_rows

    assert land_overlapped(chunks(), land) == 2
    assert landed == [0, 1]


def test_a_fetch_error_waits_for_the_chunk_in_flight_to_commit():
    landed: list[int] = []

    def chunks():
        yield pa.table({"n": [0]})
        raise MalformedResponseError("page 2 is broken", retryable=False)

    def land(chunk: pa.Table) -> int:
        landed.append(chunk.num_rows)
        return chunk.num_rows

    with pytest.raises(MalformedResponseError, match="page 2"):
        land_overlapped(chunks(), land)
    assert landed == [1]


def test_a_landing_error_stops_fetching():
    fetched: list[int] = []

    def chunks():
        for n in range(5):
            fetched.append(n)
            yield pa.table({"n": [n]})

    def land(chunk: pa.Table) -> int:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        land_overlapped(chunks(), land)
    assert len(fetched) <= 2


def test_a_landing_lowers_the_gil_switch_interval_and_restores_it():
    """The writer thread's short GIL needs are served promptly while a landing runs; the
    process's own interval comes back when the last of several concurrent landings ends."""
    usual = sys.getswitchinterval()
    seen: list[float] = []
    both_landing = threading.Barrier(2, timeout=5)

    def land(chunk: pa.Table) -> int:
        both_landing.wait()
        seen.append(sys.getswitchinterval())
        return chunk.num_rows

    def one_landing() -> int:
        return land_overlapped(iter([pa.table({"n": [1]})]), land)

    with ThreadPoolExecutor(2) as pool:
        assert sum(pool.map(lambda _: one_landing(), range(2))) == 2
    assert seen == [LANDING_SWITCH_INTERVAL] * 2
    assert sys.getswitchinterval() == usual

    def failing(chunk: pa.Table) -> int:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        land_overlapped(iter([pa.table({"n": [1]})]), failing)
    assert sys.getswitchinterval() == usual


def test_record_and_step_results_are_paged_at_once_and_a_failing_listing_is_raised(tmp_path):
    """While the step results land, the record results are paged beside them; when those
    fail, the step results still land whole and the landing raises the listing's error
    (the batch is not stamped landed)."""
    from runtype_prefect.client import BadRequestError, BatchState, BatchStatus
    from runtype_prefect.engine.jobs import Job
    from runtype_prefect.engine.landing import land_batch_results

    steps, _ = listing([row(i) for i in range(25)])
    inside: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        inside.append(threading.current_thread().name)
        if "/schedules/batch/" in request.url.path:
            return httpx.Response(400, json={"error": {"code": "BAD", "message": "no"}})
        return steps(request)

    status = BatchStatus(
        batch_execution_id="batch_1",
        flow_id="flow_1",
        status=BatchState.COMPLETED,
        total_records=9,
        processed_records=9,
    )
    with Warehouse(tmp_path / "w.duckdb") as w, client_for(handler) as client:
        w.upsert_batch("batch_1", flow_id="flow_1", record_type="lead", status="queued")
        with pytest.raises(BadRequestError):
            land_batch_results(
                client, w, Job(flow_id="flow_1", record_type="lead"), "batch_1", status,
                immediate=False,
            )  # fmt: skip
        assert w.query("SELECT count(*) FROM step_results")[0][0] == 25
        assert w.get_batch("batch_1")["landed_at"] is None
    assert any(name.startswith("record-results") for name in inside), "paged in its own thread"
