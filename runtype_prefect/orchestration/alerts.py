"""What a night tells a person: one event for each thing that broke, carrying its message.

Each alert is an event whose resource is the job (``runtype.job.<flow id>.<record type>``) or
the night (``runtype.night.<run key>``), labelled with the night, so an automation can let one
message through per job, night and kind (`runtype_prefect.orchestration.automations`). The
payload is an `Alert`: a headline, the facts (job, night, metric, now against the baseline, the
step and model when known) and what to do. Every word a person reads is written here, the
automations' Jinja layout included, so the messages are read and changed in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prefect.events import emit_event
from pydantic import BaseModel

from ..engine.outcomes import JobResult, Outcome
from ..engine.preflight import Level, PreflightReport
from ..gate import Verdict, VerdictKind
from .observability import quietly

QUALITY_EVENT = "runtype.quality.degraded"
JOB_EVENT = "runtype.job.failed"
QUOTA_EVENT = "runtype.preflight.quota"
DIGEST_EVENT = "runtype.night.digest"

#: The outcomes a person is told of as they happen (the rest wait for the digest, if any).
ALERTING_OUTCOMES = frozenset(
    {
        Outcome.FAILED,
        Outcome.TIMED_OUT,
        Outcome.ERROR,
        Outcome.INCOMPLETE,
        Outcome.BELOW_FLOOR,
        Outcome.OVER_BUDGET,
    }
)

_ADVICE = {
    Outcome.FAILED: "Read the job's logs in the flow run. Once the cause is fixed, re-run the"
    " night with the same run key: it reconnects to the batch, nothing is started twice.",
    Outcome.TIMED_OUT: "The batch is still running on Runtype and was left alone. Re-run the"
    " night with the same run key: it reconnects and lands the results.",
    Outcome.ERROR: "The job stopped before its batch ran (a key, a flow or a record type the"
    " API refused). Fix what the message names, then re-run the night.",
    Outcome.INCOMPLETE: "The batch ended, but not every record result arrived. Re-run the"
    " night with the same run key: it reconnects and lands the rest.",
    Outcome.BELOW_FLOOR: "The batch landed in full, but too few records succeeded. Look at"
    " the night's failures in the report, by step and error. The repair pass re-runs the"
    " records that failed for a transient reason.",
    Outcome.OVER_BUDGET: "Not started: the cost forecast is above the budget. Raise the budget"
    " (settings.money.max_cost_usd, night.max_cost_usd) or run fewer records.",
}
_QUALITY_ADVICE = (
    "Compare the night with its baseline in the report. Start with the step and model named"
    " above. Nothing to do if the change is expected: the gate keeps flagging it until the"
    " baseline has no clean night left in its look-back."
)
_METRIC_NAMES = {"success_rate": "success rate", "p95_s": "p95 execution time"}
_QUOTA_ADVICE = (
    "Raise the plan's quota before the next night, or run fewer records (incremental runs"
    " skip unchanged ones)."
)

#: The subject of every runtype alert message (Jinja, rendered by the automation).
SUBJECT = "[runtype] {{ event.payload.headline }}"
#: The body of every runtype alert message: the facts, what to do, and the flow run.
BODY = """{{ event.payload.headline }}

{% for fact in event.payload.facts %}- {{ fact }}
{% endfor %}
What to do: {{ event.payload.advice }}
{% if flow_run %}Flow run: {{ flow_run.name }} {{ flow_run|ui_url }}{% endif %}"""
#: The nightly did not start (a proactive trigger: no Running within the deadline).
MISSED_SUBJECT = "[runtype] missed night: {{ flow_run.name }} has not started"
MISSED_BODY = """Missed night: {{ flow_run.name }} was scheduled for \
{{ flow_run.expected_start_time }} and has not started.

- Deployment: {{ deployment.name }}
- State: {{ flow_run.state.name }}
- Work pool: {{ flow_run.work_pool_name }}

What to do: check that a worker polls the work pool and that the pool and the deployment are \
not paused. Once one runs, the run starts; its results are not lost, Runtype only runs \
tonight's batch when the flow starts.
Flow run: {{ flow_run|ui_url }}"""
#: The nightly did not finish by its deadline (a proactive trigger: no terminal state).
LATE_SUBJECT = "[runtype] late night: {{ flow_run.name }} is not finished"
LATE_BODY = """Late night: {{ flow_run.name }} (expected to start \
{{ flow_run.expected_start_time }}) has not finished by its deadline.

