"""The quality gate replayed over a simulated year, scored against what the sandbox planted.

Every night of the year, each seeded job's records and steps are simulated exactly as the
sandbox would run them (slow weeks, incident nights and ordinary noise included), landed in a
scratch warehouse and judged in order by the gate with its default thresholds. Printed beside
the targets: false alarms per 100 clean job-nights, detection of incident nights and slow-week
starts on jobs with at least 40 records, the share of persistent-slowdown nights flagged, and
how often the step or model a flagged night's verdict names first is of the planted step type.
The "bound" column is the best any threshold on the night's failed records could do with at
most 1 % of clean nights alarmed, chosen knowing the answers; "step bound" the same on the
failures of the steps the incidents hit, known beforehand (which no test is).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from runtype_prefect.rehearsal.replay import replay

NIGHTS = int(sys.argv[1]) if len(sys.argv) > 1 else 365


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        score = replay(Path(tmp), nights=NIGHTS)
    seconds = time.perf_counter() - started
    print(f"gate replay: {NIGHTS} nights × 4 jobs in {seconds:.0f} s (simulate, land, judge)")
    fa = score.false_alarms_per_100
    rows = [
        ("false alarms / 100 clean job-nights", f"{fa:.2f} ({score.clean})", "≤ 1", fa <= 1),
        ("incident nights flagged (jobs ≥ 40 records)", str(score.incidents), "≥ 90 %",
         (score.incidents.share or 0) >= 0.90),
        ("slow-week starts flagged (jobs ≥ 40 records)", str(score.slow_starts), "≥ 95 %",
         (score.slow_starts.share or 0) >= 0.95),
        ("persistent-slowdown nights flagged", str(score.persistent), "≥ 80 %",
         (score.persistent.share or 0) >= 0.80),
        ("incidents flagged: planted step named first", str(score.named_incidents), "≥ 90 %",
         (score.named_incidents.share or 0) >= 0.90),
        ("slow starts flagged: planted step named first", str(score.named_slow_starts),
         "≥ 90 %", (score.named_slow_starts.share or 0) >= 0.90),
    ]  # fmt: skip
    for name, value, target, met in rows:
        print(f"  {name:<46} {value:<18} target {target:<7} {'met' if met else 'NOT MET'}")
    heads = (
        ("job", 38), ("incidents", 13), ("judged", 12), ("bound", 12), ("step bound", 12),
        ("slow starts", 12),
    )  # fmt: skip
    print("    " + " ".join(f"{h:<{w}}" for h, w in heads) + " persistent")
    for job, rates in sorted(score.by_job.items()):
        bound, step_bound = score.incident_bound.get(job), score.step_bound.get(job)
        print(
            f"    {job:<38} {rates['incidents']!s:<13} {rates['incidents_judged']!s:<12}"
            f" {bound!s:<12} {step_bound!s:<12} {rates['slow_starts']!s:<12}"
            f" {rates['persistent']!s}"
        )
    for line in score.false_alarms:
        print(f"  false alarm: {line}")
    for line in score.misnamed:
        print(f"  named another step: {line}")


if __name__ == "__main__":
    main()
