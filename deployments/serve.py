"""The deployments of ``prefect.yaml``, served without a work pool: ``python deployments/serve.py``.

For users without a worker: the same flows, parameters, schedules, concurrency limits and
triggers, read from ``prefect.yaml`` (one source of truth), run by this process. Like any
schedule, they need a real Prefect server (``PREFECT_API_URL``) or Prefect Cloud.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow, serve
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from prefect.schedules import Cron
from prefect.utilities.importtools import import_object

PREFECT_YAML = Path(__file__).with_name("prefect.yaml")


def load_deployment_specs(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    """Return the ``deployments`` entries of a prefect.yaml; raise ValueError if there are none."""
    specs = (yaml.safe_load(path.read_text()) or {}).get("deployments") or []
    if not specs:
        raise ValueError(f"{path} defines no deployments")
    return specs


def build_deployments(path: Path = PREFECT_YAML) -> list:
    """Return a `RunnerDeployment` per deployment of ``path`` (for `serve`)."""
    deployments = []
    for spec in load_deployment_specs(path):
        flow: Flow = import_object(spec["entrypoint"])
        schedules = [
            Cron(
                s["cron"],
                timezone=s.get("timezone", "UTC"),
                active=s.get("active", True),
                parameters=s.get("parameters") or {},
            )
            for s in spec.get("schedules") or []
        ]
        triggers = [DeploymentEventTrigger(**t) for t in spec.get("triggers") or []]
        deployments.append(
            flow.to_deployment(
                name=f"{spec['name']}-served",
                description=spec.get("description"),
                parameters=spec.get("parameters") or {},
                schedules=schedules or None,
                triggers=triggers or None,
                tags=spec.get("tags"),
                concurrency_limit=spec.get("concurrency_limit"),
            )
        )
    return deployments


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    serve(*build_deployments())
