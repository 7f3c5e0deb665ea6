"""When the gate calls a night degraded: the thresholds, a Prefect flow parameter."""

from __future__ import annotations

from pydantic import BaseModel, Field


class QualityThresholds(BaseModel):
    """The gate's settings. Defaults were chosen by the replay (``make bench``); what each
    costs in false alarms is in docs/quality-gate.md."""

    alpha: float = Field(
        0.005,
        gt=0,
        lt=1,
        description="One-sided significance of each test: how unlikely tonight must be by chance",
    )
    unit_alpha: float = Field(
        0.001,
        gt=0,
        lt=1,
        description="Significance of the step and model tests, for all units of a job at once"
        " (each unit's p value is multiplied by the units tested): how unlikely it must be"
        " that any of them moved this much by chance",
    )
    min_failure_ratio: float = Field(
        2.0, ge=1, description="Tonight's failure rate must be at least this × the baseline's"
    )
    min_success_drop: float = Field(
        0.02, ge=0, description="…and the success rate at least this much lower (0.02 = 2 points)"
    )
    min_p95_increase: float = Field(
        0.25, ge=0, description="Tonight's p95 must be at least this much higher (0.25 = +25 %)"
    )
    baseline_nights: int = Field(
        14, ge=1, description="Clean nights (not flagged) the baseline is taken from"
    )
    min_baseline_nights: int = Field(3, ge=1, description="Fewer clean nights: no verdict")
    min_records: int = Field(10, ge=1, description="Fewer records tonight: no verdict")
    lookback_days: int = Field(
        56,
        ge=1,
        description="How far back clean nights are looked for; a regression that lasts longer"
        " stops being flagged (no clean nights left) and becomes the new baseline",
    )
