"""The ``runtype-prefect`` command line: its commands, the demo and the local stack."""

from .app import app

__all__ = ["app"]
