"""The quality gate: each job's night judged against its own clean history in the warehouse.

A function of the warehouse alone (no Prefect, no HTTP): the nightly flow calls it after
landing, and the replay in ``benchmarks/`` scores it over a simulated year.
"""

from .judge import judge_night, judge_nights, latest_verdicts
from .thresholds import QualityThresholds
from .verdicts import Metric, Verdict, VerdictKind

__all__ = [
    "Metric",
    "QualityThresholds",
    "Verdict",
    "VerdictKind",
    "judge_night",
    "judge_nights",
    "latest_verdicts",
]
