"""What the report carries for the browser to unpack: plotly.js and the figures, gzip-packed.

plotly.js is 4.8 MB as text and 1.4 MB gzipped; a year of figures shrinks tenfold. The browser
unpacks both with its own ``DecompressionStream`` (Chromium 80+, Firefox 113+, Safari 16.4+),
offline and from ``file://``. Figures share their theme (plotly's template, ~7 KB per
figure) once per page instead of once per chart.
"""

from __future__ import annotations

import base64
import functools
import gzip
import json

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

#: The plotly config of every chart.
CHART_CONFIG = {"displaylogo": False, "responsive": True}


def pack(text: str) -> str:
    """Return ``text`` gzip-compressed (reproducibly: no timestamp) and base64-encoded."""
    return base64.b64encode(gzip.compress(text.encode(), compresslevel=9, mtime=0)).decode()


@functools.cache
def compressed_plotlyjs() -> str:
    """Return plotly.js, packed (`pack`); computed once per process."""
    return pack(get_plotlyjs())


def figures_payload(figs: dict[str, go.Figure]) -> str:
    """Return the figures keyed by the id of the element each is drawn in, packed (`pack`):
    ``{"templates": [...], "figures": {id: {"data", "layout", "template": i}}}``."""
    templates: list[dict] = []
    seen: dict[str, int] = {}
    out = {}
    for div_id, fig in figs.items():
        spec = json.loads(pio.to_json(fig, validate=False))
        layout = spec.get("layout", {})
        template = layout.pop("template", None)
        index = None
        if template is not None:
            key = json.dumps(template, sort_keys=True)
            if key not in seen:
                seen[key] = len(templates)
                templates.append(template)
            index = seen[key]
        out[div_id] = {"data": spec.get("data", []), "layout": layout, "template": index}
    return pack(json.dumps({"templates": templates, "figures": out}, separators=(",", ":")))


#: Unpacks plotly.js and the figures, draws the charts of the selection shown (the others when
#: first shown), and switches selections.
PAGE_SCRIPT = """
var FIGURES = null, CONFIG = __CONFIG__;
async function unpack(id) {
  var text = document.getElementById(id).textContent.trim();
  var bytes = Uint8Array.from(atob(text), function (c) { return c.charCodeAt(0); });
  var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return await new Response(stream).text();
}
function draw(el) {
  el.querySelectorAll('.chart').forEach(function (div) {
    if (div.dataset.drawn) { Plotly.Plots.resize(div); return; }
    var fig = FIGURES.figures[div.id];
    if (!fig) { return; }
    var layout = fig.layout;
    if (fig.template !== null) { layout.template = FIGURES.templates[fig.template]; }
    Plotly.newPlot(div, fig.data, layout, CONFIG);
    div.dataset.drawn = '1';
  });
}
function showSelection(key) {
  document.querySelectorAll('.selection').forEach(function (el) {
    var on = el.dataset.key === key;
    el.style.display = on ? '' : 'none';
    if (on && FIGURES) { draw(el); }
  });
}
async function start() {
  var status = document.getElementById('charts-status');
  try {
    var script = document.createElement('script');
    script.textContent = await unpack('plotly-js');
    document.head.appendChild(script);
    FIGURES = JSON.parse(await unpack('figures'));
    var picker = document.getElementById('selection');
    showSelection(picker ? picker.value : document.querySelector('.selection').dataset.key);
    status.remove();
  } catch (err) {
    status.textContent = 'The charts could not be drawn (' + err + '): they need a browser'
      + ' with DecompressionStream (Chromium 80+, Firefox 113+, Safari 16.4+).';
  }
}
document.addEventListener('DOMContentLoaded', start);
""".replace("__CONFIG__", json.dumps(CHART_CONFIG))
