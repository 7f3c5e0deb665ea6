"""Which step or model moved: the gate's tests on the units of a job's night.

A job's records hide where a night went wrong; its units do not. A unit is a step of the job's
flow or a model its prompt steps call (the ``unit_nights`` model). Per unit, tonight's failed
executions and its executions slower than the unit's own baseline p95 are tested against the
same clean nights as the job's record-level tests: against the pooled baseline rate, as a
count whose rate varies from night to night as much as the job's units' rates varied over
those nights (`varying_rate_test`, with the variation `rate_variation` estimates from every
unit of the job at once: a few nights of one unit are too few to tell). A step that fails 5×
as often is plain among 40 executions even when it hardly moves the records' success rate
among other noise.

Many units are tested each night, so each test's p value is multiplied by the number of units
tested for that measure (Bonferroni): the chance that any unit of a clean night is flagged stays
within ``unit_alpha``. The gate's false alarms are the sum of its four families of tests (the
records' success rate and p95, the units' failures and slowness), hence a ``unit_alpha``
below the record tests' ``alpha``.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

from pydantic import BaseModel

from .stats import rate_variation, varying_rate_test
from .thresholds import QualityThresholds

JobKey = tuple[str, str]
UnitKey = tuple[str, str]  # (unit, name): ("step", "Fetch CRM account"), ("model", "gpt-4o")


class Attribution(BaseModel):
    """A step or model of a job that moved on a night, with the test behind it."""

    unit: Literal["step", "model"]
    name: str
    step_type: str | None = None
    model: str | None = None
    measure: Literal["failures", "slow"]
    bad: int
    executions: int
    base_rate: float
    #: The one-sided p value multiplied by the units tested (at most 1).
    p_value: float

    def describe(self) -> str:
        """Return the finding in one line, e.g. ``step "Fetch CRM account" (api-call):
        failures 9 of 40 vs 2.1% baseline, p = 3e-06``."""
        if self.unit == "step":
            where = f'step "{self.name}" ({self.step_type})'
            if self.model:
                where += f" on {self.model}"
        else:
            where = f"model {self.name}"
        what = "failures" if self.measure == "failures" else "slower than usual"
        return (
            f"{where}: {what} {self.bad} of {self.executions} vs {self.base_rate:.1%}"
            f" baseline, p = {self.p_value:.1g}"
        )


@dataclass(frozen=True)
class UnitNight:
    """One unit of a job on one night (a row of ``unit_nights``)."""

    step_type: str | None
    model: str | None
    executions: int
    failed: int
    p95_s: float | None


UnitHistory = dict[UnitKey, dict[date, UnitNight]]


def unit_failures(
    units: UnitHistory, night: date, clean: Iterable[date], t: QualityThresholds
) -> tuple[list[Attribution], Attribution | None]:
    """Test each unit's failed executions on ``night`` against the ``clean`` nights; return
    the units flagged (significant at ``unit_alpha`` after Bonferroni, at least
    ``min_failure_ratio`` × their baseline rate and ``min_success_drop`` above it), most
    significant first, and the unit with the lowest p value whose failure rate rose (None
    without one)."""
    found = _moved(units, list(units), night, clean, "failures", lambda k, n: units[k][n].failed)
    flagged = [
        a
        for a in found
        if a.p_value < t.unit_alpha
        and a.bad / a.executions >= t.min_failure_ratio * a.base_rate
        and a.bad / a.executions - a.base_rate >= t.min_success_drop - 1e-9
    ]
    return flagged, (found[0] if found else None)


def unit_p95_bases(units: UnitHistory, clean: Iterable[date]) -> dict[UnitKey, float]:
    """Return each unit's baseline p95: the median of its nightly p95s over the ``clean``
    nights (units without one are left out)."""
    clean = set(clean)
    bases = {}
    for key, nights in units.items():
        p95s = [u.p95_s for n, u in nights.items() if n in clean and u.p95_s is not None]
        if p95s:
            bases[key] = statistics.median(p95s)
    return bases


def unit_slowdowns(
    units: UnitHistory,
    night: date,
    clean: Iterable[date],
    bases: dict[UnitKey, float],
    slower: dict[UnitKey, dict[date, int]],
    t: QualityThresholds,
) -> tuple[list[Attribution], Attribution | None]:
    """Test each unit's executions slower than its baseline p95 (``slower``: per unit and
    night) on ``night`` against the ``clean`` nights; return the units flagged (significant
    at ``unit_alpha`` after Bonferroni, tonight's p95 ``min_p95_increase`` above the base),
    most significant first, and the unit with the lowest p value that slowed (None without
    one)."""
    found = _moved(
        units, list(bases), night, clean, "slow", lambda k, n: slower.get(k, {}).get(n, 0)
    )

    def rise(a: Attribution) -> float:
        return (units[a.unit, a.name][night].p95_s or 0.0) / bases[a.unit, a.name] - 1

    flagged = [a for a in found if a.p_value < t.unit_alpha and rise(a) >= t.min_p95_increase]
    return flagged, (found[0] if found else None)


def _moved(
    units: UnitHistory,
    keys: list[UnitKey],
    night: date,
    clean: Iterable[date],
    measure: Literal["failures", "slow"],
    bad: Callable[[UnitKey, date], int],
) -> list[Attribution]:
    """Test the ``bad`` count of each of ``keys`` with executions on ``night`` against the
    ``clean`` nights (`varying_rate_test`, the variation estimated from all of them); return
    the units whose rate rose, p values multiplied by the units tested, most significant
    first."""
    clean = list(clean)
    tested = [key for key in keys if night in units[key]]
    baselines = {
        key: [(bad(key, n), units[key][n].executions) for n in clean if n in units[key]]
        for key in tested
    }
    c2 = rate_variation(list(baselines.values()))
    found = []
    for key in tested:
        tonight, baseline, count = units[key][night], baselines[key], bad(key, night)
        if not baseline or not tonight.executions:
            continue
        test = varying_rate_test(count, tonight.executions, baseline, c2)
        if count / tonight.executions <= test.base_rate:
            continue
        p_value = min(1.0, test.p_value * len(tested))
        found.append(_attribution(*key, tonight, measure, count, test.base_rate, p_value))
    return sorted(found, key=lambda a: a.p_value)


def _attribution(
    unit: str, name: str, u: UnitNight, measure: str, bad: int, base: float, p: float
) -> Attribution:
    return Attribution.model_validate(
        {
            "unit": unit, "name": name, "step_type": u.step_type, "model": u.model,
            "measure": measure, "bad": bad, "executions": u.executions, "base_rate": base,
            "p_value": p,
        }
    )  # fmt: skip


def group_units(
    rows: Iterable[tuple[str, str, date, str, str, str | None, str | None, int, int, float | None]],
) -> dict[JobKey, UnitHistory]:
    """Return ``unit_nights`` rows (flow_id, record_type, night, unit, name, step_type, model,
    executions, failed, p95_s) per job, unit and night."""
    jobs: dict[JobKey, UnitHistory] = defaultdict(lambda: defaultdict(dict))
    for flow, rtype, night, unit, name, step_type, model, executions, failed, p95 in rows:
        jobs[flow, rtype][unit, name][night] = UnitNight(step_type, model, executions, failed, p95)
    return jobs
