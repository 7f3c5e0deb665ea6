"""The engine: what a job run does, without Prefect.

Jobs and their outcomes, starting a batch exactly once (the ledger, reconnecting, reconciling
a lost start), landing its results, the preflight's checks and forecasts, the warehouse shared
by a process's jobs, and the progress feed. The Prefect layer (`runtype_prefect.orchestration`:
tasks, flows, blocks, limits, events, artifacts) calls it; the command line's checks and the
benchmarks call it directly. An import contract in ``pyproject.toml`` holds it free of Prefect.
"""
