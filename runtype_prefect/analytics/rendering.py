"""How notebook charts are rendered, so that they survive outside JupyterLab."""

from __future__ import annotations

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
