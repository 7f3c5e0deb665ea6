"""Simulated execution of a flow over one record: step durations, models, tokens, cost, failures.

Draws are deterministic for (seed, batch, record), and vary by calendar night so that a
backfilled history shows trends: a slow week for one step, a bad night for another.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from .world import SANDBOX_ORG, SANDBOX_USER, Flow, Record, Step, iso, type_id

#: USD per million (prompt, completion) tokens.
MODEL_PRICES: dict[str, tuple[Decimal, Decimal]] = {
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")),
    "gpt-4o": (Decimal("2.50"), Decimal("10.00")),
    "claude-sonnet-4-5": (Decimal("3.00"), Decimal("15.00")),
    "claude-haiku-4-5": (Decimal("1.00"), Decimal("5.00")),
}

#: Median duration (ms) and log-normal sigma per step type.
DURATIONS: dict[str, tuple[float, float]] = {
    "prompt": (1800.0, 0.55),
    "api-call": (320.0, 0.7),
    "transform-data": (12.0, 0.5),
}

#: Base probability that one step of this type fails.
FAILURE_RATES: dict[str, float] = {"prompt": 0.012, "api-call": 0.02, "transform-data": 0.003}

#: Extra failure factor per record type: some data is messier than other data.
TYPE_FAILURE_FACTOR: dict[str, float] = {
    "vip_account": 0.5,
    "customer": 1.0,
    "ticket": 1.6,
    "lead": 1.2,
}

ERRORS: dict[str, list[str]] = {
    "prompt": [
        "Model provider rate limit exceeded (429) after {n} retries",
        "Model output was not valid JSON: Unexpected token at position {pos}",
        "Context length exceeded: {tokens} tokens requested, 128000 maximum",
        "Timeout error during execution",
    ],
    "api-call": [
        "HTTP 502 Bad Gateway from https://api.crm.example/v2/accounts/{rid}",
        "HTTP 404 Not Found from https://api.crm.example/v2/accounts/{rid}",
        "Connection timed out after {ms} ms",
        "HTTP 401 Unauthorized from enrichment provider",
    ],
    "transform-data": [
        "TypeError: Cannot read properties of undefined (reading '{field}')",
        "Script exceeded {ms} ms time limit",
    ],
}


@dataclass
class NightProfile:
    """Multipliers for one calendar night and record type (slowdowns and incident nights)."""

    duration_factor: dict[str, float]
    failure_factor: dict[str, float]


#: The regressions the sandbox plants, by calendar day: a slow week every 30 days for the model
#: provider (prompt steps take 1.9× as long) and an incident night every 11 days (the CRM API,
#: i.e. api-call steps, fails 6× as often).
SLOW_WEEK_PERIOD, SLOW_WEEK_DAYS, SLOW_WEEK_FACTOR = 30, 7, 1.9
INCIDENT_PERIOD, INCIDENT_PHASE, INCIDENT_FACTOR = 11, 3, 6.0
SLOW_WEEK_STEP_TYPE, INCIDENT_STEP_TYPE = "prompt", "api-call"


@dataclass(frozen=True)
class Planted:
    """One regression the sandbox planted on a night."""

    kind: str  # "slow_week" or "incident"
    step_type: str  # the step type it hits
    factor: float
    metric: str  # what it moves: "duration" or "failure_rate"
    night_of: int  # 1 for the first night of a slow week (or an incident), 2 for the next…

    def describe(self) -> str:
        """Return the effect in words, e.g. "a slow week starts: prompt steps × 1.9 as long"."""
        if self.kind == "slow_week":
            when = "starts" if self.night_of == 1 else f"goes on (night {self.night_of})"
            return f"a slow week {when}: {self.step_type} steps take {self.factor:g}× as long"
        return f"an incident night: {self.step_type} steps fail {self.factor:g}× as often"


def planted_on(night: date) -> list[Planted]:
    """Return the regressions the sandbox plants on ``night`` (for every record type; each
    hits the flows that have a step of its type)."""
    day = night.toordinal()
    planted = []
    if day % SLOW_WEEK_PERIOD < SLOW_WEEK_DAYS:
        night_of = day % SLOW_WEEK_PERIOD + 1
        planted.append(
            Planted("slow_week", SLOW_WEEK_STEP_TYPE, SLOW_WEEK_FACTOR, "duration", night_of)
        )
    if day % INCIDENT_PERIOD == INCIDENT_PHASE:
        planted.append(Planted("incident", INCIDENT_STEP_TYPE, INCIDENT_FACTOR, "failure_rate", 1))
    return planted


def planted_calendar(
    flows: list[Flow], start: date, end: date, *, calm: bool = False
) -> list[dict]:
    """Return, in the API's JSON casing, every night from ``start`` to ``end`` (inclusive)
    with a planted regression: what it is and which flows' steps (and models) it hits."""
    nights = []
    day = start
    while day <= end and not calm:
        planted = []
        for effect in planted_on(day):
            hits = [
                {
                    "flowId": f.id,
                    "flowName": f.name,
                    "recordType": f.intended_record_type,
                    "steps": [s.name for s in f.steps if s.type == effect.step_type],
                    "models": sorted(
                        {s.model for s in f.steps if s.type == effect.step_type and s.model}
                    ),
                }
                for f in flows
                if any(s.type == effect.step_type for s in f.steps)
            ]
            planted.append(
                {
                    "kind": effect.kind,
                    "stepType": effect.step_type,
                    "metric": effect.metric,
                    "factor": effect.factor,
                    "nightOf": effect.night_of,
                    "description": effect.describe(),
                    "hits": hits,
                }
            )
        if planted:
            nights.append({"night": day.isoformat(), "planted": planted})
        day += timedelta(days=1)
    return nights


