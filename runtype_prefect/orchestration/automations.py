"""The Prefect automations that tell a person when a night breaks (``setup --notify``).

Each rule is a Prefect automation whose action sends the message through a notification block
(a generic webhook, Slack, e-mail, anything Prefect's ``notify`` blocks reach):

- **quality**, **job**, **quota**: reactive triggers on the events of
  `runtype_prefect.orchestration.alerts`, one message per job (or night), night and kind: the
  trigger counts per resource and ``runtype.night`` label, fires on the first event and lets no
  other through for a day (`DEDUPE_WINDOW`), so a re-run of the night stays quiet;
- **late**: a proactive trigger: a nightly run that started (or was due, ``Late``) and reached
  no final state within the deadline;
- **missed**: a proactive trigger: a scheduled nightly marked ``Late`` that did not start
  within the grace period (no worker, a paused pool);
- **crashed**: a nightly run that crashed, the one end the night cannot report itself;
- with ``digest``, the first three are replaced by one message per night, the night's digest.

Setting up is idempotent: the automations are found by name and tag, updated in place, and
ours that the options no longer ask for are deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import ObjectNotFound

from .alerts import (
    BODY,
    CRASHED_BODY,
    CRASHED_SUBJECT,
    DIGEST_EVENT,
    JOB_EVENT,
    LATE_BODY,
    LATE_SUBJECT,
    MISSED_BODY,
    MISSED_SUBJECT,
    QUALITY_EVENT,
    QUOTA_EVENT,
    SUBJECT,
)

#: The tag on every automation this module manages.
TAG = "runtype-alerts"
#: One message per job (or night), night and kind within this window.
DEDUPE_WINDOW = timedelta(hours=24)
NIGHTLY_FLOW = "runtype-nightly"
DEFAULT_LATE_AFTER = timedelta(hours=4)
DEFAULT_MISSED_AFTER = timedelta(minutes=30)

_FINAL_STATES = {
    "prefect.flow-run.Completed*",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Crashed",
    "prefect.flow-run.Cancelled",
}
#: Due (Late) or started: the late night's deadline runs from the first of these.
_STARTED = {"prefect.flow-run.Late", "prefect.flow-run.Pending", "prefect.flow-run.Running"}
_NIGHTLY_RUNS = {"prefect.resource.role": "flow", "prefect.resource.name": NIGHTLY_FLOW}


class NotificationBlockError(ValueError):
    """The notification block named does not exist or cannot send messages."""


@dataclass(frozen=True)
class AlertRule:
    """One automation: its name, what it is for, its trigger and its message."""

    name: str
    description: str
    trigger: EventTrigger
    subject: str = SUBJECT
    body: str = BODY

    def automation(self, block_document_id: UUID) -> AutomationCore:
        """Return the automation that sends this rule's message through the block."""
        return AutomationCore(
            name=self.name,
            description=self.description,
            tags=[TAG],
            trigger=self.trigger,
            actions=[
                SendNotification(
                    block_document_id=block_document_id, subject=self.subject, body=self.body
                )
            ],
        )


def _per_night(event: str, *resources: str) -> EventTrigger:
    """A reactive trigger on ``event`` that fires once per resource and night."""
    return EventTrigger(
        expect={event},
        match={"prefect.resource.id": list(resources)},
        for_each={"prefect.resource.id", "runtype.night"},
        posture=Posture.Reactive,
        threshold=1,
        within=DEDUPE_WINDOW,
    )


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:g} minutes"


def _nightly_runs(
    expect: set[str], *, after: set[str] | None = None, within: timedelta = DEDUPE_WINDOW
) -> EventTrigger:
    """A trigger on the nightly's flow runs, once per flow run: with ``after``, proactive (a
    run with an ``after`` state and none of ``expect`` within ``within``); else reactive (a
    run reaching ``expect``)."""
    return EventTrigger(
        after=after or set(),
        expect=expect,
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related=_NIGHTLY_RUNS,
        for_each={"prefect.resource.id"},
        posture=Posture.Proactive if after else Posture.Reactive,
        threshold=1,
        within=within,
    )


