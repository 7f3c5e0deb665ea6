"""A Runtype-compatible HTTP server for demos and tests: seeded flows and records, simulated
execution on a controllable clock, background batches, and switchable faults."""

from .app import DEFAULT_API_KEY, create_app
from .faults import FaultAction, FaultConfig
from .server import SandboxServer
from .state import SandboxSettings

__all__ = [
    "DEFAULT_API_KEY",
    "FaultAction",
    "FaultConfig",
    "SandboxServer",
    "SandboxSettings",
    "create_app",
]
