# The two commands: `make demo` and `make test`. Everything installs from the lock file.
SHELL := /bin/bash
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test bench lint notebooks report clean

install: $(STAMP)

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --quiet
	touch $(STAMP)

demo: install
	$(VENV)/bin/runtype-prefect demo

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest

# JupyterLab on the analysts' notebooks, reading the demo's warehouse (run `make demo` first).
notebooks: install
	@test -f runtype.analytics.duckdb || { echo "no runtype.analytics.duckdb yet: run 'make demo' first"; exit 1; }
	RUNTYPE_PREFECT_DB=$(CURDIR)/runtype.duckdb $(VENV)/bin/jupyter lab --notebook-dir=notebooks

report: install
	$(VENV)/bin/runtype-prefect report --db runtype.duckdb --out reports/report.html

bench: install
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache
