"""``runtype-prefect setup``: what a Prefect server needs before the deployments run.

Idempotent: limits are upserted, the block type re-registered, the work pool created once,
the alert automations updated by name, and deployments still holding the flat parameter
names of the earlier parameter lists are rewritten to the grouped settings once.
"""

from __future__ import annotations

from datetime import timedelta

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentUpdate, WorkPoolCreate
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound

from ..engine.settings import upgrade_parameters
from .automations import (
    DEFAULT_LATE_AFTER,
    DEFAULT_MISSED_AFTER,
    alert_rules,
    ensure_automations,
    notification_block_id,
    save_webhook_block,
)
from .credentials import RuntypeCredentials
from .limits import ensure_limits

WORK_POOL = "runtype-process"
#: This project's flows that take grouped settings, and the settings parameters each takes.
SETTINGS_PARAMETERS = {
    "run-record-type": {"settings"},
    "runtype-nightly": {"settings", "night"},
    "runtype-backfill": {"settings", "night"},
}


def ensure_work_pool(name: str = WORK_POOL) -> str:
    """Create the process work pool ``name`` unless it exists; return "created" or "exists"."""
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return "exists"
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            return "created"


def upgrade_deployments() -> list[str]:
    """Rewrite the stored parameters of this project's deployments, and of their runs that have
    not started, that still use flat names of the earlier parameter lists (`upgrade_parameters`:
    ``timeout_seconds`` → ``settings.waiting.timeout_seconds``); return one line per deployment
    rewritten, naming each move. A run that reached a worker with flat names fails binding them;
    rewritten, the deployment's runs keep running. Raises what the Prefect client raises."""
    lines = []
    with get_client(sync_client=True) as client:
        for flow_name, accepted in SETTINGS_PARAMETERS.items():
            flows = FlowFilter(name=FlowFilterName(any_=[flow_name]))
            for deployment in client.read_deployments(flow_filter=flows):
                upgraded, moves = upgrade_parameters(deployment.parameters or {}, accepted)
                if moves:
                    client.update_deployment(deployment.id, DeploymentUpdate(parameters=upgraded))
                waiting = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(
                            type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])
                        )
                    ),
                )
                runs = 0
                for flow_run in waiting:
                    upgraded, run_moves = upgrade_parameters(flow_run.parameters, accepted)
                    if run_moves:
                        client.update_flow_run(flow_run.id, parameters=upgraded)
                        runs += 1
                        moves = moves or run_moves
                if moves:
                    also = f" (and {runs} scheduled runs)" if runs else ""
                    lines.append(
                        f"deployment {flow_name}/{deployment.name}{also}: " + "; ".join(moves)
                    )
    return lines


def run_setup(
    *,
    api_requests_per_second: float = 20.0,
    max_running_batches: int = 4,
    work_pool: str = WORK_POOL,
    save_block: str | None = None,
    notify: str | None = None,
    webhook: str | None = None,
    late_after: timedelta = DEFAULT_LATE_AFTER,
    missed_after: timedelta = DEFAULT_MISSED_AFTER,
    digest: bool = False,
) -> list[str]:
    """Create the limits, register the credentials block type, create the work pool,
    (optionally) save a credentials block from the environment and, with ``notify`` (a
    notification block, ``<type slug>/<name>``) or ``webhook`` (a URL: a generic webhook block
    is saved for it), create or update the alert automations (`ensure_automations`); return
    what was done.

    Raises `NotificationBlockError` before changing anything when ``notify`` names no
    notification block."""
    if webhook and not notify:
        notify = save_webhook_block(webhook)
    block_id = notification_block_id(notify) if notify else None
    done = [
        f"global concurrency limit {name}: {what}"
        for name, what in ensure_limits(
            api_requests_per_second=api_requests_per_second,
            max_running_batches=max_running_batches,
        ).items()
    ]
    RuntypeCredentials.register_type_and_schema()
    done.append("block type runtype-credentials: registered")
    done.append(f"work pool {work_pool} (process): {ensure_work_pool(work_pool)}")
    done.extend(upgrade_deployments())
    if save_block:
        RuntypeCredentials.from_env().save(save_block, overwrite=True)
        done.append(f"block runtype-credentials/{save_block}: saved from the environment")
    if block_id is not None:
        rules = alert_rules(late_after=late_after, missed_after=missed_after, digest=digest)
        done.append(f"alerts go through block {notify}")
        done.extend(ensure_automations(block_id, rules))
    return done
