"""One night's figures are the same on every surface that shows them: the job summary (the
nightly's table and artifacts), the quality gate's input, the report's KPIs and a notebook's
DataFrame. Each reads the named models of ``analytics/``; none computes a measure itself."""

from __future__ import annotations

from datetime import date

import pytest

from runtype_prefect import analytics as rta
from runtype_prefect.engine.jobs import Job
from runtype_prefect.engine.outcomes import Outcome
from runtype_prefect.gate import latest_verdicts
from runtype_prefect.orchestration.tasks import summarise_job
from runtype_prefect.warehouse import Warehouse

NIGHT = date(2026, 11, 28)  # the sandbox_warehouse fixture's second night


def _kpis(con, record_type: str) -> dict:
    table = rta.kpis(con, night=NIGHT, record_types=(record_type,))
    return dict(zip(table["metric"], table["current"], strict=True))


def test_one_nights_figures_agree_on_every_surface(sandbox_warehouse):
    with Warehouse(sandbox_warehouse) as warehouse:
        batches = warehouse.query(
            "SELECT batch_id, flow_id, record_type, outcome FROM batches WHERE run_key = ?"
            " ORDER BY record_type",
            [NIGHT.isoformat()],
        )
        summaries = {
            rtype: summarise_job(
                warehouse,
                Job(flow_id=flow, record_type=rtype),
                NIGHT.isoformat(),
                batch,
                outcome=Outcome(outcome),
            )
            for batch, flow, rtype, outcome in batches
        }
        gate_input = {
            row[0]: row[1:]
            for row in warehouse.query(
                "SELECT record_type, records, failed, success_rate, p50_s, p95_s"
                " FROM job_nights WHERE night = ?",
                [NIGHT],
            )
        }
        verdict_records = {v.record_type: v.records for v in latest_verdicts(warehouse, NIGHT)}
    assert len(batches) == 4 and set(summaries) == set(gate_input)
    with rta.connect(sandbox_warehouse) as con:
        for rtype, job in summaries.items():
            kpi = _kpis(con, rtype)
            notebook = rta.record_type_nights(
                con, rta.Filters(start=NIGHT, end=NIGHT, record_types=(rtype,))
            ).iloc[0]
            records, failed, success_rate, p50, p95 = gate_input[rtype]
            assert job.records == records == notebook.records == kpi["records_per_night"]
            assert job.records == verdict_records[rtype], "the gate judged the same records"
            assert job.failed == failed == notebook.failed
            assert job.success_rate == pytest.approx(success_rate)
            assert success_rate == pytest.approx(notebook.success_rate)
            assert success_rate == pytest.approx(kpi["success_rate"])
            assert job.p50_seconds == pytest.approx(p50) == notebook.p50_s == kpi["p50_s"]
            assert job.p95_seconds == pytest.approx(p95) == notebook.p95_s == kpi["p95_s"]
            assert job.estimated_cost_usd == pytest.approx(notebook.estimated_cost_usd)
            assert job.estimated_cost_usd == pytest.approx(kpi["estimated_cost_per_night_usd"])
            assert job.billed_cost_usd == pytest.approx(notebook.billed_cost_usd)
            assert job.billed_cost_usd == pytest.approx(kpi["billed_cost_per_night_usd"])
            assert job.tokens == notebook.tokens


def test_estimated_and_billed_costs_are_named_apart(sandbox_warehouse):
    """The API's batch cost and the sum of the steps' estimates are different measures: each
    model that has both shows both, under its own name."""
    with rta.connect(sandbox_warehouse) as con:
        for model in ("batch_runs", "nightly_runs", "record_type_nights"):
            columns = {row[0] for row in con.execute(f"DESCRIBE {model}").fetchall()}
            assert {"estimated_cost_usd", "billed_cost_usd"} <= columns, model
            assert "cost_usd" not in columns, model
        nights = rta.nightly_runs(con).set_index("night")
    landed = nights.loc[str(NIGHT)]
    assert landed.billed_cost_usd > 0 and landed.estimated_cost_usd > 0
