"""Where the report's links go, from the command line and the environment."""

from __future__ import annotations

import os

from ..analytics.report import Links
from ..client import resolve_dashboard_url_template
from .stack import ui_url_for


def report_links(prefect_ui_url: str | None = None, batch_url_template: str | None = None) -> Links:
    """Return the report's links: flow runs to ``prefect_ui_url`` (else ``$PREFECT_UI_URL``,
    else ``$PREFECT_API_URL`` without ``/api``; none when no Prefect server is set, as a
    temporary one is gone once the command ends), batches to ``batch_url_template`` (else
    ``$RUNTYPE_DASHBOARD_URL_TEMPLATE``, else the flow's Runtype dashboard)."""
    api_url = os.environ.get("PREFECT_API_URL", "")
    ui_url = prefect_ui_url or os.environ.get("PREFECT_UI_URL") or ui_url_for(api_url)
    return Links(
        prefect_ui_url=ui_url or None,
        batch_url_template=resolve_dashboard_url_template(batch_url_template),
    )
