"""Pages a person opens in a browser: one HTML page per batch (status, counts, failures).

The real service has its dashboard; the sandbox serves this instead, so the Prefect UI's batch
link opens something readable. Read-only and without a key (a browser cannot send one), behind
the same loopback Host guard as everything else.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ..common import _state
from ..world import iso

router = APIRouter(prefix="/ui", tags=["pages"])

_STYLE = (
    "body{font:15px system-ui,sans-serif;margin:2rem;max-width:1100px;color:#1f2937}"
    "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #d1d5db;padding:4px 10px;"
    "text-align:left}th{background:#f3f4f6}.status{font-weight:600}td:first-child{white-space:nowrap}"
)


@router.get("/batches/{batch_id}", response_class=HTMLResponse)
async def batch_page(request: Request, batch_id: str) -> HTMLResponse:
    """The batch's status, counts and failed records, as HTML."""
    batch = _state(request).batches.get(batch_id)
    if batch is None:
        body = f"<h1>No batch {escape(batch_id)}</h1><p>This sandbox has no such batch.</p>"
        return HTMLResponse(_page("Batch not found", body), status_code=404)
    status = batch.status_body()
    failures = [o for o in batch.done if not o.success]
    rows = "".join(
        f"<tr><td>{escape(o.record.name)}</td><td>{escape(o.record.id)}</td>"
        f"<td>{escape(o.error or '')}</td></tr>"
        for o in failures[:200]
    )
    more = f"<p>… and {len(failures) - 200} more.</p>" if len(failures) > 200 else ""
    body = (
        f"<h1>{escape(batch.flow.name)} · {escape(batch.record_type)}</h1>"
        f"<p>Batch <code>{escape(batch.id)}</code> (Runtype sandbox)</p>"
        f"<p class=status>Status: {escape(str(status['status']))}</p>"
        "<table><tr><th>records</th><th>processed</th><th>succeeded</th><th>failed</th>"
        "<th>progress</th><th>started</th><th>completed</th></tr>"
        f"<tr><td>{status['totalRecords']}</td><td>{status['processedRecords']}</td>"
        f"<td>{status['successCount']}</td><td>{status['failedRecords']}</td>"
        f"<td>{status['progress']} %</td><td>{escape(str(status['startedAt']))}</td>"
        f"<td>{escape(str(iso(batch.completed_at) or '–'))}</td></tr></table>"
        + (
            "<h2>Failed records</h2><table><tr><th>record</th><th>id</th><th>error</th></tr>"
            f"{rows}</table>{more}"
            if failures
            else "<p>No failed records.</p>"
        )
    )
    return HTMLResponse(_page(f"Batch {batch.id}", body))


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