def alert_rules(
    *,
    late_after: timedelta = DEFAULT_LATE_AFTER,
    missed_after: timedelta = DEFAULT_MISSED_AFTER,
    digest: bool = False,
) -> list[AlertRule]:
    """Return the rules to set up: late, missed and crashed nights always; per-job alerts
    (quality, job outcome, quota) or, with ``digest``, one digest per night."""
    rules = [
        AlertRule(
            "runtype · late night",
            f"A nightly run not finished {_minutes(late_after)} after it was due or started.",
            _nightly_runs(_FINAL_STATES, after=_STARTED, within=late_after),
            LATE_SUBJECT,
            LATE_BODY,
        ),
        AlertRule(
            "runtype · missed night",
            f"A scheduled nightly run marked Late and not started {_minutes(missed_after)} later.",
            _nightly_runs(
                {"prefect.flow-run.Pending", "prefect.flow-run.Running", *_FINAL_STATES},
                after={"prefect.flow-run.Late"},
                within=missed_after,
            ),
            MISSED_SUBJECT,
            MISSED_BODY,
        ),
        AlertRule(
            "runtype · crashed night",
            "A nightly run crashed: its process died before it could report anything.",
            _nightly_runs({"prefect.flow-run.Crashed"}),
            CRASHED_SUBJECT,
            CRASHED_BODY,
        ),
    ]
    if digest:
        rules.append(
            AlertRule(
                "runtype · night digest",
                "Every night's jobs, failures and degraded metrics in one message.",
                _per_night(DIGEST_EVENT, "runtype.night.*"),
            )
        )
        return rules
    rules += [
        AlertRule(
            "runtype · quality degraded",
            "The quality gate found a job's success rate or p95 degraded.",
            _per_night(QUALITY_EVENT, "runtype.job.*"),
        ),
        AlertRule(
            "runtype · job failed",
            "A job ended Failed, BelowFloor, Incomplete, TimedOut or OverBudget, or the"
            " preflight refused the night.",
            _per_night(JOB_EVENT, "runtype.job.*", "runtype.night.*"),
        ),
        AlertRule(
            "runtype · quota",
            "The preflight found the Runtype quota nearly used up, or refused.",
            _per_night(QUOTA_EVENT, "runtype.night.*"),
        ),
    ]
    return rules


#: The webhook block ``setup --webhook`` saves.
WEBHOOK_BLOCK = "runtype-alerts"


def save_webhook_block(url: str, name: str = WEBHOOK_BLOCK) -> str:
    """Save (or overwrite) a generic webhook notification block ``name`` that POSTs each
    message as JSON ``{"subject", "body"}`` to ``url``; return its reference for
    `notification_block_id` (``custom-webhook/<name>``)."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    block = CustomWebhookNotificationBlock(
        name=name,
        url=url,
        method="POST",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
    )
    block.save(name, overwrite=True)
    return f"custom-webhook/{name}"


def notification_block_id(ref: str) -> UUID:
    """Return the id of the notification block ``ref`` names: ``<block type slug>/<name>``
    (as ``prefect block ls`` shows it) or a name alone when only one block has it.

    Raises `NotificationBlockError` when no such block exists, the name is ambiguous, or
    the block cannot send messages (its type has no ``notify``)."""
    slug, _, name = ref.rpartition("/")
    with get_client(sync_client=True) as client:
        if slug:
            try:
                documents = [client.read_block_document_by_name(name, slug)]
            except ObjectNotFound:
                documents = []
        else:
            documents = [d for d in client.read_block_documents() if d.name == name]
    if not documents:
        raise NotificationBlockError(
            f"no notification block {ref!r} on this Prefect server: create one (e.g. in the"
            " UI under Blocks: Custom Webhook, Slack Webhook…) and name it as"
            " <block type>/<name>"
        )
    if len(documents) > 1:
        kinds = ", ".join(f"{d.block_type.slug}/{d.name}" for d in documents if d.block_type)
        raise NotificationBlockError(f"{ref!r} names several blocks: {kinds}; say which")
    document = documents[0]
    capabilities = document.block_schema.capabilities if document.block_schema else []
    if "notify" not in capabilities:
        kind = document.block_type.slug if document.block_type else "unknown"
        raise NotificationBlockError(
            f"block {ref!r} ({kind}) cannot send notifications; name a notification block"
        )
    return document.id


def ensure_automations(block_document_id: UUID, rules: list[AlertRule]) -> list[str]:
    """Create or update one automation per rule (found by name among those tagged `TAG`),
    delete the tagged ones no rule names; return one line per automation and what was done.
    Raises what the Prefect client raises."""
    lines = []
    with get_client(sync_client=True) as client:
        ours = {a.name: a for a in client.read_automations() if TAG in a.tags}
        for rule in rules:
            automation = rule.automation(block_document_id)
            existing = ours.pop(rule.name, None)
            if existing is None:
                client.create_automation(automation)
                lines.append(f"automation {rule.name!r}: created")
            else:
                client.update_automation(existing.id, automation)
                lines.append(f"automation {rule.name!r}: updated")
        for name, automation in ours.items():
            client.delete_automation(automation.id)
            lines.append(f"automation {name!r}: deleted (no longer asked for)")
    return lines
