"""The Prefect layer: tasks and flows that wrap the client and land into the warehouse, with
what they need (credentials block, limits, jobs, provisioning, preflight, reconciliation).

Importing this package does not import Prefect: its plain modules (jobs, preflight, starting,
landing, reconcile) serve the CLI's quick checks and the benchmarks as they are. The flows are
imported from `runtype_prefect.flows` (or their own modules).
"""

from ..client import BatchWaitTimeout
from ..engine.outcomes import JobResult, Outcome

__all__ = ["BatchWaitTimeout", "JobResult", "Outcome"]