- State: {{ flow_run.state.name }}
- Started: {{ flow_run.start_time }}

What to do: open the flow run: its job tasks show which batch is still waiting and its \
progress. A hung worker is cancelled from the UI; a re-run with the same run key \
reconnects to the batches instead of starting them again.
Flow run: {{ flow_run|ui_url }}"""


#: The nightly's process died (a crash is the one end the night cannot report itself).
CRASHED_SUBJECT = "[runtype] crashed night: {{ flow_run.name }}"
CRASHED_BODY = """Crashed night: {{ flow_run.name }} stopped without finishing: \
{{ flow_run.state.message }}

- State: {{ flow_run.state.name }}
- Started: {{ flow_run.start_time }}

What to do: the process running the night died (killed, out of memory, a worker lost). \
Re-run the night with the same run key: it reconnects to the batches it had started and \
lands them, and starts only the rest.
Flow run: {{ flow_run|ui_url }}"""


class Alert(BaseModel):
    """What an alert event carries, and what its message says."""

    kind: str
    night: str
    job: str | None = None
    headline: str
    facts: list[str]
    advice: str


def job_alert(result: JobResult) -> Alert | None:
    """Return the alert for a job that ended in an `ALERTING_OUTCOMES` outcome, else None."""
    if result.outcome not in ALERTING_OUTCOMES:
        return None
    facts = [f"Job: {result.job}", f"Night: {result.run_key}", f"Outcome: {result.outcome.value}"]
    if result.records:
        facts.append(
            f"Records: {result.succeeded:,} of {result.records:,} succeeded, {result.failed:,}"
            " failed"
        )
    if result.batch_id:
        facts.append(f"Batch: {result.batch_id}")
    if result.message:
        facts.append(f"Message: {result.message}")
    return Alert(
        kind="job",
        night=result.run_key,
        job=result.job,
        headline=f"{result.job} {result.outcome.value} on {result.run_key}",
        facts=facts,
        advice=_ADVICE[result.outcome],
    )


def quality_alert(verdicts: list[Verdict]) -> Alert:
    """Return the alert for one job's degraded verdicts of a night (one or both metrics): what
    moved against the baseline, and the steps and models the gate names."""
    first = verdicts[0]
    night = first.night.isoformat()
    metrics = " and ".join(_METRIC_NAMES[v.metric.value] for v in verdicts)
    facts = [f"Job: {first.job}", f"Night: {night}"]
    for v in verdicts:
        facts.append(f"Metric: {v.summary(attribution=False)}")
        facts += [f"Moved: {a.describe()}" for a in v.attribution]
    return Alert(
        kind="quality",
        night=night,
        job=first.job,
        headline=f"{first.job} {metrics} degraded on {night}",
        facts=facts,
        advice=_QUALITY_ADVICE,
    )


def quota_alert(report: PreflightReport) -> Alert | None:
    """Return the alert for the preflight's quota findings above ok (a warning, or a refusal
    that kept the night from starting), else None."""
    findings = [f for f in report.findings if f.check == "quota" and f.level is not Level.OK]
    if not findings:
        return None
    refused = any(f.level is Level.FAIL for f in findings)
    what = "refused: nothing was started" if refused else "nearly used up"
    return Alert(
        kind="quota",
        night=report.run_key,
        headline=f"Runtype quota {what} for {report.run_key}",
        facts=[f"Night: {report.run_key}", *(f"Quota: {f.message}" for f in findings)],
        advice=_QUOTA_ADVICE,
    )


def preflight_alert(report: PreflightReport) -> Alert | None:
    """Return the alert for a night the preflight refused for a reason other than the quota
    (the quota alert tells of that), else None."""
    problems = [f for f in report.findings if f.level is Level.FAIL and f.check != "quota"]
    if not problems:
        return None
    return Alert(
        kind="job",
        night=report.run_key,
        headline=f"night {report.run_key} not started: the preflight failed",
        facts=[f"Night: {report.run_key}", *(f"{f.check}: {f.message}" for f in problems)],
        advice="Nothing was started. Fix what the lines above name (the key, a flow, a record"
        " type, the warehouse), then re-run the night with the same run key.",
    )


def digest_alert(run_key: str, results: list[JobResult], verdicts: list[Verdict]) -> Alert:
    """Return the night's digest: one line per job, every degraded metric, in one message."""
    broken = [r for r in results if r.outcome in ALERTING_OUTCOMES]
    degraded = [v for v in verdicts if v.degraded]
    facts = [f"Night: {run_key}"]
    for r in results:
        rate = f", {r.success_rate:.1%} succeeded" if r.success_rate is not None else ""
        facts.append(f"{r.job}: {r.outcome.value}, {r.records:,} records{rate}")
    facts += [f"Degraded: {v.describe()}" for v in degraded]
    judged = sum(1 for v in verdicts if v.verdict is not VerdictKind.NO_VERDICT)
    problems = len(broken) + len(degraded)
    headline = (
        f"night {run_key}: {problems} problem{'s' if problems != 1 else ''}"
        f" ({len(broken)} jobs failed, {len(degraded)} metrics degraded of {judged} judged)"
        if problems
        else f"night {run_key}: all {len(results)} jobs fine"
    )
    advice = (
        "Open the flow run's summary; each line above names the job and what to look at."
        if problems
        else "Nothing to do."
    )
    return Alert(kind="digest", night=run_key, headline=headline, facts=facts, advice=advice)


