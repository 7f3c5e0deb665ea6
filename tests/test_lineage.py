"""Lineage in the Prefect UI: a landing materializes the job's tables downstream of its Runtype
flow, publishing the snapshot downstream of the tables, the report downstream of the snapshot;
read back as the asset events the UI's graph is drawn from."""

from __future__ import annotations

import pytest
from helpers import job_settings, wait_for_events

from runtype_prefect.flows import report_flow, run_record_type

pytestmark = pytest.mark.usefixtures("prefect_api", "runtype_env")


def _materialized(key: str) -> dict:
    (event,) = wait_for_events("prefect.asset.materialization.succeeded", 1, resource=key)[-1:]
    return event


def _upstream(event: dict) -> set[str]:
    return {
        r["prefect.resource.id"]
        for r in event["related"]
        if r.get("prefect.resource.role") == "asset"
    }


def test_landing_publishing_and_the_report_draw_flow_tables_snapshot_report(admin, tmp_path):
    db = tmp_path / "lineage.duckdb"
    flow_id = admin.flow_for("customer")
    state = run_record_type(
        flow_id=flow_id,
        record_type="customer",
        run_key="2026-11-04",
        return_state=True,
        settings=job_settings(db, fast=True, publish_snapshot=True),
    )
    result = state.result()
    records = _materialized(f"duckdb://{db}/record_results/{flow_id}/customer")
    assert records["payload"] == {
        "rows": 40, "night": "2026-11-04", "batch": result.batch_id, "complete": True,
    }  # fmt: skip
    assert _upstream(records) == {f"runtype://flows/{flow_id}"}
    steps = _materialized(f"duckdb://{db}/step_results/{flow_id}/customer")
    assert steps["payload"]["rows"] > 40
    snapshot = _materialized(f"duckdb://{tmp_path / 'lineage.analytics.duckdb'}")
    assert snapshot["payload"]["night"] == "2026-11-04"
    assert _upstream(snapshot) == {
        f"duckdb://{db}/record_results/{flow_id}/customer",
        f"duckdb://{db}/step_results/{flow_id}/customer",
    }
    report = report_flow(str(db), str(tmp_path / "report.html"))
    event = _materialized(f"file://{report}")
    assert event["payload"]["bytes"] > 100_000
    assert _upstream(event) == {f"duckdb://{tmp_path / 'lineage.analytics.duckdb'}"}
