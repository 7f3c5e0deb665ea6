"""What the command line prints: one console and the job tables every command shares."""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

# Piped output (make, CI) gets a readable width instead of Rich's 80-column fallback, unless
# $COLUMNS says otherwise.
console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 130)

#: The results table's columns (`summary_row`'s names), right-aligned unless named here.
RESULT_COLUMNS = (
    "job",
    "outcome",
    "records",
    "success rate",
    "p50 s",
    "p95 s",
    "tokens",
    "estimated USD",
    "billed USD",
)
LEFT_ALIGNED = {"job", "outcome"}
#: Left out below `WIDE_ENOUGH` columns, so the rest reads whole at 80 (the job's table
#: artifact in the Prefect UI keeps them).
SECONDARY = {"p50 s", "tokens"}
#: The terminal width from which the results table has every column and job progress a bar.
WIDE_ENOUGH = 110


def results_table(title: str, results: list[Any], width: int | None = None) -> Table:
    """Return a rich table of job results (records, success rate, p50/p95, tokens, estimated
    and billed cost), without p50 and tokens on a terminal narrower than `WIDE_ENOUGH`
    (``width``: the console's by default)."""
    from ..orchestration.observability import (  # Prefect: slow to import
        SUMMARY_HEADERS,
        format_figure,
        summary_row,
    )

    wide = (width or console.width) >= WIDE_ENOUGH
    columns = [c for c in RESULT_COLUMNS if wide or c not in SECONDARY]
    table = Table(title=title)
    longest_word = max((len(w) for r in results for w in str(r.job).split()), default=3)
    for column in columns:
        table.add_column(
            SUMMARY_HEADERS.get(column, column),
            justify="left" if column in LEFT_ALIGNED else "right",
            # A job's name wraps between its words, never inside one ("Enrichme…").
            min_width=longest_word if column == "job" else None,
        )
    for r in results:
        row = summary_row(r)
        style = "red" if r.outcome.failed else ("yellow" if not r.outcome.ok else "green")
        cells = {c: format_figure(c, row[c]) for c in columns}
        cells["outcome"] = f"[{style}]{cells['outcome']}[/]"
        table.add_row(*(cells[c] for c in columns))
    return table


def print_failures(results: list[Any]) -> None:
    """Print one line per job that failed or carries a message."""
    for r in results:
        if r.outcome.failed or r.message:
            console.print(f"[bold]{r.job}[/]: {r.outcome.value}. {r.message}")


def print_verdicts(console: Console, verdicts: list[Any]) -> None:
    """Print the quality gate's verdicts of a night: degraded ones and missing verdicts one per
    line, then how many were ok."""
    if not verdicts:
        return
    degraded = [v for v in verdicts if v.degraded]
    console.print(
        f"[bold]quality gate[/] ({verdicts[0].night}): {len(degraded)} degraded,"
        f" {sum(v.verdict.value == 'ok' for v in verdicts)} ok of {len(verdicts)} job metrics",
        highlight=False,
    )
    for v in degraded:
        console.print(f"  [yellow]DEGRADED[/] {v.describe()}", highlight=False)
    for v in verdicts:
        if v.verdict.value == "no_verdict":
            console.print(f"  [dim]{v.describe()}[/]", highlight=False)
