"""The errors orchestration raises on purpose, under one root, grouped by what the caller does.

`RunError` is the root: the command line prints any of them in one line (no traceback) and
Prefect's retry condition reads ``retryable``. `StopError`: fix the input or settle by hand
(a bad jobs file, a failed preflight check, a start only a person can attribute, a night run
into another warehouse); retrying changes nothing. Errors of the client (`RuntypeError`) and of
the warehouse (`WarehouseError`) keep their own roots, in the layers that raise them.
"""

from __future__ import annotations


class RunError(Exception):
    """Root of orchestration's errors; ``retryable`` says whether running again can help."""

    retryable: bool = False


class StopError(RunError):
    """Running again cannot help: the message says what to fix or settle."""
