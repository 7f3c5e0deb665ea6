"""Score the quality gate against what the sandbox planted, over a simulated stretch of nights.

The sandbox's own simulation (the same draws a batch would make) produces every job's
records for each night; they land in a scratch warehouse as record results, the gate judges the
nights in order, and each verdict is set against the planted calendar. No HTTP, no Prefect: the
gate is a function of the warehouse. ``make bench`` replays a year, the test suite 60 nights.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pyarrow as pa

from ..client.arrow import layout
from ..client.models import StepResult
from ..gate import QualityThresholds, Verdict, judge_nights, latest_verdicts
from ..gate.verdicts import Metric, VerdictKind
from ..sandbox.simulation import INCIDENT_STEP_TYPE, night_profile, planted_on, simulate_record
from ..sandbox.world import World, seed_world
from ..warehouse import Warehouse, step_results_table
from ..warehouse.rows import TS

#: Step results per JSON line handed to the reader (a line must fit Arrow's 1 MiB block).
PAGE_ROWS = 500

#: Jobs this size or larger are held to the detection targets.
DETECTION_MIN_RECORDS = 40


@dataclass
class Rate:
    """k of n, printed as a share."""

    hits: int = 0
    total: int = 0

    def add(self, hit: bool) -> None:
        """Count one more case, a hit or not."""
        self.total += 1
        self.hits += int(hit)

    @property
    def share(self) -> float | None:
        """hits / total, or None without cases."""
        return self.hits / self.total if self.total else None

    def __str__(self) -> str:
        share = self.share
        return f"{self.hits}/{self.total}" + (f" ({share:.0%})" if share is not None else "")


@dataclass
class ReplayScore:
    """How the gate did against the planted calendar."""

    nights: int
    #: job-nights with nothing planted that hits the job, and a verdict on some metric
    clean: Rate = field(default_factory=Rate)  # hits = false alarms
    incidents: Rate = field(default_factory=Rate)  # success rate flagged on incident nights
    #: among incidents and slow-week starts flagged on big jobs: the first step or model the
    #: verdict names is of the planted step type
    named_incidents: Rate = field(default_factory=Rate)
    named_slow_starts: Rate = field(default_factory=Rate)
    slow_starts: Rate = field(default_factory=Rate)  # p95 flagged on a slow week's first night
    persistent: Rate = field(default_factory=Rate)  # p95 flagged on a slow week's later nights
    by_job: dict[str, dict[str, Rate]] = field(default_factory=dict)
    false_alarms: list[str] = field(default_factory=list)  # the verdicts, described
    missed: list[str] = field(default_factory=list)  # planted, big job, not flagged
    misnamed: list[str] = field(default_factory=list)  # flagged, naming another unit
    #: per job: the incident detection of the best failure-count threshold that keeps
    #: clean-night alarms at 1 % or fewer, chosen knowing the answers: what any success-rate
    #: test could reach on this job's data
    incident_bound: dict[str, Rate] = field(default_factory=dict)
    #: the same, thresholding the failures of the steps of the type incidents hit (known
    #: beforehand, which no test is): what any step-level test could reach
    step_bound: dict[str, Rate] = field(default_factory=dict)

    @property
    def false_alarms_per_100(self) -> float:
        """False alarms per 100 clean job-nights."""
        return 100 * self.clean.hits / self.clean.total if self.clean.total else 0.0


def simulate_nights(
    warehouse: Warehouse,
    world: World,
    start: date,
    nights: int,
    *,
    seed: int = 7,
    calm: bool = False,
) -> dict[str, int]:
    """Land ``nights`` nights from ``start`` of every job of ``world`` (batches, record
    results and the step results the gate reads, as the sandbox would run them); return the
    records per job."""
    jobs = [(f, world.records_of(f.intended_record_type or "")) for f in world.flows.values()]
    sizes = {f"{f.name} · {f.intended_record_type}": len(records) for f, records in jobs}
    for offset in range(nights):
        night = start + timedelta(days=offset)
        when = datetime.combine(night, time(2), UTC)
        batches: dict[str, list[object]] = defaultdict(list)
        records: dict[str, list[object]] = defaultdict(list)
        steps: list[pa.Table] = []
        for flow, members in jobs:
            if not members:
                continue
            rtype = members[0].type
            batch_id = f"replay_{flow.id}_{night.isoformat()}"
            profile = night_profile(seed, rtype, when, calm=calm)
            for column, value in (
                ("batch_id", batch_id), ("flow_id", flow.id), ("record_type", rtype),
                ("run_key", night.isoformat()), ("job_name", flow.name),
                ("status", "completed"), ("outcome", "completed"),
            ):  # fmt: skip
                batches[column].append(value)
            job_steps: list[dict] = []
            for record in members:
                o = simulate_record(
                    seed=seed, flow=flow, record=record, batch_id=batch_id, started_at=when,
                    profile=profile,
                )  # fmt: skip
                row: dict[str, object] = {
                    "batch_id": batch_id, "record_id": record.id, "record_type": rtype,
                    "flow_id": flow.id, "status": "completed" if o.success else "failed",
                    "success": o.success, "error": o.error,
                    "execution_time_s": o.execution_time, "landed_at": when,
                }  # fmt: skip
                for column, cell in row.items():
                    records[column].append(cell)
                job_steps += o.steps
            steps.append(_step_rows(job_steps, rtype))
        step_rows = pa.concat_tables(steps)
        step_rows = step_rows.append_column(
            "landed_at", pa.repeat(pa.scalar(when, TS), step_rows.num_rows)
        )
        tables = {"b": pa.table(batches), "r": pa.table(records), "s": step_rows}
        with warehouse.transaction(register=tables) as cur:
            cur.execute(f"INSERT INTO batches ({', '.join(batches)}) SELECT * FROM b")
            cur.execute(f"INSERT INTO record_results ({', '.join(records)}) SELECT * FROM r")
            columns = ", ".join(step_rows.column_names)
            cur.execute(f"INSERT INTO step_results ({columns}) SELECT * FROM s")
    return sizes


def _step_rows(api_rows: list[dict], record_type: str) -> pa.Table:
    """The step results of one job's night, as the API's JSON rows, read the way a landing
    reads its pages (the client's Arrow layout, then `step_results_table`)."""
    pages = [api_rows[i : i + PAGE_ROWS] for i in range(0, len(api_rows), PAGE_ROWS)]
    bodies = b"".join(json.dumps({"data": page}).encode() + b"\n" for page in pages)
    table = layout(StepResult).from_page_bodies(bodies, [len(p) for p in pages], multiline=False)
    return step_results_table(table, record_type=record_type)


def score(
    verdicts: list[Verdict], sizes: dict[str, int], step_types: dict[str, set[str]], nights: int
) -> ReplayScore:
    """Set each verdict against what the sandbox planted on its night for its job (a planted
    regression hits a job whose flow has a step of its type)."""
    result = ReplayScore(nights=nights)
    by_job: dict[tuple[date, str], dict[Metric, Verdict]] = defaultdict(dict)
    for v in verdicts:
        by_job[v.night, v.job][v.metric] = v
    for (night, job), metrics in sorted(by_job.items()):
        planted = planted_on(night)
        hits = [p for p in planted if p.step_type in step_types.get(job, set())]
        judged = [v for v in metrics.values() if v.verdict is not VerdictKind.NO_VERDICT]
        rates = result.by_job.setdefault(
            job,
            {
                "clean": Rate(),
                "incidents": Rate(),
                "incidents_judged": Rate(),
                "slow_starts": Rate(),
                "persistent": Rate(),
            },
        )
        if not hits:
            if judged:
                alarm = any(v.degraded for v in judged)
                result.false_alarms += [f"{night} {v.describe()}" for v in judged if v.degraded]
                result.clean.add(alarm)
                rates["clean"].add(alarm)
            continue
        big = sizes.get(job, 0) >= DETECTION_MIN_RECORDS
        for p in hits:
            metric = Metric.SUCCESS_RATE if p.metric == "failure_rate" else Metric.P95
            verdict = metrics.get(metric)
            flagged = verdict is not None and verdict.degraded
            name = (
                "incidents"
                if p.kind == "incident"
                else ("slow_starts" if p.night_of == 1 else "persistent")
            )
            rates[name].add(flagged)
            if (
                name == "incidents"
                and verdict is not None
                and verdict.verdict is not VerdictKind.NO_VERDICT
            ):
                rates["incidents_judged"].add(flagged)
            if big:
                getattr(result, name).add(flagged)
                if flagged and verdict is not None and name != "persistent":
                    named = getattr(result, f"named_{name}")
                    first = verdict.attribution[0] if verdict.attribution else None
                    named.add(first is not None and first.step_type == p.step_type)
                    if first is None or first.step_type != p.step_type:
                        result.misnamed.append(f"{night} {p.kind} {verdict.describe()}")
                if not flagged:
                    shown = verdict.describe() if verdict else f"{job}: no verdict"
                    result.missed.append(f"{night} {p.kind} {shown}")
    return result


def replay(
    workdir: Path,
    *,
    start: date = date(2025, 12, 1),
    nights: int = 365,
    thresholds: QualityThresholds | None = None,
    seed: int = 7,
) -> ReplayScore:
    """Simulate ``nights`` nights into a scratch warehouse in ``workdir``, judge them in order
    with ``thresholds`` and return the score."""
    world = seed_world(seed, datetime.combine(start, time(), UTC))
    step_types = {
        f"{flow.name} · {flow.intended_record_type}": {s.type for s in flow.steps}
        for flow in world.flows.values()
    }
    with Warehouse(workdir / f"replay-{start}-{nights}.duckdb") as warehouse:
        sizes = simulate_nights(warehouse, world, start, nights, seed=seed)
        last = start + timedelta(days=nights - 1)
        judge_nights(warehouse, last, thresholds)
        rows = warehouse.query("SELECT DISTINCT night FROM quality_verdicts ORDER BY 1")
        verdicts = [v for (night,) in rows for v in latest_verdicts(warehouse, night)]
        counts = warehouse.query(
            "SELECT job_name || ' · ' || record_type, night, failed FROM job_nights"
        )
        step_counts = warehouse.query(
            "SELECT j.job_name || ' · ' || u.record_type, u.night, sum(u.failed)::INTEGER"
            " FROM unit_nights u JOIN job_nights j USING (flow_id, record_type, night)"
            " WHERE u.unit = 'step' AND u.step_type = ? GROUP BY ALL",
            [INCIDENT_STEP_TYPE],
        )
    result = score(verdicts, sizes, step_types, nights)
    result.incident_bound = incident_bound(counts, step_types)
    result.step_bound = incident_bound(step_counts, step_types)
    return result


def incident_bound(
    counts: list[tuple[str, date, int]], step_types: dict[str, set[str]]
) -> dict[str, Rate]:
    """Per job hit by incidents: how many incident nights the best threshold on the night's
    failure count (``counts``: job, night, failures) catches, among thresholds with at most
    1 % of clean nights above them."""
    clean: dict[str, list[int]] = defaultdict(list)
    incident: dict[str, list[int]] = defaultdict(list)
    for job, night, failed in counts:
        planted = [p for p in planted_on(night) if p.step_type in step_types.get(job, set())]
        if not planted:
            clean[job].append(failed)
        elif any(p.kind == "incident" for p in planted):
            incident[job].append(failed)
    bounds = {}
    for job, bad in incident.items():
        ordinary = sorted(clean[job])
        allowed = len(ordinary) // 100  # clean nights allowed at or above the threshold
        threshold = ordinary[len(ordinary) - allowed - 1] + 1 if ordinary else 0
        bounds[job] = Rate(sum(1 for b in bad if b >= threshold), len(bad))
    return bounds