def night_profile(
    seed: int, record_type: str, night: datetime, *, calm: bool = False
) -> NightProfile:
    """Return the deterministic conditions of ``night`` for ``record_type``: night-to-night
    noise, and the planted regressions unless ``calm``."""
    rng = random.Random(f"night:{seed}:{record_type}:{night.date().isoformat()}")
    duration = {t: math.exp(rng.gauss(0, 0.08)) for t in DURATIONS}
    failure = {t: math.exp(rng.gauss(0, 0.3)) for t in FAILURE_RATES}
    for effect in [] if calm else planted_on(night.date()):
        factors = duration if effect.metric == "duration" else failure
        factors[effect.step_type] *= effect.factor
    return NightProfile(duration_factor=duration, failure_factor=failure)


@dataclass
class RecordOutcome:
    """What executing one flow over one record produced."""

    record: Record
    execution_id: str
    session_id: str
    success: bool
    error: str | None
    started_at: datetime
    completed_at: datetime
    steps: list[dict]  # StepResult rows in the API's JSON shape

    @property
    def execution_time(self) -> float:
        """Seconds from the first step's start to the last step's end."""
        return (self.completed_at - self.started_at).total_seconds()

    @property
    def prompts_executed(self) -> int:
        return sum(1 for s in self.steps if s["stepType"] == "prompt")

    @property
    def cost(self) -> Decimal:
        return sum((Decimal(s["estimatedCost"] or "0") for s in self.steps), Decimal(0))


