"""The command line's exit codes: what a scheduler or a script can tell apart."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """How ``run``, ``demo`` and ``backfill`` ended (the README lists them)."""

    OK = 0  # every job landed (some records may have failed, within the floor)
    JOB_FAILED = 1  # a job failed, timed out, was cancelled, is incomplete, or errored
    USAGE = 2  # bad options (typer's own)
    BELOW_FLOOR = 3  # a job landed but fewer records succeeded than its floor
    NO_RECORDS = 4  # a job found no records: a misspelt or empty record type
    PREFLIGHT_FAILED = 5  # the preflight failed: nothing was started


def exit_code_for(results: Iterable[Any]) -> ExitCode:
    """Return the exit code of a run's job results: the most serious outcome wins (a failed
    job, then a job below its floor, then one without records)."""
    from ..engine.outcomes import Outcome  # not at import: --help stays light

    outcomes = {r.outcome for r in results}
    if any(o.failed and o is not Outcome.BELOW_FLOOR for o in outcomes):
        return ExitCode.JOB_FAILED
    if Outcome.BELOW_FLOOR in outcomes:
        return ExitCode.BELOW_FLOOR
    if Outcome.NO_RECORDS in outcomes:
        return ExitCode.NO_RECORDS
    return ExitCode.OK
