"""The analysts' notebooks: committed without outputs, parameterised, executed headless against
a warehouse the nightly flow landed from the sandbox."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks_for_each_topic():
    names = " ".join(p.stem for p in NOTEBOOKS)
    for topic in ("success", "execution_times", "cost", "failures"):
        assert topic in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean_and_parameterised(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), (
        f"{path.name} is committed with outputs: clear them before committing"
    )
    assert "parameters" in code[0].metadata.get("tags", []), "first code cell must be parameters"
    assert "RUNTYPE_PREFECT_DB" in code[0].source
    assert not any("SELECT" in c.source.upper() for c in code), "use runtype_prefect.analytics"
    assert any(c.cell_type == "markdown" for c in nb.cells[3:]), "explain each chart"


def run_notebook(path: Path, **parameters) -> nbformat.NotebookNode:
    """Execute ``path`` with ``parameters`` injected after its parameters cell (papermill style)."""
    nb = nbformat.read(path, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    injected = "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(f"# injected parameters\n{injected}"))
    NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return nb


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_headless_on_a_landed_warehouse(path, sandbox_warehouse):
    nb = run_notebook(path, db=sandbox_warehouse, start="2026-11-27")
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    charts = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert charts, f"{path.name} drew no chart"
    assert "No data for this selection" not in str(charts)
    # Each chart also carries HTML, which is what nbconvert and GitHub's preview keep.
    assert all("text/html" in o["data"] for o in charts), f"{path.name}: a chart has no HTML"
    # Every figure cell keeps a rendered plotly div once exported to HTML (what nbconvert and
    # GitHub's preview show), and the page carries plotly.js once, inline: offline.
    from nbconvert import HTMLExporter

    for cell in nb.cells:
        if cell.cell_type == "code" and ".show()" in cell.source:
            divs = [
                o
                for o in cell.outputs
                if 'class="plotly-graph-div"' in o.get("data", {}).get("text/html", "")
            ]
            assert len(divs) >= cell.source.count(".show()"), f"{path.name}: {cell.source[:60]}"
    page, _ = HTMLExporter().from_notebook_node(nb)
    assert page.count('class="plotly-graph-div"') >= len(charts)
    assert page.count("Plotly.newPlot") >= len(charts)
    assert page.count("plotly.js v") == 1
    assert not re.search(r"<script[^>]*src=[\"'][^\"']*plot\.ly", page)


def test_make_notebooks_opens_a_git_ignored_working_copy():
    import subprocess

    root = Path(__file__).parents[1]
    makefile = (root / "Makefile").read_text()
    assert "test -e notebooks/work/$$(basename $$nb) || cp $$nb notebooks/work/" in makefile
    assert "--notebook-dir=notebooks/work" in makefile
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "notebooks/work/01_success_rates.ipynb"], cwd=root
    )
    assert ignored.returncode == 0, "the working copy must be git-ignored"
