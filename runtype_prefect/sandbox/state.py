"""The sandbox's mutable state: batches, revealed step results, quota counters, statistics.

All of it is touched only from the server's event loop (every route is ``async``), so it needs
no locks. `SandboxState.tick` advances deferred batches; the app calls it in the background.
"""

from __future__ import annotations

import heapq
import math
import random
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from .clock import SimClock
from .simulation import RecordOutcome, night_profile, simulate_record
from .world import CROCKFORD, Flow, Record, World, iso, seed_world

#: Simulated seconds a deferred batch stays queued before it starts running.
QUEUE_DELAY_SECONDS = 2.0
#: Characters of the per-instance salt in generated ids.
ID_SALT_CHARS = 6


@dataclass
class SandboxSettings:
    """Knobs of one sandbox instance (the CLI and tests set them)."""

    seed: int = 7
    time_scale: float = 0.0
    start: datetime | None = None
    immediate_threshold: int = 10
    record_concurrency: int = 25
    daily_execution_limit: int | None = None
    failure_scale: float = 1.0
    api_keys: tuple[str, ...] = ()
    record_type_sizes: dict[str, int] | None = None  # None: the seeded default types
    calm: bool = False  # True: no planted slow weeks or incident nights, only ordinary noise
    #: How much the records change from one simulated day to the next (`World.evolve_to`):
    #: 0 never, 1 a CRM-like trickle (about 3% updated, 1% new, 0.3% deleted a day).
    churn: float = 0.0
    #: False: the plan lacks batch runs over chosen records (402 on ``POST /batch/flow``).
    batch_runs: bool = True
    #: Most record ids one ``POST /batch/flow`` takes (spec decision 10).
    max_batch_records: int = 1000


@dataclass
class Batch:
    """One run of a flow over a record type, immediate or deferred."""

    id: str
    flow: Flow
    record_type: str
    outcomes: list[RecordOutcome]  # in completion order
    created_at: datetime
    wall_start: float
    immediate: bool
    status: str = "queued"
    revealed: int = 0
    started_at: datetime | None = None
    completed_at: datetime | None = None
    forced_status: str | None = None  # set through the admin route, for client tests
    #: Per-record result rows of the revealed records, built once as each record finishes, so
    #: result pages and status polls are slices and counters, not rebuilds of the whole batch.
    record_rows: list[dict] = field(default_factory=list)
    failed_count: int = 0

    @property
    def total(self) -> int:
        return len(self.outcomes)

    @property
    def done(self) -> list[RecordOutcome]:
        return self.outcomes[: self.revealed]

    @property
    def failed(self) -> int:
        return self.failed_count

    @property
    def terminal(self) -> bool:
        return self.status in ("completed", "failed", "cancelled")

    def status_body(self) -> dict:
        """Return ``GET /batch/status/:id``'s body, exactly the spec's fields (§4.2)."""
        processed = self.revealed
        return {
            "batchExecutionId": self.id,
            "flowId": self.flow.id,
            "status": self.forced_status or self.status,
            "totalRecords": self.total,
            "processedRecords": processed,
            "failedRecords": self.failed,
            "successCount": processed - self.failed,
            "progress": round(100 * processed / self.total) if self.total else 100,
            "startedAt": iso(self.started_at or self.created_at),
            "completedAt": iso(self.completed_at),
            "results": [],
        }

    def summary_item(self) -> dict:
        """Return the batch as ``GET /batch/summary`` lists it: exactly the spec's fields
        (§4.3), so no flow id, record type or creation time to match on."""
        body = self.status_body()
        return {
            "id": self.id,
            "flowName": self.flow.name,
            "status": body["status"],
            "progress": body["progress"],
            "totalRecords": body["totalRecords"],
            "processedRecords": body["processedRecords"],
            "failedRecords": body["failedRecords"],
            "startedAt": body["startedAt"],
        }

    def ground_truth(self) -> dict:
        """Return everything the sandbox knows of the batch (for ``/_sandbox/stats``)."""
        return {
            **self.summary_item(),
            "flowId": self.flow.id,
            "recordType": self.record_type,
            "createdAt": iso(self.created_at),
            "stepResults": sum(len(o.steps) for o in self.done),
        }


