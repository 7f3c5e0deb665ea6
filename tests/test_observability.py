"""What the Prefect UI shows of a night: the summary's columns and the per-job table's rows."""

from __future__ import annotations

import io

from runtype_prefect.engine.outcomes import JobResult, Outcome
from runtype_prefect.orchestration.observability import (
    SUMMARY_COLUMNS,
    job_rows,
    nightly_markdown,
    summary_row,
)


def result(**fields) -> JobResult:
    base = {
        "job": "Lead Enrichment",
        "flow_id": "flow_1",
        "record_type": "lead",
        "run_key": "2026-12-06",
        "batch_id": "batch_1",
        "outcome": Outcome.COMPLETED_WITH_FAILURES,
        "records": 1200,
        "succeeded": 1089,
        "failed": 111,
        "p50_seconds": 7.9,
        "p95_seconds": 14.8,
        "tokens": 1_500_000,
        "estimated_cost_usd": 7.08,
        "billed_cost_usd": 7.08,
    }
    return JobResult(**{**base, **fields})


def test_the_nightly_summary_fits_its_pane_and_says_what_needs_a_look():
    text = nightly_markdown(
        "2026-12-06", [result(), result(job="Churn", outcome=Outcome.COMPLETED)]
    )
    header, _, lead, churn = text.splitlines()[2:6]
    assert header.count("|") - 1 == len(SUMMARY_COLUMNS)
    assert "billed USD" in header and "est. USD" in header
    # Outcomes wrap at spaces in the UI's narrow table; counts carry thousands separators.
    assert "| completed with failures | 1,200 | 111 |" in lead
    assert "| completed | " in churn
    attention = text.split("## Needs attention")[1]
    assert "**Lead Enrichment**: completed with failures, 111 of 1,200 records failed." in attention
    assert "Churn" not in attention


def test_a_jobs_table_artifact_lists_every_figure_as_a_row():
    """Two columns fit the artifact pane at any width; one row of twelve columns showed six."""
    rows = job_rows(result(billed_cost_usd=None))
    assert [row["figure"] for row in rows] == list(summary_row(result()))
    assert all(set(row) == {"figure", "value"} for row in rows)
    values = {row["figure"]: row["value"] for row in rows}
    assert values["batch"] == "batch_1" and values["billed USD"] == ""
    assert values["tokens"] == "1,500,000" and values["estimated USD"] == "7.0800"
    assert values["outcome"] == "completed with failures"


def test_the_terminals_results_table_reads_whole_at_80_columns():
    from rich.console import Console

    from runtype_prefect.cli.console import results_table

    results = [
        result(job="Customer Health Summary"),
        result(job="Lead Enrichment"),
        result(job="Churn Risk Score", outcome=Outcome.BELOW_FLOOR),
    ]
    for width, shown in ((80, False), (130, True)):
        out = Console(width=width, record=True, file=io.StringIO())
        out.print(results_table("Night 2026-12-06", results, width=width))
        text = out.export_text()
        assert max(len(line) for line in text.splitlines()) <= width
        assert "…" not in text, text  # nothing cut: outcomes wrap at their spaces
        assert "1,200" in text and "7.0800" in text and "14.80" in text
        assert ("p50 s" in text) is shown and ("1,500,000" in text) is shown
