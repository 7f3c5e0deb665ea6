"""Rehearsals against the sandbox: what drives the sandbox's clock and world rather than a real
Runtype account.

- `backfill`: the ``runtype-backfill`` flow, several simulated nights of history;
- `replay`: a year of simulated nights with planted incidents, to score the quality gate.

Production code (the client, orchestration, the warehouse, the gate, analytics) never imports
this package; the import contracts in ``pyproject.toml`` hold that.
"""
