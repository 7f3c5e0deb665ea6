# The two commands: `make demo` and `make test`. Everything installs from the lock file.
SHELL := /bin/bash
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast bench study-table-formats lint notebooks report server clean

install: $(STAMP)

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Bytecode compiled at install: a process that imports Prefect from source (a machine with
# PYTHONDONTWRITEBYTECODE set, as CI's are) spends a second compiling before it does anything.
$(STAMP): uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --all-extras --quiet --compile-bytecode
	touch $(STAMP)

demo: install
	$(VENV)/bin/runtype-prefect demo

test: lint
	$(VENV)/bin/pytest

# The suite without the end-to-end test that starts a real Prefect server and worker.
test-fast: install
	$(VENV)/bin/pytest -m "not e2e"

# A real Prefect server (SQLite, UI on http://127.0.0.1:4200), the sandbox, the deployments of
# deployments/prefect.yaml and a process worker, until Ctrl-C. Schedules run here.
# Alerts too: `make server WEBHOOK=https://hooks.example.com/x` or `NOTIFY=slack-webhook/on-call`.
server: install
	$(VENV)/bin/runtype-prefect server $(if $(WEBHOOK),--webhook $(WEBHOOK)) $(if $(NOTIFY),--notify $(NOTIFY))

# JupyterLab on the analysts' notebooks, reading the demo's warehouse (run `make demo` first).
# It opens a git-ignored working copy (notebooks/work/, each notebook copied once: delete one to
# get the committed version again), so analysts save their runs without touching the committed,
# output-free notebooks. As root (containers, CI) JupyterLab needs --allow-root.
notebooks: install
	@test -f runtype.analytics.duckdb || { echo "no runtype.analytics.duckdb yet: run 'make demo' first"; exit 1; }
	@mkdir -p notebooks/work && for nb in notebooks/*.ipynb; do \
		test -e notebooks/work/$$(basename $$nb) || cp $$nb notebooks/work/; done
	RUNTYPE_PREFECT_DB=$(CURDIR)/runtype.duckdb $(VENV)/bin/jupyter lab --notebook-dir=notebooks/work \
		$(if $(filter 0,$(shell id -u)),--allow-root)

report: install
	$(VENV)/bin/runtype-prefect report --db runtype.duckdb --out reports/report.html

# Every benchmark, then docs/performance.md generated from what they printed (never hand-edited).
# The bench dependency group adds what the benchmarks compare against (dlt).
bench: install
	$(UV) sync --frozen --all-extras --group bench --quiet
	@rm -rf .bench && mkdir -p .bench && cat /proc/loadavg > .bench/load-at-start
	@for script in benchmarks/bench_*.py; do echo "== $$script"; \
		$(PY) $$script 2>&1 | tee .bench/$$(basename $$script .py).txt; \
		test $${PIPESTATUS[0]} -eq 0 || exit 1; done
	$(PY) benchmarks/performance_page.py .bench docs/performance.md

# The one-off study that chose the shared warehouse's table format (docs/decisions.md).
study-table-formats: install
	$(UV) sync --frozen --all-extras --group shared-storage --quiet
	$(PY) benchmarks/studies/table_formats.py

# ruff; mypy (strict on the client and the warehouse); the import contracts of pyproject.toml
# (the client knows no Prefect or DuckDB, the warehouse no HTTP, analytics no orchestration,
# only the CLI uses the sandbox). pre-commit runs the same target.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy runtype_prefect
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache
