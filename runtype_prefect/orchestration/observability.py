"""What the Prefect UI shows of a job: artifacts and events. Failures here never fail a job."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any
from uuid import UUID

from prefect import runtime
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.client.orchestration import get_client
from prefect.events import emit_event

from ..engine.outcomes import JobResult, outcome_of_error

log = logging.getLogger(__name__)


def artifact_key(*parts: str) -> str:
    """Return an artifact key (lowercase letters, digits and dashes only) built from ``parts``."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")[:100]


def quietly(action: Callable[[], Any]) -> Any:
    """Return what ``action`` returns, or None when it raised (logged as a warning): what is
    recorded to the Prefect UI must never fail a job."""
    try:
        return action()
    except Exception as exc:  # observability must never fail a job
        log.warning("could not record to the Prefect UI: %s", exc)
        return None


def rename_flow_run(name: str) -> None:
    """Rename the current flow run: its name is how the UI lists it, and a name known only
    once the run has started (its flow's, read by the preflight) beats the one it started as."""
    flow_run_id = runtime.flow_run.id

    def rename() -> None:
        with get_client(sync_client=True) as client:
            client.update_flow_run(flow_run_id, name=name)

    if flow_run_id:
        quietly(rename)


def emit_batch_event(name: str, batch_id: str, job_label: str, **payload: Any) -> None:
    """Emit ``runtype.batch.<name>`` with the batch as the resource."""
    quietly(
        lambda: emit_event(
            event=f"runtype.batch.{name}",
            resource={
                "prefect.resource.id": f"runtype.batch.{batch_id}",
                "prefect.resource.name": job_label,
            },
            payload={"batch_id": batch_id, **payload},
        )
    )


class BatchEvents:
    """The terminal event of one batch, emitted exactly once on every path.

    Use as a context manager around following and landing the batch: `end` emits
    ``runtype.batch.completed`` or ``.failed`` with the outcome and numbers; if the block raises
    before `end` was called (polling or landing failed for good), ``runtype.batch.failed`` goes
    out with the error and the outcome ``timed_out`` or ``error``.
    """

    def __init__(self, batch_id: str, job_label: str, **known: Any) -> None:
        self.batch_id = batch_id
        self.job_label = job_label
        self.known = known
        self.ended = False

    def end(self, outcome: str, *, failed: bool, **payload: Any) -> None:
        """Emit the batch's terminal event (once; later calls do nothing)."""
        if self.ended:
            return
        self.ended = True
        emit_batch_event(
            "failed" if failed else "completed",
            self.batch_id,
            self.job_label,
            outcome=outcome,
            **{**self.known, **payload},
        )

    def __enter__(self) -> BatchEvents:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and not self.ended:
            self.end(outcome_of_error(exc).value, failed=True, error=f"{type(exc).__name__}: {exc}")


def link_batch(batch_url: str, batch_id: str, job_label: str) -> None:
    """Create a link artifact pointing at the batch's status."""
    quietly(
        lambda: create_link_artifact(
            link=batch_url,
            link_text=f"Runtype batch {batch_id}",
            key=artifact_key("runtype-batch", job_label),
            description=f"The Runtype batch of {job_label}",
        )
    )


class ProgressReporter:
    """A progress artifact of a batch; call it with each new progress (0-100)."""

    def __init__(self, batch_id: str, job_label: str) -> None:
        self._id: UUID | None = quietly(
            lambda: create_progress_artifact(
                progress=0.0,
                key=artifact_key("runtype-progress", job_label),
                description=f"Records processed in batch {batch_id} ({job_label})",
            )
        )

    def __call__(self, progress: float) -> None:
        artifact_id = self._id
        if artifact_id is not None:
            quietly(lambda: update_progress_artifact(artifact_id, float(progress)))


def job_table(result: JobResult) -> None:
    """Create the per-job table artifact (records, outcomes, p50/p95, tokens, cost): one row
    per figure, so all of them show in the UI's narrow artifact pane (as one row of twelve
    columns, half of them scrolled out of sight at 1,400 px)."""
    quietly(
        lambda: create_table_artifact(
            table=job_rows(result),
            key=artifact_key("runtype-job", result.job),
            description=f"Runtype job {result.job}: {result.outcome.value}",
        )
    )


