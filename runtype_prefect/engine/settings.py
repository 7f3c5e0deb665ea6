"""What a job run needs besides the job itself, as typed, grouped settings.

`JobSettings` is everything one job's run reads (where its key and warehouse are, how long it
waits, what it may cost, when it counts as failed); `NightSettings` is what a night of many
jobs adds. The flows take them as parameters, so the Prefect UI shows them as groups with each
field's description, and the engine passes one object instead of a list of arguments.

Deployments written before the settings were grouped pass flat names (``timeout_seconds``);
`upgrade_parameters` moves each to its field and says where it went.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..gate import QualityThresholds

#: How long a job waits for its batch before giving up (the batch is left running).
DEFAULT_TIMEOUT_SECONDS = 6 * 3600.0
#: How long a batch that says ``completed`` with records missing is polled on for them.
DEFAULT_INCOMPLETE_GRACE_SECONDS = 600.0
#: Below this share of succeeded records a landed job ends Failed (``BelowFloor``): red in the
#: UI and counted on the dashboard. Above it, failures make it ``CompletedWithFailures``. The
#: floor is for the night something is badly broken (most records failing); the quality gate
#: judges the subtler drops against each job's own history.
DEFAULT_MIN_SUCCESS_RATE = 0.5


class _Settings(BaseModel):
    # A misspelt setting is refused by name, not silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Waiting(_Settings):
    """How a job follows its batch."""

    timeout_seconds: float = Field(
        DEFAULT_TIMEOUT_SECONDS,
        gt=0,
        description="Give up waiting for the batch after this long: the job fails as timed out"
        " and the batch is left running (a re-run reconnects to it)",
    )
    poll_interval_seconds: float = Field(
        5.0, gt=0, description="First pause between two status calls; it grows while nothing moves"
    )
    max_poll_interval_seconds: float = Field(
        60.0, gt=0, description="Longest pause between two status calls"
    )
    incomplete_grace_seconds: float = Field(
        DEFAULT_INCOMPLETE_GRACE_SECONDS,
        ge=0,
        description="How long a batch that says completed with records missing is polled on"
        " before the job ends Incomplete",
    )


class Money(_Settings):
    """What a job may cost, judged by the preflight's forecast before anything starts."""

    max_cost_usd: float | None = Field(
        None,
        gt=0,
        description="Skip the job (outcome over_budget) when its cost forecast is higher;"
        " empty: no limit",
    )


class Judgement(_Settings):
    """When a landed job counts as failed."""

    min_success_rate: float = Field(
        DEFAULT_MIN_SUCCESS_RATE,
        ge=0,
        le=1,
        description="Below this share of succeeded records the job ends Failed (BelowFloor);"
        " the batch is landed in full either way",
    )


class Mode(StrEnum):
    """Which records a job's night runs over."""

    FULL = "full"
    INCREMENTAL = "incremental"


class JobSettings(_Settings):
    """How one job runs: its key and warehouse, waiting, money, judgement and publishing."""

    credentials_block: str | None = Field(
        None,
        description="Saved RuntypeCredentials block holding the API key and base URL;"
        " empty: RUNTYPE_API_KEY and RUNTYPE_BASE_URL from the environment",
    )
    db_path: str | None = Field(
        None,
        description="Where results land: a DuckDB file, or a shared location (s3://bucket/prefix,"
        " file:///path) for workers on a pool; empty: $RUNTYPE_PREFECT_DB or runtype.duckdb",
    )
    preflight: bool = Field(
        True,
        description="Check the warehouse, the key, every flow and record type, the quota and"
        " the budgets before anything starts",
    )
    force: bool = Field(
        False,
        description="Start a new batch even when this run key already has one (a re-run"
        " otherwise reconnects to it, or does nothing once it landed)",
    )
    publish_snapshot: bool = Field(
        True, description="Publish the analytics snapshot that notebooks and the report read"
    )
    records_dimension: bool = Field(
        True,
        description="Page the record type's records into the records dimension once a night"
        " (segments, a record's history and chronic failures read it); off: only the"
        " batch's results land, one listing of every record fewer",
    )
    mode: Mode | None = Field(
        None,
        description="full: run every record of the type; incremental: only the records new,"
        " changed or failed since their last result from the flow (every record again when"
        " the flow's published version changed); empty: each job's own mode in the jobs"
        " file, full where it sets none",
    )
    waiting: Waiting = Field(default_factory=Waiting)
    money: Money = Field(default_factory=Money)
    judgement: Judgement = Field(default_factory=Judgement)


