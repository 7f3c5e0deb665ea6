"""Pydantic models of the Runtype API's JSON, camelCase on the wire, snake_case in Python.

Unknown fields are kept (``extra="allow"``) so a newer API never breaks parsing; money in step
results arrives as a decimal string and is kept exact as `Decimal`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel


class RuntypeModel(BaseModel):
    """Base of every API model: camelCase aliases, unknown fields kept, populate by name."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True
    )


class BatchState(StrEnum):
    """Every batch status the project knows (spec decision 2)."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """True for completed, failed and cancelled."""
        return self in (BatchState.COMPLETED, BatchState.FAILED, BatchState.CANCELLED)


class FlowStep(RuntypeModel):
    id: str | None = None
    type: str
    name: str
    order: int | None = None
    enabled: bool = True
    config: dict[str, Any] = Field(default_factory=dict)


class FlowSummary(RuntypeModel):
    id: str
    name: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_run_at: datetime | None = None


class Flow(FlowSummary):
    flow_steps: list[FlowStep] = Field(default_factory=list)
    step_count: int | None = None
    organization_id: str | None = None
    user_id: str | None = None
    dashboard_url: str | None = None


class RecordRunResult(RuntypeModel):
    """One record's outcome in an immediate run-on-record-type answer."""

    record_id: str
    record_name: str | None = None
    success: bool
    execution_id: str | None = None
    execution_time: float | None = None  # seconds
    context_steps: int | None = None
    prompts_executed: int | None = None
    error: str | None = None

    @field_validator("error")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        # The API sends "" for records that succeeded.
        return value or None


class ImmediateRun(RuntypeModel):
    """HTTP 200 from run-on-record-type: ≤ threshold records, already executed."""

    batch_id: str | None = None
    flow_id: str
    record_type: str
    record_count: int
    executed_immediately: bool = True
    success_count: int | None = None
    failure_count: int = 0
    completed_at: datetime | None = None
    results: list[RecordRunResult] = Field(default_factory=list)


class ScheduledBatch(RuntypeModel):
    """HTTP 202 from run-on-record-type: a deferred batch to follow by ``batch_id``."""

    batch_id: str
    flow_id: str
    record_type: str
    record_count: int
    status: str = "queued"
    executed_immediately: bool = False


RunStart = ImmediateRun | ScheduledBatch


class BatchOptions(RuntypeModel):
    """How a batch over chosen records runs (``POST /batch/flow``'s ``options``)."""

    max_retries: int | None = Field(None, ge=0)
    record_concurrency: int | None = Field(None, ge=1)


class SubmittedBatch(RuntypeModel):
    """The answer to ``POST /batch/flow``: a batch to follow (spec decision 10)."""

    batch_execution_id: str
    status: str = "queued"


class FlowVersion(RuntypeModel):
    """A version of a flow (``GET /flow-versions/:flowId/published``)."""

    id: str
    flow_id: str | None = None
    version_number: int | None = None
    version_type: str | None = None
    created_at: datetime | None = None


class BatchStatus(RuntypeModel):
    batch_execution_id: str
    flow_id: str | None = None
    status: BatchState
    total_records: int = 0
    processed_records: int = 0
    failed_records: int = 0
    success_count: int = 0
    progress: int = 0
    started_at: datetime | None = None
    completed_at: datetime | None = None

    @property
    def is_short(self) -> bool:
        """True when the batch says ``completed`` while records are still unprocessed (the
        spec's own example: completed with 98 of 100 processed)."""
        return self.status is BatchState.COMPLETED and self.processed_records < self.total_records

    @property
    def has_ended(self) -> bool:
        """True when nothing more will happen: a terminal status, and for ``completed`` every
        record processed."""
        return self.status.is_terminal and not self.is_short


class BatchSummaryItem(RuntypeModel):
    id: str
    flow_id: str | None = None
    flow_name: str | None = None
    record_type: str | None = None
    status: str
    progress: int = 0
    total_records: int = 0
    processed_records: int = 0
    failed_records: int = 0
    started_at: datetime | None = None


class BatchSummary(RuntypeModel):
    active_batches: int = 0
    recently_completed: int = 0
    batches: list[BatchSummaryItem] = Field(default_factory=list)
    recent: list[BatchSummaryItem] = Field(default_factory=list)


class RecordCount(BaseModel):
    """How many records of a type exist, and when the API counted them (its own clock)."""

    record_type: str
    count: int
    #: The API's ``Date`` header on the answer (None when it sent none): the API's clock.
    as_of: datetime | None = None


class BatchCost(RuntypeModel):
    batch_execution_id: str
    total_cost_usd: float


class CancelResult(RuntypeModel):
    success: bool
    message: str = ""


class RecordRef(RuntypeModel):
    id: str
    name: str | None = None
    type: str | None = None


class BatchRecordResult(RuntypeModel):
    """One record's row from ``GET /v1/schedules/batch/:batchId/results``."""

    record_id: str
    record: RecordRef | None = None
    status: str
    error: str | None = None
    execution_id: str | None = None
    executed_at: datetime | None = None
    failed_at: datetime | None = None
    record_result_id: str | None = None
    agent_execution_id: str | None = None
    flow_id: str | None = None
    flow_name: str | None = None
    created_at: datetime | None = None


class StepResult(RuntypeModel):
    """One executed step of one record's execution (spec §2.9)."""

    id: str
    batch_execution_id: str | None = None
    execution_session_id: str | None = None
    flow_id: str
    flow_version_id: str | None = None
    record_id: str | None = None
    record_name: str | None = None
    step_id: str | None = None
    step_name: str | None = None
    step_type: str | None = None
    order: int | None = None
    status: str
    started_at: datetime | None = None
    completed_at: datetime | None = None
    created_at: datetime | None = None
    duration_ms: int | None = None
    output_preview: str | None = None
    model_used: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    estimated_cost: Decimal | None = None
    error_message: str | None = None
    resolved_prompt: str | None = None
    retry_count: int = 0
    user_id: str | None = None
    organization_id: str | None = None


class Record(RuntypeModel):
    id: str
    type: str
    name: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class SchemaField(RuntypeModel):
    name: str
    type: str
    required: bool = False
    example: Any = None
    format: str | None = None
    description: str | None = None


class RecordSchema(RuntypeModel):
    type: str
    total_records: int
    sampled_records: int
    sampled_at: datetime | None = None
    fields: list[SchemaField] = Field(default_factory=list)


class UsagePeriod(RuntypeModel):
    period_type: str | None = None
    execution_limit: int | None = None
    executions_used: int = 0
    remaining: int | None = None
    percent_used: float | None = None
    is_unlimited: bool = False
    is_at_limit: bool = False
    in_slow_mode: bool = False
    resets_at: datetime | None = None


class UsageLimits(RuntypeModel):
    daily: UsagePeriod
    monthly: UsagePeriod


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a listing as it arrived: the parsed items and where the next page starts."""

    items: list[T]
    offset: int = 0
    has_more: bool = False
