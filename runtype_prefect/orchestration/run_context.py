"""Lends the engine the current Prefect run: its waiting notices go to the run's logs (the UI)
and the warehouse's holder file names the run. Registered when this module is imported, which
every module with a flow or task does through `tasks`."""

from __future__ import annotations

import logging

from prefect import runtime
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

from ..engine.resources import use_run_context

_log = logging.getLogger("runtype_prefect.engine.resources")


def run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """Return the current run's logger, or the engine's own outside a run."""
    try:
        return get_run_logger()
    except MissingContextError:
        return _log


def this_run() -> str:
    """Return the Prefect run this process writes for, as an operator finds it in the UI."""
    name, run_id = runtime.flow_run.name, runtime.flow_run.id
    if not run_id:
        return "runtype-prefect"
    return f"flow run {name!r} ({run_id})"


use_run_context(run_logger, this_run)
