"""The gate's verdicts: one per job, night and metric, as stored in ``quality_verdicts``."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel

from .attribution import Attribution


class Metric(StrEnum):
    """What the gate judges of a job's night."""

    SUCCESS_RATE = "success_rate"
    P95 = "p95_s"


class VerdictKind(StrEnum):
    """The gate's answer for one metric."""

    OK = "ok"
    DEGRADED = "degraded"
    NO_VERDICT = "no_verdict"


class Verdict(BaseModel):
    """One metric of one job on one night, against the job's clean baseline."""

    night: date
    flow_id: str
    record_type: str
    job_name: str | None = None
    metric: Metric
    records: int
    current: float | None = None
    baseline: float | None = None
    baseline_nights: int = 0
    p_value: float | None = None
    alpha: float | None = None
    min_effect: float | None = None
    verdict: VerdictKind
    reason: str = ""
    degraded_since: date | None = None
    degraded_nights: int | None = None
    #: The steps and models that moved, most significant first: those the unit tests flagged,
    #: or, for a night the record-level test flagged alone, the likeliest unit.
    attribution: list[Attribution] = []

    @property
    def degraded(self) -> bool:
        """True when the gate flagged this metric tonight."""
        return self.verdict is VerdictKind.DEGRADED

    @property
    def job(self) -> str:
        """The job's label: its name and record type, or flow id and record type."""
        return f"{self.job_name or self.flow_id} · {self.record_type}"

    def describe(self) -> str:
        """Return a one-line human summary, e.g. for logs, the run summary and events: the job,
        then `summary`."""
        return f"{self.job}: {self.summary()}"

    def summary(self, *, attribution: bool = True) -> str:
        """Return the verdict in words without the job (what moved against the baseline, the
        records, p); with ``attribution``, naming the first step or model that moved."""
        if self.verdict is VerdictKind.NO_VERDICT:
            return f"{self.metric.value} no verdict: {self.reason}"
        if self.metric is Metric.SUCCESS_RATE:
            figures = (
                f"success rate {self.current:.1%} vs {self.baseline:.1%}"
                f" ({((self.current or 0) - (self.baseline or 0)) * 100:+.1f} points)"
            )
        else:
            change = (self.current or 0) / (self.baseline or 1) - 1
            figures = f"p95 {self.current:.2f}s vs {self.baseline:.2f}s ({change:+.0%})"
        text = f"{figures}, {self.records} records, p={self.p_value:.2g}"
        if attribution and self.degraded and self.attribution:
            text += f"; moved: {self.attribution[0].describe()}"
        if self.degraded and self.degraded_since is not None:
            text += f"; degraded since {self.degraded_since:%m-%d}, night {self.degraded_nights}"
        return text
