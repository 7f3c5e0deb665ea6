"""The Prefect layer: tasks and flows that wrap the client and land into the warehouse, with
what they need (credentials block, limits, jobs, provisioning, preflight, reconciliation).

The flows are imported on first use (PEP 562), so the plain modules here (jobs, preflight,
landing, reconcile) load without importing Prefect's flow machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..client import BatchWaitTimeout
from .outcomes import JobResult, Outcome

if TYPE_CHECKING:
    from .nightly import nightly
    from .record_type import run_record_type

__all__ = ["BatchWaitTimeout", "JobResult", "Outcome", "nightly", "run_record_type"]


def __getattr__(name: str) -> Any:
    if name == "nightly":
        from .nightly import nightly

        return nightly
    if name == "run_record_type":
        from .record_type import run_record_type

        return run_record_type
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
