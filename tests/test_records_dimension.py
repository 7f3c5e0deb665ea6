"""Records as a dimension: the records listing landed once per record type and night, a
record's history across nights, segments by a metadata field, and the records that fail night
after night."""

from __future__ import annotations

import json

import pytest
from helpers import job_settings

from runtype_prefect import analytics as rta
from runtype_prefect.analytics import figures
from runtype_prefect.engine.landing import land_records
from runtype_prefect.warehouse import Warehouse


def test_the_nightly_lands_each_types_records_once_a_night(sandbox_warehouse):
    with Warehouse(sandbox_warehouse) as w:
        listings = w.query(
            "SELECT record_type, run_key, records FROM record_listings ORDER BY 1, 2"
        )
        per_type = dict(w.query("SELECT record_type, count(*) FROM records GROUP BY 1"))
        ran = dict(
            w.query("SELECT record_type, count(DISTINCT record_id) FROM record_results GROUP BY 1")
        )
        (metadata,) = w.query("SELECT metadata FROM records WHERE record_type = 'lead' LIMIT 1")[0]
    assert len(listings) == 8, "4 record types × 2 nights, one listing each"
    assert per_type == ran, "every record a job ran over is in the dimension, once"
    assert {"region", "plan", "seats"} <= set(json.loads(metadata))


@pytest.mark.usefixtures("prefect_api", "runtype_env")
def test_a_job_without_the_records_dimension_lands_its_results_and_pages_no_records(
    admin, tmp_path
):
    from runtype_prefect.flows import run_record_type

    db = tmp_path / "runtype.duckdb"
    settings = job_settings(db, fast=True, records_dimension=False)
    result = run_record_type(
        flow_id=admin.flow_for("customer"), record_type="customer", run_key="k", settings=settings
    )
    assert result.records == 40
    with Warehouse(db) as w:
        assert w.query("SELECT count(*) FROM record_results")[0][0] == 40
        assert w.query("SELECT count(*) FROM records")[0][0] == 0
        assert w.query("SELECT count(*) FROM record_listings")[0][0] == 0


def test_a_listing_already_landed_for_the_night_is_not_fetched_again(sandbox_warehouse, client):
    with Warehouse(sandbox_warehouse) as w:
        before = w.query("SELECT count(*), max(last_landed_at) FROM records")[0]
        assert land_records(client, w, "lead", "2026-11-28") is None
        assert w.query("SELECT count(*), max(last_landed_at) FROM records")[0] == before


def test_segments_and_a_records_history(sandbox_warehouse):
    with rta.connect(sandbox_warehouse) as con:
        plans = rta.segments(con, "plan", rta.Filters(record_types=("lead",)))
        missing = rta.segments(con, "no_such_key")
        (rid,) = con.execute(
            "SELECT record_id FROM record_results WHERE record_type = 'lead' LIMIT 1"
        ).fetchone()
        history = rta.record_history(con, rid)
    assert len(plans) > 1 and plans["segment"].notna().all()
    assert plans["records"].sum() == 2 * 1200, "every lead execution of both nights"
    assert (plans["success_rate_low"] <= plans["success_rate"]).all()
    assert list(missing["segment"]) == [None], "a key no record has: one NULL segment"
    assert len(history) == 2 and history["metadata"].notna().all()
    assert list(history["night"].dt.strftime("%Y-%m-%d")) == ["2026-11-27", "2026-11-28"]
    assert figures.success_by_segment(plans, "plan").data


def _night_rows(w: Warehouse, night: str, outcomes: dict[str, bool]) -> None:
    batch = f"b-{night}"
    w.query(
        "INSERT INTO batches (batch_id, flow_id, record_type, run_key, status, outcome)"
        " VALUES (?, 'flow_1', 'lead', ?, 'completed', 'completed')",
        [batch, night],
    )
    for record_id, ok in outcomes.items():
        w.query(
            "INSERT INTO record_results (batch_id, record_id, record_type, flow_id, status,"
            " success, error, execution_time_s, landed_at)"
            " VALUES (?, ?, 'lead', 'flow_1', ?, ?, ?, 1.0, now())",
            [batch, record_id, "completed" if ok else "failed", ok,
             None if ok else f"HTTP 502 from crm on {night}"],
        )  # fmt: skip


def test_chronic_failures_are_records_failing_3_of_their_last_5_nights(tmp_path):
    db = tmp_path / "chronic.duckdb"
    nights = [f"2026-11-0{d}" for d in range(1, 8)]
    # r1 fails on nights 3, 5 and 7 (3 of its last 5); r2 failed often, but long ago (only 2
    # of its last 5); r3 fails on 2 of 2 nights it ran (not 3 nights yet).
    fails = {"r1": {2, 4, 6}, "r2": {0, 1, 2, 3}, "r3": {5, 6}}
    with Warehouse(db) as w:
        for i, night in enumerate(nights):
            outcomes = {r: i not in f for r, f in fails.items() if r != "r3" or i >= 5}
            _night_rows(w, night, outcomes)
        w.publish_snapshot(full=True)
    with rta.connect(db) as con:
        chronic = rta.chronic_failures(con)
    assert list(chronic["record_id"]) == ["r1"]
    row = chronic.iloc[0]
    assert (row.nights_run, row.nights_failed) == (5, 3)
    assert str(row.last_failed_night.date()) == "2026-11-07"
    assert row.last_error_class == "HTTP 502 from crm on <n>-<n>-<n>"


@pytest.mark.parametrize("key", ["plan", "region"])
def test_segment_keys_are_taken_literally(tmp_path, key):
    db = tmp_path / "seg.duckdb"
    with Warehouse(db) as w:
        _night_rows(w, "2026-11-01", {"r1": True, "r2": False})
        w.query(
            "INSERT INTO records VALUES ('r1', 'lead', 'One', ?, NULL, NULL, now(), now(), 'x'),"
            " ('r2', 'lead', 'Two', ?, NULL, NULL, now(), now(), 'x')",
            [json.dumps({key: "a"}), json.dumps({key: "b"})],
        )
        w.publish_snapshot(full=True)
    with rta.connect(db) as con:
        seg = rta.segments(con, key).set_index("segment")
    assert seg.loc["a", "success_rate"] == 1.0 and seg.loc["b", "success_rate"] == 0.0


def test_an_incremental_nights_choice_lands_the_dimension_from_its_own_listing(
    admin, client, tmp_path
):
    """The choice pages the type's records; the night's records dimension is that listing,
    not a second one."""
    from runtype_prefect.engine.jobs import Job, JobRun
    from runtype_prefect.engine.selection import night_selection
    from runtype_prefect.engine.settings import JobSettings, Mode

    listing_pages: list[str] = []
    client._http.event_hooks["request"].append(
        lambda request: (
            listing_pages.append(str(request.url))
            if request.url.path.endswith("/records")
            else None
        )
    )
    job = Job(flow_id=admin.flow_for("customer"), record_type="customer")
    run = JobRun(job, "2026-11-20", JobSettings(mode=Mode.INCREMENTAL, records_dimension=True))
    with Warehouse(tmp_path / "runtype.duckdb") as w:
        selection = night_selection(client, w, run)
        pages_of_the_choice = len(listing_pages)
        assert land_records(client, w, "customer", "2026-11-20") is None
        landed = w.query("SELECT count(*) FROM records WHERE record_type = 'customer'")[0][0]
    assert selection.type_records == landed == 40
    assert pages_of_the_choice >= 1 and len(listing_pages) == pages_of_the_choice
