"""``runtype-prefect setup``: what a Prefect server needs before the deployments run.

Idempotent: limits are upserted, the block type re-registered, the work pool created once.
"""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectNotFound

from .credentials import RuntypeCredentials
from .limits import ensure_limits

WORK_POOL = "runtype-process"


def ensure_work_pool(name: str = WORK_POOL) -> str:
    """Create the process work pool ``name`` unless it exists; return "created" or "exists"."""
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return "exists"
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            return "created"


def run_setup(
    *,
    api_requests_per_second: float = 20.0,
    max_running_batches: int = 4,
    work_pool: str = WORK_POOL,
    save_block: str | None = None,
) -> list[str]:
    """Create the limits, register the credentials block type, create the work pool and
    (optionally) save a credentials block from the environment; return what was done."""
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
    if save_block:
        RuntypeCredentials.from_env().save(save_block, overwrite=True)
        done.append(f"block runtype-credentials/{save_block}: saved from the environment")
    return done
