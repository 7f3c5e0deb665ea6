"""What each alert says, and which automations setup asks for: pure functions, no server."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from runtype_prefect.engine.outcomes import JobResult, Outcome
from runtype_prefect.engine.preflight import Level, PreflightReport
from runtype_prefect.gate import Verdict, VerdictKind
from runtype_prefect.gate.attribution import Attribution
from runtype_prefect.gate.verdicts import Metric
from runtype_prefect.orchestration.alerts import (
    ALERTING_OUTCOMES,
    digest_alert,
    job_alert,
    preflight_alert,
    quality_alert,
    quota_alert,
)
from runtype_prefect.orchestration.automations import alert_rules


def result(outcome: Outcome, **fields) -> JobResult:
    base = {
        "job": "Lead Enrichment", "flow_id": "flow_1", "record_type": "lead",
        "run_key": "2026-12-06", "batch_id": "batch_1", "outcome": outcome, "records": 1200,
        "succeeded": 900, "failed": 300, "message": "900/1200 records succeeded",
    }  # fmt: skip
    return JobResult(**{**base, **fields})


def verdict(metric: Metric = Metric.SUCCESS_RATE, **fields) -> Verdict:
    base = {
        "night": date(2026, 12, 6), "flow_id": "flow_1", "record_type": "lead",
        "job_name": "Lead Enrichment", "metric": metric, "records": 1200, "current": 0.75,
        "baseline": 0.92, "baseline_nights": 14, "p_value": 1e-12, "alpha": 0.005,
        "verdict": VerdictKind.DEGRADED,
    }  # fmt: skip
    return Verdict(**{**base, **fields})


MOVED = Attribution(
    unit="step", name="Lookup company", step_type="api-call", measure="failures", bad=180,
    executions=1200, base_rate=0.02, p_value=1e-40,
)  # fmt: skip


@pytest.mark.parametrize("outcome", sorted(ALERTING_OUTCOMES))
def test_every_alerting_outcome_says_what_broke_where_and_what_to_do(outcome):
    alert = job_alert(result(outcome))
    assert alert is not None
    assert alert.headline == f"Lead Enrichment {outcome.value} on 2026-12-06"
    assert "Job: Lead Enrichment" in alert.facts and "Night: 2026-12-06" in alert.facts
    assert f"Outcome: {outcome.value}" in alert.facts
    assert "Records: 900 of 1,200 succeeded, 300 failed" in alert.facts
    assert "Batch: batch_1" in alert.facts and alert.advice


@pytest.mark.parametrize(
    "outcome", [Outcome.COMPLETED, Outcome.COMPLETED_WITH_FAILURES, Outcome.NO_RECORDS,
                Outcome.NOTHING_TO_RUN, Outcome.CANCELLED],
)  # fmt: skip
def test_outcomes_that_need_no_one_at_night_send_nothing(outcome):
    assert job_alert(result(outcome)) is None


def test_a_quality_alert_names_the_metrics_against_baseline_and_what_moved():
    p95 = verdict(Metric.P95, current=14.0, baseline=9.0, attribution=[])
    alert = quality_alert([verdict(attribution=[MOVED]), p95])
    assert alert.headline == (
        "Lead Enrichment · lead success rate and p95 execution time degraded on 2026-12-06"
    )
    assert alert.facts[:2] == ["Job: Lead Enrichment · lead", "Night: 2026-12-06"]
    assert alert.facts[2].startswith("Metric: success rate 75.0% vs 92.0% (-17.0 points)")
    assert alert.facts[3] == (
        'Moved: step "Lookup company" (api-call): failures 180 of 1200 vs 2.0% baseline, p = 1e-40'
    )
    assert alert.facts[4].startswith("Metric: p95 14.00s vs 9.00s (+56%)")


def test_a_quota_alert_only_when_the_preflight_warned_or_refused():
    report = PreflightReport("2026-12-06")
    report.add(Level.OK, "quota", "daily: 9,000 of 10,000 left; tonight needs 1,500")
    assert quota_alert(report) is None
    report.add(Level.WARN, "quota", "tonight brings the monthly quota to 93% used")
    alert = quota_alert(report)
    assert alert is not None and alert.headline == "Runtype quota nearly used up for 2026-12-06"
    assert "Quota: tonight brings the monthly quota to 93% used" in alert.facts
    report.add(Level.FAIL, "quota", "tonight needs 1,500 executions but 200 are left")
    assert "refused" in quota_alert(report).headline  # type: ignore[union-attr]


def test_a_night_the_preflight_refused_is_a_failed_night_unless_only_the_quota_did():
    report = PreflightReport("2026-12-06")
    report.add(Level.FAIL, "quota", "tonight needs 1,500 executions but 200 are left")
    assert preflight_alert(report) is None, "the quota alert tells of that"
    report.add(Level.FAIL, "record types", "'leads' is not a record type of flow_1 (lead?)")
    alert = preflight_alert(report)
    assert alert is not None and alert.headline == (
        "night 2026-12-06 not started: the preflight failed"
    )
    assert alert.facts == [
        "Night: 2026-12-06", "record types: 'leads' is not a record type of flow_1 (lead?)",
    ]  # fmt: skip
    assert alert.advice.startswith("Nothing was started.")


def test_the_digest_is_the_whole_night_in_one_message():
    quiet = digest_alert("2026-12-06", [result(Outcome.COMPLETED, failed=0, succeeded=1200)], [])
    assert (
        quiet.headline == "night 2026-12-06: all 1 jobs fine" and quiet.advice == "Nothing to do."
    )
    busy = digest_alert(
        "2026-12-06",
        [result(Outcome.BELOW_FLOOR), result(Outcome.COMPLETED, job="Ticket Triage")],
        [verdict(attribution=[MOVED])],
    )
    assert busy.headline == (
        "night 2026-12-06: 2 problems (1 jobs failed, 1 metrics degraded of 1 judged)"
    )
    assert "Lead Enrichment: below_floor, 1,200 records, 75.0% succeeded" in busy.facts
    assert any(f.startswith("Degraded: ") and "Lookup company" in f for f in busy.facts)


def test_the_command_line_defaults_are_the_automations():
    from runtype_prefect.cli.app import LATE_AFTER_MINUTES, MISSED_AFTER_MINUTES
    from runtype_prefect.orchestration import automations

    assert timedelta(minutes=LATE_AFTER_MINUTES) == automations.DEFAULT_LATE_AFTER
    assert timedelta(minutes=MISSED_AFTER_MINUTES) == automations.DEFAULT_MISSED_AFTER


def test_setup_asks_for_late_and_missed_always_and_a_digest_instead_of_the_rest():
    rules = {r.name: r for r in alert_rules(late_after=timedelta(hours=4))}
    assert set(rules) == {
        "runtype · late night", "runtype · missed night", "runtype · crashed night",
        "runtype · quality degraded", "runtype · job failed", "runtype · quota",
    }  # fmt: skip
    late = rules["runtype · late night"].trigger
    assert late.posture == "Proactive" and late.within == timedelta(hours=4)
    assert "prefect.flow-run.Completed*" in late.expect
    quality = rules["runtype · quality degraded"].trigger
    assert quality.for_each == {"prefect.resource.id", "runtype.night"}, "one per job-night"
    assert quality.within == timedelta(hours=24) and quality.threshold == 1
    digest = {r.name for r in alert_rules(digest=True)}
    assert digest == {
        "runtype · late night", "runtype · missed night", "runtype · crashed night",
        "runtype · night digest",
    }  # fmt: skip
