"""The run ledger on shared storage: which batch each job's night became, claimed by exactly
one worker among many.

Each attempt at a job's night is a numbered object created with put-if-absent::

    _ledger/<flow_id>/<record_type>/<run_key>/000001.intent.json     the start is claimed
    _ledger/<flow_id>/<record_type>/<run_key>/000001.batch.json      ... and became this batch
    _ledger/<flow_id>/<record_type>/<run_key>/000001.forgotten.json  ... or was dropped

Two workers that both find no attempt both try to create ``000001.intent.json``; the store lets
one of them, and the other learns it lost before it has asked Runtype for anything. A batch is
named once per attempt (a second, different id is refused), and a new attempt (a start
abandoned before its batch was known, or ``force``) is the next number, raced the same way.
Nothing is ever overwritten, so no reader sees a torn ledger.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from ..connection import WarehouseError
from ..store import BatchIdentityError, Intent, JobKey
from .objects import ObjectStore

ROOT = "_ledger"


class StartTakenError(WarehouseError):
    """Another worker claimed this job's start for the run key first: it starts the batch."""


@dataclass(frozen=True)
class Attempt:
    """The latest attempt at a job's night, as the ledger holds it."""

    number: int
    intent: Intent
    owner: str
    forgotten: bool
    job_name: str | None = None


def _stamp(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _part(value: str) -> str:
    return quote(value, safe="")


class ObjectLedger:
    """The run ledger as put-if-absent objects in an `ObjectStore`."""

    def __init__(self, store: ObjectStore, owner: str) -> None:
        self.store = store
        self.owner = owner

    def _prefix(self, key: JobKey) -> str:
        # A part of the night is a sibling folder, ``<run_key>@<part>/`` (quoting leaves no
        # other ``@``), never inside the whole-type run's folder, whose listing would hold it.
        night = _part(key.run_key) + (f"@{_part(key.part)}" if key.part else "")
        return f"{ROOT}/{_part(key.flow_id)}/{_part(key.record_type)}/{night}/"

    def _read_json(self, key: str) -> dict[str, Any] | None:
        body = self.store.read(key)
        return None if body is None else dict(json.loads(body))

    def latest(self, key: JobKey) -> Attempt | None:
        """Return the job-night's latest attempt, or None if it never started."""
        prefix = self._prefix(key)
        keys = self.store.keys(prefix)
        numbers = [int(k[len(prefix) :].split(".")[0]) for k in keys if k.endswith(".intent.json")]
        if not numbers:
            return None
        number = max(numbers)
        base = f"{prefix}{number:06d}"
        batch = self._read_json(f"{base}.batch.json") if f"{base}.batch.json" in keys else None
        intent, body = self._intent(base, batch["batch_id"] if batch else None)
        forgotten = f"{base}.forgotten.json" in keys
        return Attempt(number, intent, str(body.get("owner", "")), forgotten, body.get("job_name"))

    def _intent(self, base: str, batch_id: str | None) -> tuple[Intent, dict[str, Any]]:
        """Return the intent written at ``base`` (an attempt's key without its suffix) and the
        object's fields."""
        flow_id, record_type, night = base.split("/")[1:4]
        run_key, _, part = night.partition("@")
        body = self._read_json(f"{base}.intent.json") or {}
        intent = Intent(
            unquote(flow_id),
            unquote(record_type),
            unquote(run_key),
            _time(body.get("requested_at")) or datetime.now(UTC),
            batch_id,
            body.get("prefect_flow_run_id"),
            _time(body.get("api_requested_at")),
            body.get("expected_records"),
            unquote(part),
        )
        return intent, body

    def claim_start(
        self,
        key: JobKey,
        *,
        after: int,
        requested_at: datetime,
        prefect_flow_run_id: str | None,
        job_name: str | None,
        api_requested_at: datetime | None = None,
        expected_records: int | None = None,
    ) -> None:
        """Claim attempt ``after + 1`` at the job's night for this worker.

        ``after`` is the latest attempt the caller saw (0 for none) when it decided to start:
        the claim is a compare-and-swap on it. Raises `StartTakenError` when that attempt
        exists already: another worker claimed it (it starts the batch; this one must not).
        """
        number = after + 1
        body = {
            "owner": self.owner,
            "requested_at": _stamp(requested_at),
            "prefect_flow_run_id": prefect_flow_run_id,
            "job_name": job_name,
            "api_requested_at": _stamp(api_requested_at),
            "expected_records": expected_records,
        }
        name = f"{self._prefix(key)}{number:06d}.intent.json"
        if not self.store.create(name, json.dumps(body).encode()):
            raise StartTakenError(
                f"{key}: another worker claimed the start (attempt {number}) first"
            )

    def name_batch(self, key: JobKey, batch_id: str) -> None:
        """Record that the job's latest attempt became ``batch_id``.

        Idempotent for the same id; raises `BatchIdentityError` when the attempt already
        names another batch, and WarehouseError when there is no attempt to name.
        """
        latest = self.latest(key)
        if latest is None:
            raise WarehouseError(f"{key} has no start to name")
        name = f"{self._prefix(key)}{latest.number:06d}.batch.json"
        if self.store.create(name, json.dumps({"batch_id": batch_id}).encode()):
            return
        named = (self._read_json(name) or {}).get("batch_id")
        if named != batch_id:
            raise BatchIdentityError(
                f"{key} already became batch {named!r}; refusing to name {batch_id!r} as well."
                " Nothing was overwritten."
            )

    def forget(self, key: JobKey) -> None:
        """Drop the job-night's latest attempt (the next start is a new attempt)."""
        latest = self.latest(key)
        if latest is not None and not latest.forgotten:
            base = f"{self._prefix(key)}{latest.number:06d}"
            self.store.create(f"{base}.forgotten.json", b"{}")

    def _named(self) -> list[tuple[str, str]]:
        """Return (attempt key without suffix, batch id) of every attempt that named a batch."""
        suffix = ".batch.json"
        return [
            (key[: -len(suffix)], str((self._read_json(key) or {}).get("batch_id")))
            for key in self.store.keys(f"{ROOT}/")
            if key.endswith(suffix)
        ]

    def batch_ids(self) -> set[str]:
        """Return every batch id any attempt was ever named with."""
        return {batch_id for _, batch_id in self._named()}

    def intent_of(self, key: JobKey, batch_id: str) -> Intent | None:
        """Return the intent of the job-night's attempt that became ``batch_id`` (reading only
        that job-night's objects), or None."""
        prefix = self._prefix(key)
        suffix = ".batch.json"
        for name in reversed(self.store.keys(prefix)):
            if name.endswith(suffix) and (self._read_json(name) or {}).get("batch_id") == batch_id:
                return self._intent(name[: -len(suffix)], batch_id)[0]
        return None
