"""A live display of every job's batch: records processed out of total, from its status."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from .console import WIDE_ENOUGH

if TYPE_CHECKING:
    from ..engine.progress_feed import JobProgress


@contextmanager
def job_progress(console: Console) -> Iterator[None]:
    """Show one bar per job while inside (a night after another reuses the job's bar)."""
    # Imported here: the command line answers --help without loading the client and its
    # Arrow and HTTP stacks.
    from ..engine.progress_feed import listen

    # At 80 columns the bar goes: the counts and the status say the same, and stay whole.
    wide = console.width >= WIDE_ENOUGH
    progress = Progress(
        TextColumn("{task.fields[night]}", style="dim"),
        TextColumn("{task.description:<40}" if wide else "{task.description}"),
        *([BarColumn(bar_width=30)] if wide else []),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
    )
    bars: dict[str, TaskID] = {}

    def show(p: JobProgress) -> None:
        if p.job not in bars:
            bars[p.job] = progress.add_task(p.job, total=p.total or None, night="", status="")
        progress.update(
            bars[p.job],
            completed=p.processed,
            total=p.total or None,
            night=p.run_key,
            status=p.status.replace("_", " "),
        )

    with progress, listen(show):
        yield
