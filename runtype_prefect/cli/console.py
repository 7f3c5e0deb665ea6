"""What the command line prints: one console and the job tables every command shares."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table

# Piped output (make, CI) gets a readable width instead of Rich's 80-column fallback.
console = Console(width=None if sys.stdout.isatty() else 130)


def results_table(title: str, results: list[Any]) -> Table:
    """Return a rich table of job results (records, success rate, p50/p95, tokens, estimated
    and billed cost)."""
    from ..orchestration.observability import summary_row  # Prefect: slow to import

    table = Table(title=title)
    for column, justify in [
        ("job", "left"),
        ("outcome", "left"),
        ("records", "right"),
        ("success rate", "right"),
        ("p50 s", "right"),
        ("p95 s", "right"),
        ("tokens", "right"),
        ("estimated USD", "right"),
        ("billed USD", "right"),
    ]:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in results:
        row = summary_row(r)
        style = "red" if r.outcome.failed else ("yellow" if not r.outcome.ok else "green")
        table.add_row(
            r.job,
            f"[{style}]{r.outcome.value}[/]",
            str(r.records),
            row["success rate"],
            _num(row["p50 s"]),
            _num(row["p95 s"]),
            f"{r.tokens:,}",
            f"{r.estimated_cost_usd:.4f}",
            "" if r.billed_cost_usd is None else f"{r.billed_cost_usd:.4f}",
        )
    return table


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


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
