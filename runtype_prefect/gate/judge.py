"""Judging a night: each job's success rate and p95 against its own clean baseline.

Per job (flow × record type), per metric:

* the **baseline** is taken from the job's last ``baseline_nights`` nights that the gate did
  not flag for that metric, so a regression that persists stays flagged instead of becoming
  the new normal (until no clean night is left within ``lookback_days``);
* both metrics become a count of *bad records* tonight, tested against the baseline nights'
  rate of bad records with an exact one-sided binomial test, scaled by how much more than
  binomial chance the baseline nights differ from each other (a quasi-binomial dispersion):
  big jobs are not judged as if every night were drawn from one fixed rate;
* **success rate**: a bad record is a failed one. Flagged when significant at ``alpha`` *and*
  the failure rate is at least ``min_failure_ratio`` × the baseline's *and* the success rate is
  ``min_success_drop`` lower;
* **p95**: a bad record is one slower than the baseline's p95 (the median of its nightly p95s),
  so 40 records are not judged like 1,200 (an order-statistic test). Flagged when significant
  *and* tonight's p95 is ``min_p95_increase`` above the baseline's;
* the baseline rate leaves out the worst of every seven clean nights, so one bad night the gate
  missed does not raise the bar for the next ones;
* each metric's units, the job's steps and the models its prompts call, are tested too
  (`runtype_prefect.gate.attribution`): a unit flagged makes the metric degraded, and every
  degraded verdict names the units that moved;
* too little data is a verdict of its own (``no_verdict`` with the reason), never silence.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ..warehouse import Warehouse
from .attribution import (
    Attribution,
    UnitKey,
    group_units,
    unit_failures,
    unit_p95_bases,
    unit_slowdowns,
)
from .stats import excess_test
from .thresholds import QualityThresholds
from .verdicts import Metric, Verdict, VerdictKind

JobKey = tuple[str, str]


@dataclass(frozen=True)
class _Night:
    night: date
    records: int
    failed: int
    p95_s: float | None


@dataclass(frozen=True)
class _Flag:
    verdict: str
    since: date | None
    nights: int | None


def judge_nights(
    warehouse: Warehouse, through: date, thresholds: QualityThresholds | None = None
) -> list[Verdict]:
    """Judge, oldest first, every night up to ``through`` that has a job without verdicts
    (a backfilled history, nights run without the gate), then ``through`` itself; store every
    verdict and return those of ``through``.

    The order matters: a night's baseline leaves out the nights flagged before it.
    """
    pending = [
        row[0]
        for row in warehouse.query(
            "SELECT DISTINCT j.night FROM job_nights j WHERE j.night < ? AND NOT EXISTS ("
            " SELECT 1 FROM quality_verdicts v WHERE v.night = j.night"
            " AND v.flow_id = j.flow_id AND v.record_type = j.record_type) ORDER BY 1",
            [through],
        )
    ]
    for night in pending:
        judge_night(warehouse, night, thresholds)
    return judge_night(warehouse, through, thresholds)


def judge_night(
    warehouse: Warehouse, night: date, thresholds: QualityThresholds | None = None
) -> list[Verdict]:
    """Judge every job with records on ``night`` (both metrics), store the verdicts in
    ``quality_verdicts`` (replacing that night's earlier ones) and return them, ordered by job
    and metric. Reads the ``job_nights``, ``record_facts`` and ``unit_nights`` models and
    earlier verdicts."""
    t = thresholds or QualityThresholds()
    start = night - timedelta(days=t.lookback_days)
    # One pass over the model for the window: tonight and the history before it.
    tonight: dict[JobKey, tuple[str | None, _Night]] = {}
    history: dict[JobKey, list[_Night]] = defaultdict(list)
    for flow_id, rtype, day, name, records, failed, p95 in warehouse.query(
        "SELECT flow_id, record_type, night, job_name, records, failed, p95_s FROM job_nights"
        " WHERE night >= ? AND night <= ? ORDER BY record_type, flow_id, night",
        [start, night],
    ):
        entry = _Night(day, records, failed, p95)
        if day == night:
            tonight[flow_id, rtype] = (name, entry)
        else:
            history[flow_id, rtype].append(entry)
    flags: dict[tuple[str, str, str], dict[date, _Flag]] = defaultdict(dict)
    for flow_id, rtype, past, metric, verdict, since, count in warehouse.query(
        "SELECT flow_id, record_type, night, metric, verdict, degraded_since, degraded_nights"
        " FROM quality_verdicts WHERE night >= ? AND night < ?",
        [start, night],
    ):
        flags[flow_id, rtype, metric][past] = _Flag(verdict, since, count)
    units = group_units(
        warehouse.query(
            "SELECT flow_id, record_type, night, unit, name, step_type, model, executions,"
            " failed, p95_s FROM unit_nights WHERE night >= ? AND night <= ?",
            [start, night],
        )
    )

    verdicts: list[Verdict] = []
    p95_bases: dict[JobKey, float] = {}
    pending_p95: dict[JobKey, dict[str, Any]] = {}
    for key, (name, current) in tonight.items():
        common = {"night": night, "flow_id": key[0], "record_type": key[1], "job_name": name}
        success_clean = _clean(history[key], flags[(*key, Metric.SUCCESS_RATE.value)], t)
        success = _success_verdict(current, success_clean, t, common)
        if success.verdict is not VerdictKind.NO_VERDICT:
            clean_nights = [n.night for n in success_clean]
            success = _attributed(success, *unit_failures(units[key], night, clean_nights, t))
        verdicts.append(_streak(success, flags[(*key, Metric.SUCCESS_RATE.value)], history[key]))
        p95_clean = _clean(history[key], flags[(*key, Metric.P95.value)], t)
        blocked = _blocked(current, p95_clean, t)
        if blocked or current.p95_s is None:
            reason = blocked or "no execution times tonight"
            verdicts.append(_no_verdict(Metric.P95, current, len(p95_clean), reason, common))
            continue
        base = statistics.median(n.p95_s for n in p95_clean if n.p95_s is not None)
        p95_bases[key] = base
        pending_p95[key] = {"common": common, "current": current, "clean": p95_clean}
    slow = _records_slower(warehouse, start, night, p95_bases)
    unit_bases = {
        key: unit_p95_bases(units[key], [n.night for n in item["clean"]])
        for key, item in pending_p95.items()
    }
    units_slow = _units_slower(warehouse, start, night, unit_bases)
    for key, item in pending_p95.items():
        counts = slow.get(key, {})
        tonight_slow = counts.get(night, 0)
        baseline_slow = [(counts.get(n.night, 0), n.records) for n in item["clean"]]
        p95 = _p95_verdict(
            item["current"], p95_bases[key], tonight_slow, baseline_slow, t, item["common"]
        )
        clean_nights = [n.night for n in item["clean"]]
        findings = unit_slowdowns(
            units[key], night, clean_nights, unit_bases[key], units_slow.get(key, {}), t
        )
        p95 = _attributed(p95, *findings)
        verdicts.append(_streak(p95, flags[(*key, Metric.P95.value)], history[key]))
    verdicts.sort(key=lambda v: (v.record_type, v.flow_id, v.metric.value))
    warehouse.record_verdicts(night, [_row(v) for v in verdicts])
    return verdicts


def latest_verdicts(warehouse: Warehouse, night: date) -> list[Verdict]:
    """Return the stored verdicts of ``night`` (none when the gate has not judged it)."""
    rows = warehouse.query(
        "SELECT night, flow_id, record_type, job_name, metric, records, current_value,"
        " baseline_value, baseline_nights, p_value, alpha, min_effect, verdict, reason,"
        " degraded_since, degraded_nights, attribution FROM quality_verdicts WHERE night = ?"
        " ORDER BY record_type, flow_id, metric",
        [night],
    )
    fields = [
        "night", "flow_id", "record_type", "job_name", "metric", "records", "current",
        "baseline", "baseline_nights", "p_value", "alpha", "min_effect", "verdict", "reason",
        "degraded_since", "degraded_nights", "attribution",
    ]  # fmt: skip
    verdicts = []
    for row in rows:
        values = dict(zip(fields, row, strict=True))
        values["attribution"] = json.loads(values["attribution"] or "[]")
        verdicts.append(Verdict(**values))
    return verdicts


# --- the two tests ----------------------------------------------------------------------------


def _clean(nights: list[_Night], flags: dict[date, _Flag], t: QualityThresholds) -> list[_Night]:
    """The job's last ``baseline_nights`` nights not flagged for this metric."""
    clean = [n for n in nights if flags.get(n.night, _Flag("", None, None)).verdict != "degraded"]
    return clean[-t.baseline_nights :]


def _blocked(current: _Night, clean: list[_Night], t: QualityThresholds) -> str:
    if current.records < t.min_records:
        return f"{current.records} records, fewer than the {t.min_records} a verdict needs"
    if len(clean) < t.min_baseline_nights:
        nights = f"{len(clean)} clean night{'' if len(clean) == 1 else 's'}"
        return (
            f"{nights} in the last {t.lookback_days} days, fewer than the"
            f" {t.min_baseline_nights} a baseline needs"
        )
    return ""


def _no_verdict(
    metric: Metric, current: _Night, clean_nights: int, reason: str, common: dict[str, Any]
) -> Verdict:
    return Verdict(
        metric=metric,
        records=current.records,
        baseline_nights=clean_nights,
        verdict=VerdictKind.NO_VERDICT,
        reason=reason,
        **common,
    )


def _success_verdict(
    current: _Night, clean: list[_Night], t: QualityThresholds, common: dict[str, Any]
) -> Verdict:
    blocked = _blocked(current, clean, t)
    if blocked:
        return _no_verdict(Metric.SUCCESS_RATE, current, len(clean), blocked, common)
    test = excess_test(current.failed, current.records, [(n.failed, n.records) for n in clean])
    rate = current.failed / current.records
    degraded = (
        test.p_value < t.alpha
        and rate >= t.min_failure_ratio * test.base_rate
        and rate - test.base_rate >= t.min_success_drop - 1e-9
    )
    return Verdict(
        metric=Metric.SUCCESS_RATE,
        records=current.records,
        current=1 - rate,
        baseline=1 - test.base_rate,
        baseline_nights=len(clean),
        p_value=test.p_value,
        alpha=t.alpha,
        min_effect=t.min_success_drop,
        verdict=VerdictKind.DEGRADED if degraded else VerdictKind.OK,
        reason=f"{current.failed} of {current.records} records failed"
        f" (dispersion {test.dispersion:.2g})",
        **common,
    )


def _p95_verdict(
    current: _Night,
    base: float,
    slow: int,
    baseline_slow: list[tuple[int, int]],
    t: QualityThresholds,
    common: dict[str, Any],
) -> Verdict:
    test = excess_test(slow, current.records, baseline_slow)
    p95 = current.p95_s or 0.0
    degraded = test.p_value < t.alpha and p95 >= base * (1 + t.min_p95_increase)
    return Verdict(
        metric=Metric.P95,
        records=current.records,
        current=p95,
        baseline=base,
        baseline_nights=len(baseline_slow),
        p_value=test.p_value,
        alpha=t.alpha,
        min_effect=t.min_p95_increase,
        verdict=VerdictKind.DEGRADED if degraded else VerdictKind.OK,
        reason=f"{slow} of {current.records} records slower than the baseline p95"
        f" (usually {test.base_rate:.1%}; dispersion {test.dispersion:.2g})",
        **common,
    )


def _attributed(
    verdict: Verdict, flagged: list[Attribution], likeliest: Attribution | None
) -> Verdict:
    """The verdict with the units that moved: degraded when a unit test flagged one even if
    the record-level test did not (the reason then names it); a night the record-level test
    flagged alone names the likeliest unit."""
    degraded = verdict.degraded or bool(flagged)
    named = flagged or ([likeliest] if degraded and likeliest is not None else [])
    update: dict[str, Any] = {"attribution": named}
    if degraded and not verdict.degraded:
        update["verdict"] = VerdictKind.DEGRADED
        update["reason"] = f"{verdict.reason}; {flagged[0].describe()}"
    return verdict.model_copy(update=update)


def _streak(verdict: Verdict, flags: dict[date, _Flag], history: list[_Night]) -> Verdict:
    """Carry the degraded run on: since when, and how many nights (tonight included)."""
    if not verdict.degraded:
        return verdict
    previous = flags.get(history[-1].night) if history else None
    if previous is not None and previous.verdict == "degraded" and previous.since is not None:
        since, nights = previous.since, (previous.nights or 1) + 1
    else:
        since, nights = verdict.night, 1
    return verdict.model_copy(update={"degraded_since": since, "degraded_nights": nights})


def _records_slower(
    warehouse: Warehouse, start: date, night: date, bases: dict[JobKey, float]
) -> dict[JobKey, dict[date, int]]:
    """Per job and night from ``start`` to ``night``: records slower than its baseline p95
    (table macro ``records_slower``)."""
    if not bases:
        return {}
    structs = [
        {"flow_id": flow, "record_type": rtype, "base": base}
        for (flow, rtype), base in bases.items()
    ]
    rows = warehouse.query(
        "SELECT flow_id, record_type, night, slower FROM records_slower(?, ?, ?)",
        [start, night, structs],
    )
    slow: dict[JobKey, dict[date, int]] = defaultdict(dict)
    for flow_id, rtype, day, count in rows:
        slow[flow_id, rtype][day] = count
    return slow


def _units_slower(
    warehouse: Warehouse, start: date, night: date, bases: dict[JobKey, dict[UnitKey, float]]
) -> dict[JobKey, dict[UnitKey, dict[date, int]]]:
    """Per job, unit and night from ``start`` to ``night``: executions slower than the
    unit's baseline p95 (table macro ``units_slower``)."""
    structs = [
        {"flow_id": flow, "record_type": rtype, "unit": unit, "name": name, "base": base}
        for (flow, rtype), job in bases.items()
        for (unit, name), base in job.items()
    ]
    if not structs:
        return {}
    rows = warehouse.query(
        "SELECT flow_id, record_type, night, unit, name, slower FROM units_slower(?, ?, ?)",
        [start, night, structs],
    )
    slow: dict[JobKey, dict[UnitKey, dict[date, int]]] = defaultdict(lambda: defaultdict(dict))
    for flow_id, rtype, day, unit, name, count in rows:
        slow[flow_id, rtype][unit, name][day] = count
    return slow


def _row(v: Verdict) -> dict[str, Any]:
    row = v.model_dump(mode="python")
    row["current_value"] = row.pop("current")
    row["baseline_value"] = row.pop("baseline")
    row["metric"] = v.metric.value
    row["verdict"] = v.verdict.value
    row["attribution"] = json.dumps(row["attribution"]) if v.attribution else None
    return row