def simulate_record(
    *,
    seed: int,
    flow: Flow,
    record: Record,
    batch_id: str,
    started_at: datetime,
    profile: NightProfile,
    sim_key: str | None = None,
    id_salt: str = "",
    failure_scale: float = 1.0,
) -> RecordOutcome:
    """Return the outcome of running ``flow`` over ``record`` from ``started_at``.

    Steps run in order; the first failing step ends the record's execution. ``sim_key``
    (default: the batch id) seeds what happens; ``id_salt`` goes into every id generated.
    """
    rng = random.Random(f"exec:{seed}:{sim_key or batch_id}:{record.id}")
    execution_id = type_id("exec", rng, id_salt)
    session_id = type_id("sess", rng, id_salt)
    clock = started_at + timedelta(milliseconds=rng.uniform(5, 40))
    rows: list[dict] = []
    error: str | None = None
    type_factor = TYPE_FAILURE_FACTOR.get(record.type, 1.0)
    for step in flow.steps:
        median, sigma = DURATIONS[step.type]
        duration = rng.lognormvariate(math.log(median), sigma)
        duration *= profile.duration_factor.get(step.type, 1.0)
        retries = 0
        while rng.random() < 0.06 and retries < 3:
            retries += 1
            duration += rng.lognormvariate(math.log(median), sigma)
        p_fail = FAILURE_RATES[step.type] * type_factor * profile.failure_factor[step.type]
        failed = rng.random() < min(0.95, p_fail * failure_scale)
        if failed:
            error = _error_message(rng, step, record)
        step_start = clock
        clock = step_start + timedelta(milliseconds=duration)
        rows.append(
            _step_row(
                rng,
                flow,
                step,
                record,
                batch_id,
                execution_id,
                session_id,
                step_start,
                clock,
                retries,
                error,
                id_salt,
            )
        )
        clock += timedelta(milliseconds=rng.uniform(1, 8))
        if failed:
            break
    return RecordOutcome(
        record=record,
        execution_id=execution_id,
        session_id=session_id,
        success=error is None,
        error=error,
        started_at=started_at,
        completed_at=clock,
        steps=rows,
    )


def _error_message(rng: random.Random, step: Step, record: Record) -> str:
    template = rng.choice(ERRORS[step.type])
    return template.format(
        n=rng.randint(2, 5),
        pos=rng.randint(10, 4000),
        tokens=rng.randint(128_001, 190_000),
        rid=record.id,
        ms=rng.choice([5000, 10000, 30000]),
        field=rng.choice(["score", "company", "email"]),
    )


def _step_row(
    rng: random.Random,
    flow: Flow,
    step: Step,
    record: Record,
    batch_id: str,
    execution_id: str,
    session_id: str,
    started: datetime,
    completed: datetime,
    retries: int,
    error: str | None,
    id_salt: str = "",
) -> dict:
    model = prompt_tokens = completion_tokens = total_tokens = cost = None
    if step.type == "prompt" and step.model:
        model = step.model
        prompt_tokens = int(rng.lognormvariate(math.log(700), 0.4))
        completion_tokens = 0 if error else int(rng.lognormvariate(math.log(220), 0.5))
        total_tokens = prompt_tokens + completion_tokens
        price_in, price_out = MODEL_PRICES[model]
        exact = (prompt_tokens * price_in + completion_tokens * price_out) / Decimal(1_000_000)
        cost = str(exact.quantize(Decimal("0.000001")))
    duration_ms = int((completed - started).total_seconds() * 1000)
    return {
        "id": type_id("stepres", rng, id_salt),
        "userId": SANDBOX_USER,
        "organizationId": SANDBOX_ORG,
        "batchExecutionId": batch_id,
        "executionSessionId": session_id,
        "executionId": execution_id,
        "flowId": flow.id,
        "flowVersionId": flow.version_id,
        "recordId": record.id,
        "recordName": record.name,
        "stepId": step.id,
        "stepName": step.name,
        "stepType": step.type,
        "order": step.order,
        "status": "failed" if error else "completed",
        "startedAt": iso(started),
        "completedAt": iso(completed),
        "createdAt": iso(completed),
        "durationMs": duration_ms,
        "outputPreview": None if error else '{"ok":true}',
        "recordMetadata": None,
        "stepConfig": None,
        "inputVariables": None,
        "resolvedPrompt": f"{step.name} for {record.name}" if model else None,
        "modelUsed": model,
        "promptTokens": prompt_tokens,
        "completionTokens": completion_tokens,
        "totalTokens": total_tokens,
        "estimatedCost": cost,
        "errorMessage": error,
        "retryCount": retries,
    }
