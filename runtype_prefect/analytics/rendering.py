"""How notebooks render and save: charts that survive outside JupyterLab, and saves that
leave the committed notebooks output-free."""

from __future__ import annotations

from typing import Any

import plotly.io as pio

#: JupyterLab draws the plotly MIME bundle; `nbconvert --to html` and GitHub's preview only
#: keep HTML, so each figure also carries an HTML rendering, with plotly.js embedded once per
#: notebook (offline, ~5 MB) by the first figure.
NOTEBOOK_RENDERER = "plotly_mimetype+notebook"


def use_notebook_renderer() -> str:
    """Make figures shown in this kernel render in JupyterLab and in HTML exports; return the
    renderer now in use."""
    pio.renderers.default = NOTEBOOK_RENDERER
    return NOTEBOOK_RENDERER


def strip_outputs_before_save(model: dict[str, Any], **_: Any) -> None:
    """Jupyter ``pre_save_hook``: save notebooks without outputs or execution counts, so
    running the committed notebooks and saving them leaves them as committed (`make notebooks`
    sets it). Export a run with ``nbconvert --to html`` to keep its charts."""
    if model.get("type") != "notebook":
        return
    content = model.get("content") or {}
    for cell in content.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