def job_rows(result: JobResult) -> list[dict[str, Any]]:
    """Return the job's figures as ``{"figure", "value"}`` rows (`summary_row`, transposed)."""
    return [
        {"figure": name, "value": format_figure(name, value)}
        for name, value in summary_row(result).items()
    ]


def summary_row(result: JobResult) -> dict[str, Any]:
    """Return one job's numbers as a flat row (artifacts, CLI tables, logs)."""
    rate = result.success_rate
    return {
        "job": result.job,
        "batch": result.batch_id or "",
        "outcome": result.outcome.value,
        "records": result.records,
        "succeeded": result.succeeded,
        "failed": result.failed,
        "success rate": f"{rate:.1%}" if rate is not None else "",
        "p50 s": round(result.p50_seconds, 2) if result.p50_seconds is not None else None,
        "p95 s": round(result.p95_seconds, 2) if result.p95_seconds is not None else None,
        "tokens": result.tokens,
        "estimated USD": round(result.estimated_cost_usd, 4),
        "billed USD": None if result.billed_cost_usd is None else round(result.billed_cost_usd, 4),
    }


#: The nightly summary's columns: what fits the artifact pane of a 1,400 px window (about
#: 830 px beside the UI's sidebars; outcomes wrap at their spaces). The per-job table
#: artifacts keep every number (batch id, p50, tokens…).
SUMMARY_COLUMNS = (
    "job",
    "outcome",
    "records",
    "failed",
    "success rate",
    "p95 s",
    "estimated USD",
    "billed USD",
)
#: Shorter headers for the summary's narrow columns.
SUMMARY_HEADERS = {"success rate": "success", "estimated USD": "est. USD"}


def format_figure(column: str, value: Any) -> str:
    """Return one figure of `summary_row` as the UI and the terminal show it: thousands
    separated, dollars to four decimals, and an outcome in words ("completed with failures"
    wraps in a narrow column; one word would not)."""
    if value is None:
        return ""
    if column == "outcome":
        return str(value).replace("_", " ")
    if isinstance(value, float) and column.endswith("USD"):
        return f"{value:,.4f}"
    if isinstance(value, float) and column.endswith(" s"):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def nightly_markdown(run_key: str, results: list[JobResult]) -> str:
    """Return the nightly run's markdown summary (the essential columns of every job, then
    what needs attention)."""
    rows = [{k: v for k, v in summary_row(r).items() if k in SUMMARY_COLUMNS} for r in results]
    header = [SUMMARY_HEADERS.get(c, c) for c in SUMMARY_COLUMNS]
    lines = [
        f"# Runtype nightly run `{run_key}`",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += [
        "| " + " | ".join(format_figure(c, row[c]) for c in SUMMARY_COLUMNS) + " |" for row in rows
    ]
    attention = [r for r in results if not r.outcome.ok]
    if attention:
        lines += ["", "## Needs attention", ""]
        lines += [f"- **{r.job}**: {_attention_line(r)}" for r in attention]
    return "\n".join(lines)


def _attention_line(result: JobResult) -> str:
    """What a job that did not end cleanly needs said: its outcome, its numbers, its message."""
    line = result.outcome.value.replace("_", " ")
    if result.records:
        line += f", {result.failed:,} of {result.records:,} records failed"
    return f"{line}. {result.message}".rstrip() if result.message else line + "."


def markdown_artifact(key: str, markdown: str, description: str) -> None:
    """Create a markdown artifact (never failing the run)."""
    quietly(lambda: create_markdown_artifact(markdown=markdown, key=key, description=description))


def nightly_summary(run_key: str, markdown: str) -> None:
    """Create the markdown summary artifact of a nightly run."""
    markdown_artifact("runtype-nightly-summary", markdown, f"Runtype nightly run {run_key}")


def preflight_artifact(run_key: str, markdown: str) -> None:
    """Create the markdown artifact of a night's preflight findings."""
    markdown_artifact("runtype-preflight", markdown, f"Runtype preflight {run_key}")
