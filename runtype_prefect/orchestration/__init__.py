"""The Prefect layer: tasks and flows that wrap the client and land into the warehouse."""

from ..client import BatchWaitTimeout
from .nightly import nightly
from .outcomes import JobResult, Outcome
from .record_type import run_record_type

__all__ = ["BatchWaitTimeout", "JobResult", "Outcome", "nightly", "run_record_type"]