@dataclass
class SandboxState:
    settings: SandboxSettings
    clock: SimClock = field(init=False)
    world: World = field(init=False)
    batches: dict[str, Batch] = field(default_factory=dict)
    steps_by_flow: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    steps_by_batch: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    steps_by_record: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    executions_by_day: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    runs_started: int = 0
    requests_served: int = 0
    _unsorted: set[str] = field(default_factory=set)
    _ids: random.Random = field(init=False)
    #: Mixed into every generated id: ids stay unique across restarts and resets, while the
    #: seeded world and the simulated outcomes stay the same for the same seed.
    id_salt: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every batch and result and re-seed the world (same ids for the same seed)."""
        s = self.settings
        self.clock = SimClock(s.start, time_scale=s.time_scale)
        created = self.clock.now() - timedelta(days=30)
        self.world = seed_world(s.seed, created, s.record_type_sizes)
        self.batches.clear()
        for index in (self.steps_by_flow, self.steps_by_batch, self.steps_by_record):
            index.clear()
        self.executions_by_day.clear()
        self._unsorted.clear()
        self.runs_started = 0
        self._ids = random.Random(f"ids:{s.seed}")
        self.id_salt = "".join(secrets.choice(CROCKFORD) for _ in range(ID_SALT_CHARS))

    # --- running ---------------------------------------------------------------------------

    def executions_remaining(self) -> int | None:
        """Return executions left today under the daily limit (None when unlimited)."""
        limit = self.settings.daily_execution_limit
        if limit is None:
            return None
        return max(0, limit - self.executions_by_day[self.clock.now().date().isoformat()])

    def sync_world(self) -> None:
        """Bring the records up to the simulated day (`World.evolve_to`): called before
        anything reads or runs them."""
        self.world.evolve_to(self.clock.now().date(), self.settings.seed, self.settings.churn)

    def start_batch(
        self,
        flow: Flow,
        record_type: str,
        records: list[Record] | None = None,
        *,
        concurrency: int | None = None,
    ) -> Batch:
        """Create a batch of ``flow`` over ``records`` (default: every record of
        ``record_type``; ``record_type`` names the batch's records either way). A batch over
        the whole type of at most `SandboxSettings.immediate_threshold` records finishes at
        once; one over chosen records is always deferred (spec decision 10). ``concurrency``
        overrides how many records run at a time."""
        chosen = records is not None
        if records is None:
            records = self.world.records_of(record_type)
        # The seeded part keeps simulated outcomes reproducible; the salt makes the id unique.
        sim_key = "".join(self._ids.choice("0123456789abcdef") for _ in range(20))
        batch_id = f"batch_{self.id_salt}{sim_key}"
        now = self.clock.now()
        immediate = not chosen and len(records) <= self.settings.immediate_threshold
        lanes = len(records) if immediate else concurrency or self.settings.record_concurrency
        start = now if immediate else now + timedelta(seconds=QUEUE_DELAY_SECONDS)
        outcomes = self._schedule(flow, records, batch_id, sim_key, start, max(1, lanes))
        batch = Batch(
            id=batch_id,
            flow=flow,
            record_type=record_type,
            outcomes=outcomes,
            created_at=now,
            wall_start=self.clock.wall(),
            immediate=immediate,
        )
        self.batches[batch_id] = batch
        self.runs_started += 1
        self.executions_by_day[now.date().isoformat()] += len(records)
        flow.last_run_at = now
        if immediate:
            batch.started_at = now
            self._reveal(batch, len(outcomes))
        return batch

    def _schedule(
        self,
        flow: Flow,
        records: list[Record],
        batch_id: str,
        sim_key: str,
        start: datetime,
        lanes: int,
    ) -> list[RecordOutcome]:
        profile = (
            night_profile(self.settings.seed, records[0].type, start, calm=self.settings.calm)
            if records
            else None
        )
        free_at = [(start, lane) for lane in range(min(lanes, len(records)))]
        heapq.heapify(free_at)
        outcomes = []
        for record in records:
            lane_free, lane = heapq.heappop(free_at)
            outcome = simulate_record(
                seed=self.settings.seed,
                flow=flow,
                record=record,
                batch_id=batch_id,
                sim_key=sim_key,
                id_salt=self.id_salt,
                started_at=lane_free,
                profile=profile,  # type: ignore[arg-type]
                failure_scale=self.settings.failure_scale,
            )
            outcomes.append(outcome)
            heapq.heappush(free_at, (outcome.completed_at, lane))
        outcomes.sort(key=lambda o: (o.completed_at, o.record.id))
        return outcomes

    def tick(self) -> None:
        """Advance every deferred batch to what its simulated elapsed time allows."""
        scale = self.settings.time_scale
        wall = self.clock.wall()
        for batch in self.batches.values():
            if batch.terminal:
                continue
            elapsed = math.inf if scale <= 0 else (wall - batch.wall_start) / scale
            if elapsed < QUEUE_DELAY_SECONDS:
                continue
            if batch.status == "queued":
                batch.status = "running"
                batch.started_at = batch.created_at + timedelta(seconds=QUEUE_DELAY_SECONDS)
            now_sim = batch.created_at + timedelta(seconds=min(elapsed, 10**9))
            upto = batch.revealed
            while upto < batch.total and batch.outcomes[upto].completed_at <= now_sim:
                upto += 1
            self._reveal(batch, upto)

    def _reveal(self, batch: Batch, upto: int) -> None:
        for outcome in batch.outcomes[batch.revealed : upto]:
            batch.record_rows.append(record_result_row(batch, outcome))
            batch.failed_count += not outcome.success
            for row in outcome.steps:
                self.steps_by_flow[batch.flow.id].append(row)
                self.steps_by_batch[batch.id].append(row)
                self.steps_by_record[outcome.record.id].append(row)
            self._unsorted.update((batch.flow.id, batch.id, outcome.record.id))
        batch.revealed = upto
        if upto == batch.total and not batch.terminal:
            all_failed = batch.total > 0 and batch.failed == batch.total
            batch.status = "failed" if all_failed else "completed"
            batch.started_at = batch.started_at or batch.created_at
            last = batch.outcomes[-1].completed_at if batch.outcomes else batch.started_at
            batch.completed_at = last
            self.clock.advance_to(last)

    def cancel(self, batch: Batch) -> None:
        """Cancel a queued or running batch: records not yet finished never run."""
        batch.status = "cancelled"
        batch.completed_at = self.clock.now()

    # --- reading ---------------------------------------------------------------------------

    def steps(self, index: dict[str, list[dict]], key: str) -> list[dict]:
        """Return the revealed step rows under ``key``, ordered by createdAt then id."""
        rows = index.get(key, [])
        if key in self._unsorted:
            for idx in (self.steps_by_flow, self.steps_by_batch, self.steps_by_record):
                if key in idx:
                    idx[key].sort(key=lambda r: (r["createdAt"], r["id"]))
            self._unsorted.discard(key)
        return rows

    def batch_cost(self, batch: Batch) -> Decimal:
        """Return the summed estimated cost of a batch's executed steps."""
        return sum((o.cost for o in batch.done), Decimal(0))

    def record_result_rows(self, batch: Batch) -> list[dict]:
        """Return the per-record result rows of a batch, in completion order."""
        return batch.record_rows


def record_result_row(batch: Batch, o: RecordOutcome) -> dict:
    """Return one finished record's row of ``GET /schedules/batch/:id/results``."""
    return {
        "recordResultId": "res_" + o.execution_id.removeprefix("exec_"),
        "agentExecutionId": None,
        "executionId": o.execution_id,
        "createdAt": iso(o.completed_at),
        "executedAt": iso(o.started_at),
        "failedAt": None if o.success else iso(o.completed_at),
        "error": o.error,
        "flowId": batch.flow.id,
        "flowName": batch.flow.name,
        "record": {"id": o.record.id, "name": o.record.name, "type": o.record.type},
        "recordId": o.record.id,
        "status": "completed" if o.success else "failed",
    }
