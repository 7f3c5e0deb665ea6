"""The quality gate: each record type's night against its trailing baseline in the warehouse.

After a nightly run, success rate and p95 execution time per record type are compared with the
same numbers pooled over the previous nights. A regression past a threshold is a *degraded*
finding: it emits ``runtype.quality.degraded``, shows in the run summary and, when asked,
fails the run. `quality_followup` is the flow an example automation runs in reaction.
"""

from __future__ import annotations

from datetime import date, timedelta

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event
from pydantic import BaseModel, Field

from ..warehouse import Warehouse

QUALITY_EVENT = "runtype.quality.degraded"


class QualityThresholds(BaseModel):
    """When a night counts as a regression."""

    max_success_rate_drop: float = Field(0.05, ge=0, description="Absolute drop, 0.05 = 5 points")
    max_p95_increase: float = Field(0.5, ge=0, description="Relative rise, 0.5 = +50 %")
    baseline_nights: int = Field(7, ge=1, description="Nights before this one to compare with")
    min_baseline_nights: int = Field(3, ge=1, description="Fewer nights of history: no verdict")
    min_records: int = Field(10, ge=1, description="Fewer records tonight: no verdict")


class QualityFinding(BaseModel):
    """One metric of one record type on one night, against its baseline."""

    record_type: str
    night: date
    metric: str  # "success_rate" or "p95_s"
    current: float
    baseline: float
    change: float  # success_rate: points (current - baseline); p95_s: relative ((c - b) / b)
    threshold: float
    records: int
    baseline_nights: int
    degraded: bool

    def describe(self) -> str:
        """Return a one-line human summary, e.g. for logs and the run summary."""
        if self.metric == "success_rate":
            return (
                f"{self.record_type}: success rate {self.current:.1%} vs {self.baseline:.1%} "
                f"over the previous {self.baseline_nights} nights ({self.change * 100:+.1f} points)"
            )
        return (
            f"{self.record_type}: p95 execution time {self.current:.2f}s vs {self.baseline:.2f}s "
            f"over the previous {self.baseline_nights} nights ({self.change:+.0%})"
        )


GATE_SQL = """
WITH tonight AS (
    SELECT record_type, count(*) AS records,
           avg(CAST(success AS INTEGER)) AS success_rate,
           quantile_cont(execution_time_s, 0.95) AS p95_s
    FROM record_facts WHERE night = ? GROUP BY record_type
),
baseline AS (
    SELECT record_type, count(DISTINCT night) AS nights,
           avg(CAST(success AS INTEGER)) AS success_rate,
           quantile_cont(execution_time_s, 0.95) AS p95_s
    FROM record_facts WHERE night >= ? AND night < ? GROUP BY record_type
)
SELECT t.record_type, t.records, t.success_rate, t.p95_s,
       b.nights, b.success_rate AS base_success_rate, b.p95_s AS base_p95_s
FROM tonight t JOIN baseline b USING (record_type)
ORDER BY t.record_type
"""


def evaluate_quality(
    warehouse: Warehouse, night: date, thresholds: QualityThresholds | None = None
) -> list[QualityFinding]:
    """Return the findings for every record type with enough history on ``night``.

    Record types with fewer than ``min_baseline_nights`` nights of history, or fewer than
    ``min_records`` records tonight, get no finding (no verdict is better than a noisy one).
    """
    t = thresholds or QualityThresholds()
    rows = warehouse.query(GATE_SQL, [night, night - timedelta(days=t.baseline_nights), night])
    findings = []
    for rtype, records, success, p95, nights, base_success, base_p95 in rows:
        if nights < t.min_baseline_nights or records < t.min_records:
            continue
        common = {
            "record_type": rtype,
            "night": night,
            "records": records,
            "baseline_nights": nights,
        }
        drop = success - base_success
        findings.append(
            QualityFinding(
                metric="success_rate",
                current=success,
                baseline=base_success,
                change=drop,
                threshold=t.max_success_rate_drop,
                degraded=round(-drop, 9) > t.max_success_rate_drop,  # rounding: no float noise
                **common,
            )
        )
        if p95 is not None and base_p95:
            rise = (p95 - base_p95) / base_p95
            findings.append(
                QualityFinding(
                    metric="p95_s",
                    current=p95,
                    baseline=base_p95,
                    change=rise,
                    threshold=t.max_p95_increase,
                    degraded=round(rise, 9) > t.max_p95_increase,
                    **common,
                )
            )
    return findings


def emit_degraded(findings: list[QualityFinding]) -> None:
    """Emit ``runtype.quality.degraded`` for each degraded finding (resource: the record type)."""
    for finding in findings:
        if finding.degraded:
            emit_event(
                event=QUALITY_EVENT,
                resource={
                    "prefect.resource.id": f"runtype.record-type.{finding.record_type}",
                    "prefect.resource.name": finding.record_type,
                },
                payload=finding.model_dump(mode="json"),
            )


def quality_markdown(findings: list[QualityFinding]) -> str:
    """Return the run summary's quality section (empty when there is no verdict at all)."""
    if not findings:
        return ""
    lines = ["", "## Quality gate", ""]
    for f in findings:
        mark = "**DEGRADED**" if f.degraded else "ok"
        lines.append(f"- {mark} {f.describe()}")
    return "\n".join(lines)


@flow(name="runtype-quality-followup")
def quality_followup(
    record_type: str, metric: str, current: float, baseline: float, night: str
) -> str:
    """React to ``runtype.quality.degraded`` (run by the example automation in prefect.yaml):
    record what regressed as an artifact and an error log line. Swap in a notification block
    (Slack, e-mail, PagerDuty) for production."""
    message = (
        f"Runtype quality degraded on {night}: {record_type} {metric} is {current:.4g} "
        f"against a baseline of {baseline:.4g}"
    )
    get_run_logger().error(message)
    create_markdown_artifact(
        markdown=f"# Quality regression\n\n{message}", key="runtype-quality-regression"
    )
    return message