class QualityGate(_Settings):
    """Each job's night judged against its own clean history."""

    enabled: bool = Field(True, description="Judge the night (when its run key is a date)")
    thresholds: QualityThresholds = Field(
        default_factory=QualityThresholds, description="When a night counts as degraded"
    )
    fail_on_degradation: bool = Field(
        False, description="End the night Failed when a job's quality degraded"
    )


class RepairPass(_Settings):
    """After the night's jobs landed, the records that failed for a reason a re-run may cure
    (a timeout, a rate limit, a 5xx) run once more, within the night's budget."""

    enabled: bool = Field(
        False,
        description="Re-run once, after the night, each job's records that failed with a"
        " timeout, a rate limit or a 5xx (not with a shared db_path)",
    )


class NightSettings(_Settings):
    """What a night of many jobs adds to each job's settings."""

    max_concurrent_jobs: int = Field(4, ge=1, description="Jobs running at once")
    max_cost_usd: float | None = Field(
        None,
        gt=0,
        description="Skip the jobs that would take the night's cost forecast past this;"
        " empty: no limit",
    )
    dispatch_deployment: str | None = Field(
        None,
        description="Run each job as a flow run of this deployment (run-record-type/on-demand)"
        " on whichever worker of its pool is free; needs a shared db_path",
    )
    quality: QualityGate = Field(default_factory=QualityGate)
    repair: RepairPass = Field(default_factory=RepairPass)


#: Parameter names of the flows before the settings were grouped → where each lives now.
FORMER_NAMES: dict[str, tuple[str, ...]] = {
    "credentials_block": ("settings", "credentials_block"),
    "db_path": ("settings", "db_path"),
    "preflight": ("settings", "preflight"),
    "force": ("settings", "force"),
    "publish_snapshot": ("settings", "publish_snapshot"),
    "timeout_seconds": ("settings", "waiting", "timeout_seconds"),
    "poll_interval_seconds": ("settings", "waiting", "poll_interval_seconds"),
    "max_poll_interval_seconds": ("settings", "waiting", "max_poll_interval_seconds"),
    "incomplete_grace_seconds": ("settings", "waiting", "incomplete_grace_seconds"),
    "max_cost_usd": ("settings", "money", "max_cost_usd"),
    "max_cost_usd_per_job": ("settings", "money", "max_cost_usd"),
    "min_success_rate": ("settings", "judgement", "min_success_rate"),
    "max_concurrent_jobs": ("night", "max_concurrent_jobs"),
    "max_cost_usd_per_night": ("night", "max_cost_usd"),
    "dispatch_deployment": ("night", "dispatch_deployment"),
    "quality_gate": ("night", "quality", "enabled"),
    "quality_thresholds": ("night", "quality", "thresholds"),
    "fail_on_degradation": ("night", "quality", "fail_on_degradation"),
}


def upgrade_parameters(
    parameters: dict[str, Any], accepted: set[str]
) -> tuple[dict[str, Any], list[str]]:
    """Return a flow's parameters with each former flat name (`FORMER_NAMES`) moved to its
    settings field, and one line per move ("timeout_seconds is now settings.waiting.…").

    ``accepted`` is the flow's parameter names: a former name whose new home the flow does not
    take is left as it is. A value already set under the new name wins over the former one.
    """
    upgraded = dict(parameters)
    moves: list[str] = []
    for name, path in FORMER_NAMES.items():
        if name not in upgraded or path[0] not in accepted:
            continue
        value = upgraded.pop(name)
        group = upgraded.get(path[0])
        node: dict[str, Any] = dict(group) if isinstance(group, dict) else {}
        upgraded[path[0]] = node
        for part in path[1:-1]:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        node.setdefault(path[-1], value)
        moves.append(f"parameter {name!r} is now {'.'.join(path)!r}")
    return upgraded, moves
