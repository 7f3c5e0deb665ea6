"""The sandbox's seeded world: flows with their steps, and records of several types.

Everything is derived from one seed, so two sandboxes started with the same seed serve the same
ids and names, and tests can rely on the sizes below.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"

#: Record types and how many records each has: one that runs immediately (≤ 10) and three
#: deferred ones of very different sizes.
RECORD_TYPE_SIZES: dict[str, int] = {"vip_account": 6, "customer": 40, "ticket": 250, "lead": 1200}

#: (flow name, record type it is meant for, steps as (type, name, model or None)).
FLOW_SPECS: list[tuple[str, str, list[tuple[str, str, str | None]]]] = [
    (
        "Churn Risk Score",
        "vip_account",
        [("prompt", "Assess churn risk", "claude-sonnet-4-5"), ("transform-data", "Score", None)],
    ),
    (
        "Customer Health Summary",
        "customer",
        [
            ("api-call", "Fetch CRM account", None),
            ("prompt", "Summarise health", "gpt-4o-mini"),
            ("transform-data", "Format summary", None),
        ],
    ),
    (
        "Ticket Triage",
        "ticket",
        [
            ("transform-data", "Extract fields", None),
            ("prompt", "Classify intent", "gpt-4o-mini"),
            ("prompt", "Draft reply", "claude-sonnet-4-5"),
            ("api-call", "Post to helpdesk", None),
        ],
    ),
    (
        "Lead Enrichment",
        "lead",
        [
            ("api-call", "Lookup company", None),
            ("api-call", "Fetch web profile", None),
            ("prompt", "Qualify lead", "gpt-4o"),
            ("transform-data", "Map to CRM fields", None),
            ("prompt", "Write outreach note", "claude-haiku-4-5"),
        ],
    ),
]

_REGIONS = ["emea", "amer", "apac"]
_PLANS = ["starter", "growth", "enterprise"]

#: The share of a type's records updated, created and deleted each day when the world changes
#: (`World.evolve_to` at rate 1): a CRM-like trickle, most records untouched from night to night.
DAILY_UPDATE_SHARE = 0.03
DAILY_CREATE_SHARE = 0.01
DAILY_DELETE_SHARE = 0.003


def _metadata(rng: random.Random, number: int, record_type: str) -> dict:
    return {
        "region": rng.choice(_REGIONS),
        "plan": rng.choice(_PLANS),
        "seats": rng.randint(1, 500),
        "email": f"contact{number}@{record_type}.example",
        "isActive": rng.random() > 0.1,
    }


def type_id(prefix: str, rng: random.Random, salt: str = "") -> str:
    """Return a TypeID-shaped identifier (``prefix_`` + 26 Crockford base32 chars).

    ``salt`` replaces the first characters after ``01``; the same number of draws is taken
    from ``rng`` either way, so salting an id never changes what is simulated after it.
    """
    bits = rng.getrandbits(120)  # one draw of 24 base32 characters: ids are the hot path
    drawn = "".join([CROCKFORD[(bits >> shift) & 31] for shift in range(0, 120, 5)])
    return prefix + "_01" + salt + drawn[len(salt) :]


@dataclass
class Step:
    id: str
    type: str
    name: str
    order: int
    model: str | None

    def to_api(self) -> dict:
        config: dict = {"outputVariable": self.id.replace("-", "_")}
        if self.type == "prompt":
            config.update(model=self.model, userPrompt=f"{self.name}: {{{{_record.metadata}}}}")
        elif self.type == "api-call":
            config.update(method="GET", url="https://api.crm.example/v2/{{_record.name}}")
        else:
            config.update(script="return { ...variables }")
        return {
            "id": self.id,
            "type": self.type,
            "name": self.name,
            "order": self.order,
            "enabled": True,
            "config": config,
        }


@dataclass
class Flow:
    id: str
    name: str
    steps: list[Step]
    created_at: datetime
    updated_at: datetime
    version_id: str
    intended_record_type: str | None = None
    last_run_at: datetime | None = None
    draft_versions: list[str] = field(default_factory=list)
    published_version_id: str | None = None


@dataclass
class Record:
    id: str
    type: str
    name: str
    metadata: dict
    created_at: datetime
    #: Moves when the record's type, name or metadata change (None: never changed).
    updated_at: datetime | None = None

    def to_api(self) -> dict:
        return {
            "id": self.id,
            "type": self.type,
            "name": self.name,
            "metadata": self.metadata,
            "messages": None,
            "userId": SANDBOX_USER,
            "organizationId": SANDBOX_ORG,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at or self.created_at),
            "metadataSchema": {"keys": sorted(self.metadata)},
            "metadataLabels": {k: k.replace("_", " ").title() for k in self.metadata},
        }


SANDBOX_USER = "user_sandbox"
SANDBOX_ORG = "org_sandbox"


def iso(ts: datetime | None) -> str | None:
    """Return an ISO-8601 UTC string with a ``Z`` suffix and millisecond precision."""
    if ts is None:
        return None
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


@dataclass
class World:
    flows: dict[str, Flow]
    records: list[Record]
    #: The last day whose changes `evolve_to` applied (None: the world is as seeded).
    evolved_to: date | None = None
    changed: bool = False

    def records_of(self, record_type: str) -> list[Record]:
        """Return the records of one type, in creation order."""
        return [r for r in self.records if r.type == record_type]

    def record(self, record_id: str) -> Record | None:
        """Return the record with ``record_id``, or None when there is none (or it was
        deleted)."""
        return next((r for r in self.records if r.id == record_id), None)

    def evolve_to(self, day: date, seed: int, rate: float) -> None:
        """Apply the world's changes of every day after the last one applied up to ``day``:
        records created, updated and deleted, drawn from ``seed`` and the day, so the same
        nights change the same records. ``rate`` scales how many (0: the world never
        changes). Until a day has changed it, the seeded world is the world of the earliest
        day asked for (a backfill moves the clock back to its first night); after that, a
        day before the last one applied changes nothing (time moved back)."""
        if self.evolved_to is None or (day < self.evolved_to and not self.changed):
            self.evolved_to = day
        if rate <= 0:
            return
        while self.evolved_to < day:
            self.evolved_to += timedelta(days=1)
            self.changed = True
            for record_type in sorted({r.type for r in self.records}):
                self._change(record_type, self.evolved_to, seed, rate)

    def _change(self, record_type: str, day: date, seed: int, rate: float) -> None:
        rng = random.Random(f"churn:{seed}:{record_type}:{day.isoformat()}")
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        existing = self.records_of(record_type)
        for record in existing:
            draw = rng.random()
            if draw < DAILY_DELETE_SHARE * rate:
                self.records.remove(record)
            elif draw < (DAILY_DELETE_SHARE + DAILY_UPDATE_SHARE) * rate:
                record.metadata = {**record.metadata, "seats": rng.randint(1, 500)}
                record.updated_at = midnight + timedelta(seconds=rng.uniform(0, 3600))
        created = sum(rng.random() < DAILY_CREATE_SHARE * rate for _ in existing)
        for _ in range(created):
            number = len(self.records_of(record_type)) + 1
            name = f"{record_type.replace('_', ' ').title()} {day:%Y%m%d}-{number:04d}"
            self.records.append(
                Record(
                    id=type_id("record", rng),
                    type=record_type,
                    name=name,
                    metadata=_metadata(rng, number, record_type),
                    created_at=midnight + timedelta(seconds=rng.uniform(0, 3600)),
                )
            )


def seed_world(seed: int, created: datetime, sizes: dict[str, int] | None = None) -> World:
    """Return the deterministic world for ``seed`` (flows and records created at ``created``).

    ``sizes`` replaces the record types and their sizes; flows are paired with the types in order.
    """
    sizes = sizes or RECORD_TYPE_SIZES
    types = list(sizes)
    rng = random.Random(f"world:{seed}")
    flows: dict[str, Flow] = {}
    for index, (name, default_type, step_specs) in enumerate(FLOW_SPECS):
        record_type = types[index] if index < len(types) else default_type
        flow_id = type_id("flow", rng)
        steps = [
            Step(id=f"step_{i + 1:02d}_{t.split('-')[0]}", type=t, name=n, order=i + 1, model=mdl)
            for i, (t, n, mdl) in enumerate(step_specs)
        ]
        version = type_id("flowver", rng)
        flows[flow_id] = Flow(
            id=flow_id,
            name=name,
            steps=steps,
            created_at=created,
            updated_at=created,
            version_id=version,
            intended_record_type=record_type,
            draft_versions=[version],
            published_version_id=version,
        )
    records: list[Record] = []
    for record_type, size in sizes.items():
        for i in range(size):
            records.append(
                Record(
                    id=type_id("record", rng),
                    type=record_type,
                    name=f"{record_type.replace('_', ' ').title()} {i + 1:04d}",
                    metadata=_metadata(rng, i + 1, record_type),
                    created_at=created - timedelta(days=rng.randint(1, 400)),
                )
            )
    return World(flows=flows, records=records)
