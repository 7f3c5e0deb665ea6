"""The quality gate in the Prefect layer: judge the night, tell the operator, react.

The gate itself (`runtype_prefect.gate`) is a function of the warehouse. Here its verdicts
become lines of the run summary and, when asked, a failed run; its degraded verdicts become
``runtype.quality.degraded`` events in `runtype_prefect.orchestration.alerts`.
`quality_followup` is the flow an example automation runs in reaction.
"""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from ..gate import QualityThresholds, Verdict, VerdictKind, judge_nights
from ..warehouse import Warehouse

__all__ = [
    "QualityThresholds",
    "judge_run_key",
    "quality_followup",
    "quality_markdown",
]


def judge_run_key(
    warehouse: Warehouse, run_key: str, thresholds: QualityThresholds | None = None
) -> list[Verdict]:
    """Return the gate's verdicts of the night ``run_key`` names (judging any earlier night
    still without verdicts first), or none when the run key is not a date."""
    try:
        night = date.fromisoformat(run_key)
    except ValueError:
        return []
    return judge_nights(warehouse, night, thresholds)


def quality_markdown(verdicts: list[Verdict]) -> str:
    """Return the run summary's quality section: every degraded metric and every job without
    a verdict, one line each, then how many were judged ok (empty without verdicts)."""
    if not verdicts:
        return ""
    lines = ["", "## Quality gate", ""]
    for v in verdicts:
        if v.verdict is VerdictKind.DEGRADED:
            lines.append(f"- **DEGRADED** {v.describe()}")
    for v in verdicts:
        if v.verdict is VerdictKind.NO_VERDICT:
            lines.append(f"- {v.describe()}")
    ok = sum(1 for v in verdicts if v.verdict is VerdictKind.OK)
    lines.append(f"- ok: {ok} of {len(verdicts)} job metrics")
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