def emit_alert(
    event: str,
    alert: Alert,
    *,
    flow_id: str | None = None,
    record_type: str = "",
    extra: dict[str, Any] | None = None,
) -> None:
    """Emit ``event`` carrying ``alert`` (and ``extra`` in its payload): on the job
    (``runtype.job.<flow id>.<record type>``) when one is named, else on the night
    (``runtype.night.<run key>``), labelled with the night and kind the automations let one
    message through for. Never raises (an unreachable API only loses the event, logged)."""
    resource_id = (
        f"runtype.job.{flow_id}.{record_type}" if flow_id else f"runtype.night.{alert.night}"
    )
    resource = {
        "prefect.resource.id": resource_id,
        "prefect.resource.name": alert.job or f"night {alert.night}",
        "runtype.night": alert.night,
        "runtype.alert": alert.kind,
    }
    related = (
        [{"prefect.resource.id": f"runtype.record-type.{record_type}",
          "prefect.resource.role": "record-type"}]
        if record_type
        else []
    )  # fmt: skip
    payload = {**(extra or {}), **alert.model_dump(mode="json")}
    quietly(lambda: emit_event(event=event, resource=resource, related=related, payload=payload))


def emit_job_alerts(results: Iterable[JobResult]) -> int:
    """Emit ``runtype.job.failed`` for every result with an alerting outcome; return how many."""
    sent = 0
    for result in results:
        alert = job_alert(result)
        if alert is not None:
            emit_alert(JOB_EVENT, alert, flow_id=result.flow_id, record_type=result.record_type)
            sent += 1
    return sent


def emit_quality_alerts(verdicts: Iterable[Verdict]) -> int:
    """Emit ``runtype.quality.degraded`` once per job with a degraded metric (its payload
    also holds the first degraded verdict's fields: metric, current, baseline, p value);
    return how many."""
    by_job: dict[tuple[str, str], list[Verdict]] = {}
    for verdict in verdicts:
        if verdict.degraded:
            by_job.setdefault((verdict.flow_id, verdict.record_type), []).append(verdict)
    for (flow_id, record_type), degraded in by_job.items():
        emit_alert(
            QUALITY_EVENT,
            quality_alert(degraded),
            flow_id=flow_id,
            record_type=record_type,
            extra=degraded[0].model_dump(mode="json"),
        )
    return len(by_job)


def emit_preflight_alerts(report: PreflightReport) -> int:
    """Emit ``runtype.preflight.quota`` when the preflight's quota check warned or refused,
    and ``runtype.job.failed`` on the night when another check refused it; return how many."""
    sent = 0
    for event, alert in ((QUOTA_EVENT, quota_alert(report)), (JOB_EVENT, preflight_alert(report))):
        if alert is not None:
            emit_alert(event, alert)
            sent += 1
    return sent


def emit_digest(run_key: str, results: list[JobResult], verdicts: list[Verdict]) -> None:
    """Emit ``runtype.night.digest``: the night in one message (`digest_alert`)."""
    emit_alert(DIGEST_EVENT, digest_alert(run_key, results, verdicts))
