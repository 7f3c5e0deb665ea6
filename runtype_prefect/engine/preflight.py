"""Checks that run before anything is spent: a Runtype batch costs money the moment it starts.

Every check is a plain function over the client and the warehouse file (no Prefect), so the CLI
runs the quick ones before Prefect even starts and the flows run them all as one task:

- the warehouse: readable (validated read-only, never written to when it is not), a schema
  this version knows (newer: refused; older: migrated when it opens), writable;
- the endpoint and the key: one authenticated GET per flow within a short deadline;
- every job: its flow exists, its record type has records (else: the types that do exist),
  and how many;
- the quota: tonight's records against the plan's remaining executions (refused when they do
  not fit, a warning from 80 % used, the spec's warning threshold);
- the budget: a cost forecast per job from its recent nights, and optional budgets per job and
  per night; a job over budget is skipped (`over_budget`), the rest run.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import httpx

from ..client import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RetryPolicy,
    RuntypeClient,
    RuntypeConnectionError,
    RuntypeError,
    UsagePeriod,
)
from ..warehouse import (
    Selection,
    Warehouse,
    WarehouseError,
    WarehouseFolderMissingError,
    default_db_path,
    is_shared_location,
    location_key,
    validate_file,
)
from ..warehouse.migrate import latest_version
from ..warehouse.shared import check_location
from .errors import StopError
from .jobs import Job, JobRun
from .resources import process_warehouse, waiting_notice, warehouse_wait_seconds
from .selection import describe, night_selection
from .settings import JobSettings, Mode

#: The preflight's bounds on one call: 12 s in all, at most 3 s of it spent waiting between
#: tries (so a closed port fails within ~3 s and a silent one within 12 s), while 429s and
#: 5xx blips are still ridden out (see `preflight_retry`).
PREFLIGHT_CALL_SECONDS = 12.0
PREFLIGHT_WAIT_SECONDS = 3.0
#: The preflight's timeouts: a closed port fails at once, a silent one within the budget.
PREFLIGHT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
#: Share of a quota used (tonight included) from which the preflight warns.
QUOTA_WARNING_SHARE = 0.8
#: Recent nights a job's cost forecast is drawn from.
FORECAST_NIGHTS = 7


class PreflightError(StopError):
    """A check before the run failed; the message is one line naming the problem and fix."""


class Level(StrEnum):
    """How much a finding matters."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    """One check's verdict, in one line."""

    level: Level
    check: str
    message: str


@dataclass(frozen=True)
class Forecast:
    """What a job is likely to cost tonight, from the cost per record of its recent nights."""

    records: int
    cost_per_record: float
    low_per_record: float
    high_per_record: float
    nights: int

    @property
    def usd(self) -> float:
        """The forecast: the median cost per record of recent nights × tonight's records."""
        return self.cost_per_record * self.records

    @property
    def low_usd(self) -> float:
        """Tonight at the cheapest recent night's cost per record."""
        return self.low_per_record * self.records

    @property
    def high_usd(self) -> float:
        """Tonight at the dearest recent night's cost per record."""
        return self.high_per_record * self.records

    def describe(self) -> str:
        """Return e.g. ``$7.21 ($6.90–$7.52 over 7 nights)``."""
        nights = f"{self.nights} night{'s' if self.nights != 1 else ''}"
        return f"${self.usd:.2f} (${self.low_usd:.2f}–${self.high_usd:.2f} over {nights})"


@dataclass
class JobPlan:
    """What the preflight decided for one job."""

    job: Job
    records: int | None = None
    forecast: Forecast | None = None
    budget_usd: float | None = None
    over_budget: str = ""  # why the job is skipped; "" when it runs
    #: An incremental job: the records chosen for the night (kept: the job runs them).
    selection: Selection | None = None

    @property
    def runs(self) -> bool:
        """True when the job is to be started."""
        return not self.over_budget


@dataclass
class PreflightReport:
    """Every finding of a night's preflight and the plan for each job."""

    run_key: str
    findings: list[Finding] = field(default_factory=list)
    plans: list[JobPlan] = field(default_factory=list)
    #: The name of every job's flow, read by the access check (flow id → name).
    flow_names: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """True when a check failed: nothing may be started."""
        return any(f.level is Level.FAIL for f in self.findings)

    def problems(self) -> list[str]:
        """Return one line per failed check."""
        return [f"{f.check}: {f.message}" for f in self.findings if f.level is Level.FAIL]

    def add(self, level: Level, check: str, message: str) -> None:
        """Record a finding."""
        self.findings.append(Finding(level, check, message))

    def markdown(self) -> str:
        """Return the findings and the plan as the preflight artifact's markdown."""
        # Words, not emoji: they read the same in every font, offline too.
        mark = {Level.OK: "ok", Level.WARN: "**warning**", Level.FAIL: "**FAILED**"}
        verdict = "failed: nothing was started" if self.failed else "passed"
        lines = [f"# Preflight `{self.run_key}`: {verdict}", ""]
        lines += [f"- {mark[f.level]} · {f.check}: {f.message}" for f in self.findings]
        if self.plans:
            lines += [
                "",
                "| job | records | forecast | budget | decision |",
                "|---|---|---|---|---|",
            ]
            for p in self.plans:
                records = "" if p.records is None else f"{p.records:,}"
                if p.selection is not None:
                    records += f" of {p.selection.type_records:,} (incremental)"
                lines.append(
                    f"| {p.job.label} | {records} | "
                    f"{p.forecast.describe() if p.forecast else 'no forecast'} | "
                    f"{'' if p.budget_usd is None else f'${p.budget_usd:.2f}'} | "
                    f"{'skipped: over budget' if p.over_budget else 'run'} |"
                )
        return "\n".join(lines)


# --- the checks --------------------------------------------------------------------------------


def preflight_retry(policy: RetryPolicy | None = None) -> RetryPolicy:
    """Return ``policy`` (its attempts and delays; default: the client's) within the
    preflight's time bounds."""
    policy = policy or RetryPolicy()
    return dataclasses.replace(
        policy,
        max_total_seconds=min(policy.max_total_seconds, PREFLIGHT_WAIT_SECONDS),
        max_call_seconds=min(policy.max_call_seconds, PREFLIGHT_CALL_SECONDS),
    )


def check_warehouse(report: PreflightReport, db_path: str | os.PathLike[str] | None) -> bool:
    """Check that the warehouse file is readable, of a known schema, and writable (or that a
    shared location answers); return True when it is usable. Opens an existing file read-only
    only: a bad file is never written to."""
    location = location_key(db_path)
    if is_shared_location(location):
        try:
            check_location(location)
        except (WarehouseError, ValueError) as exc:
            report.add(Level.FAIL, "warehouse", str(exc))
            return False
        report.add(Level.OK, "warehouse", f"{location} (shared) answers")
        return True
    path = default_db_path(db_path)
    if not check_warehouse_path(report, db_path):
        return False
    limit = warehouse_wait_seconds()
    try:  # another run writing the file: wait for its turn, as the jobs do
        version = validate_file(path, lock_timeout=limit, on_wait=waiting_notice(str(path), limit))
    except WarehouseError as exc:
        report.add(Level.FAIL, "warehouse", str(exc))
        return False
    state = "new" if not path.exists() else f"schema {version or 0} of {latest_version()}"
    report.add(Level.OK, "warehouse", f"{path} ({state}), writable")
    return True


def check_warehouse_path(report: PreflightReport, db_path: str | os.PathLike[str] | None) -> bool:
    """Check, without opening anything, that a warehouse file's folder exists and that the
    file can be written there; return True when it can (a shared location passes: it is
    checked by reaching it). Quick enough for the command line to run before Prefect starts."""
    location = location_key(db_path)
    if is_shared_location(location):
        return True
    path = default_db_path(db_path)
    if not path.parent.is_dir():
        report.add(Level.FAIL, "warehouse", str(WarehouseFolderMissingError(path)))
        return False
    if path.exists() and not os.access(path, os.W_OK):
        report.add(Level.FAIL, "warehouse", f"{path} is not writable by this user")
        return False
    if not os.access(path.parent, os.W_OK):
        report.add(
            Level.FAIL,
            "warehouse",
            f"{path.parent} is not writable by this user: the warehouse cannot be written there",
        )
        return False
    return True


def check_access(client: RuntypeClient, jobs: Iterable[Job]) -> dict[str, str]:
    """Read every job's flow once; return {flow id: flow name}.

    Raises `PreflightError` for a rejected key, a key without access, an unknown flow or an
    endpoint that cannot be reached (or does not answer within the client's call budget).
    """
    names: dict[str, str] = {}
    where = client.base_url.rstrip("/")
    for flow_id in dict.fromkeys(job.flow_id for job in jobs):
        try:
            names[flow_id] = client.get_flow(flow_id).name
        except AuthenticationError as exc:
            raise PreflightError(
                f"the Runtype API at {where} rejected the API key ({exc.message}):"
                " check RUNTYPE_API_KEY or the credentials block"
            ) from exc
        except PermissionDeniedError as exc:
            raise PreflightError(
                f"the API key may not read flow {flow_id!r} ({exc.message}): give it the"
                " FLOWS:READ and FLOWS:EXECUTE scopes"
            ) from exc
        except NotFoundError as exc:
            raise PreflightError(
                f"flow {flow_id!r} does not exist at {where}: check the flow id"
            ) from exc
        except RuntypeConnectionError as exc:
            raise PreflightError(
                f"cannot reach the Runtype API at {where} ({exc}): check RUNTYPE_BASE_URL"
                " and that the service (or `runtype-prefect sandbox`) is up"
            ) from exc
    return names


def check_record_types(client: RuntypeClient, report: PreflightReport) -> None:
    """Count each job's records; a record type without records fails, naming those that exist."""
    counts: dict[str, int] = {}
    for plan in report.plans:
        if plan.job.record_type not in counts:
            counts[plan.job.record_type] = client.count_records(plan.job.record_type).count
        plan.records = counts[plan.job.record_type]
    empty = sorted(t for t, n in counts.items() if n == 0)
    if empty:
        existing = ", ".join(client.list_record_types()) or "none"
        for record_type in empty:
            report.add(
                Level.FAIL,
                "record type",
                f"{record_type!r} has no records (misspelt?); record types that exist: {existing}",
            )
    for record_type, n in counts.items():
        if n:
            report.add(Level.OK, "record type", f"{record_type!r}: {n:,} records")


def check_quota(client: RuntypeClient, report: PreflightReport) -> None:
    """Compare tonight's executions (one per record) with what the plan has left."""
    tonight = sum(p.records or 0 for p in report.plans if p.runs)
    usage = client.get_usage_limits()
    for name, period in (("daily", usage.daily), ("monthly", usage.monthly)):
        _judge_quota(report, name, period, tonight)


def _judge_quota(report: PreflightReport, name: str, period: UsagePeriod, tonight: int) -> None:
    limit = period.execution_limit
    if period.is_unlimited or limit is None:
        report.add(Level.OK, "quota", f"{name}: unlimited; tonight needs {tonight:,} executions")
        return
    remaining = period.remaining if period.remaining is not None else limit - period.executions_used
    resets = f" (resets {period.resets_at:%Y-%m-%d %H:%M} UTC)" if period.resets_at else ""
    if tonight > remaining:
        report.add(
            Level.FAIL,
            "quota",
            f"tonight needs {tonight:,} executions but the {name} quota has {remaining:,} of"
            f" {limit:,} left{resets}",
        )
    elif period.executions_used + tonight >= QUOTA_WARNING_SHARE * limit:
        share = (period.executions_used + tonight) / limit
        report.add(
            Level.WARN,
            "quota",
            f"tonight brings the {name} quota to {share:.0%} used"
            f" ({period.executions_used + tonight:,} of {limit:,}){resets}",
        )
    else:
        report.add(
            Level.OK, "quota", f"{name}: {remaining:,} of {limit:,} left; tonight needs {tonight:,}"
        )


def forecast_job(warehouse: Warehouse, job: Job, run_key: str, records: int) -> Forecast | None:
    """Return the job's cost forecast from its last `FORECAST_NIGHTS` landed nights before
    ``run_key`` (the API's batch cost per record of each night's current batch, see the
    ``batch_nights`` model), or None without history."""
    rows = warehouse.query(
        """
        SELECT b.total_cost_usd / b.total_records
        FROM batches b JOIN batch_nights n USING (batch_id)
        WHERE b.flow_id = ? AND b.record_type = ? AND b.run_key <> ? AND n.is_current
          AND b.landed_at IS NOT NULL AND b.total_records > 0 AND b.total_cost_usd IS NOT NULL
        ORDER BY b.run_key DESC LIMIT ?
        """,
        [job.flow_id, job.record_type, run_key, FORECAST_NIGHTS],
    )
    per_record = [float(r[0]) for r in rows]
    if not per_record:
        return None
    return Forecast(
        records=records,
        cost_per_record=statistics.median(per_record),
        low_per_record=min(per_record),
        high_per_record=max(per_record),
        nights=len(per_record),
    )


def plan_budgets(
    report: PreflightReport,
    warehouse: Warehouse | None,
    *,
    max_cost_usd_per_job: float | None,
    max_cost_usd_per_night: float | None,
) -> None:
    """Forecast every job and skip those whose forecast exceeds the job budget, or would take
    the night past its budget (jobs are admitted in order)."""
    night_total = 0.0
    for plan in report.plans:
        plan.budget_usd = max_cost_usd_per_job
        if warehouse is not None and plan.records:
            plan.forecast = forecast_job(warehouse, plan.job, report.run_key, plan.records)
        if plan.forecast is None:
            if max_cost_usd_per_job is not None or max_cost_usd_per_night is not None:
                report.add(
                    Level.WARN, "budget", f"{plan.job.label}: no forecast (no landed history)"
                )
            continue
        cost = plan.forecast.usd
        if max_cost_usd_per_job is not None and cost > max_cost_usd_per_job:
            plan.over_budget = f"forecast ${cost:.2f} > job budget ${max_cost_usd_per_job:.2f}"
        elif max_cost_usd_per_night is not None and night_total + cost > max_cost_usd_per_night:
            plan.over_budget = (
                f"forecast ${cost:.2f} would take the night to ${night_total + cost:.2f}"
                f" > night budget ${max_cost_usd_per_night:.2f}"
            )
        else:
            night_total += cost
        if plan.over_budget:
            report.add(Level.WARN, "budget", f"{plan.job.label} skipped: {plan.over_budget}")
    forecasts = [p.forecast.usd for p in report.plans if p.forecast and p.runs]
    if forecasts:
        report.add(Level.OK, "budget", f"tonight's forecast: ${sum(forecasts):.2f}")


def choose_incremental_records(
    client: RuntypeClient, report: PreflightReport, warehouse: Warehouse, settings: JobSettings
) -> None:
    """Choose tonight's records of every incremental job (`night_selection`: kept, so the job
    runs this choice) and plan each job's records as the chosen ones. A choice the API's
    answers prevent is a warning: the job chooses when it starts, with its own retries."""
    for plan in report.plans:
        run = JobRun(plan.job, report.run_key, settings)
        if run.mode is not Mode.INCREMENTAL:
            continue
        try:
            selection = night_selection(client, warehouse, run)
        except RuntypeError as exc:
            report.add(
                Level.WARN,
                "incremental",
                f"{plan.job.label}: records not chosen yet ({type(exc).__name__}: {exc});"
                " the job chooses when it starts",
            )
            continue
        plan.selection = selection
        if not selection.whole_type:
            plan.records = len(selection.record_ids)


def run_preflight(
    client: RuntypeClient,
    jobs: list[Job],
    run_key: str,
    settings: JobSettings,
    *,
    night_max_cost_usd: float | None = None,
) -> PreflightReport:
    """Run every check for tonight's ``jobs`` (their warehouse and per-job budget from
    ``settings``, the night's budget ``night_max_cost_usd``); return the report
    (``report.failed`` says whether anything may start). Never raises for what it checks:
    failures are findings."""
    report = PreflightReport(run_key, plans=[JobPlan(job) for job in jobs])
    warehouse_ok = check_warehouse(report, settings.db_path)
    try:
        names = report.flow_names = check_access(client, jobs)
        report.add(
            Level.OK, "endpoint", f"{client.base_url.rstrip('/')} answers; {len(names)} flow(s)"
        )
        check_record_types(client, report)
    except PreflightError as exc:
        report.add(Level.FAIL, "endpoint", str(exc))
    except RuntypeError as exc:
        report.add(Level.FAIL, "endpoint", f"{type(exc).__name__}: {exc}")
    if report.failed or not warehouse_ok:
        return report
    try:
        with process_warehouse(settings.db_path) as warehouse:
            _plan_and_record(
                client,
                report,
                warehouse,
                settings,
                max_cost_usd_per_night=night_max_cost_usd,
            )
    except WarehouseError as exc:  # e.g. another process kept the file past the wait
        report.add(Level.FAIL, "warehouse", str(exc))
    return report


def _plan_and_record(
    client: RuntypeClient,
    report: PreflightReport,
    warehouse: Warehouse,
    settings: JobSettings,
    *,
    max_cost_usd_per_night: float | None,
) -> None:
    """Choose the records of every incremental job (kept for the night: the jobs run that
    choice), forecast and budget every job, check the quota, and record the forecasts."""
    run_key = report.run_key
    warehouse.refresh()  # a shared warehouse: the batches other workers landed, for costs
    choose_incremental_records(client, report, warehouse, settings)
    plan_budgets(
        report,
        warehouse,
        max_cost_usd_per_job=settings.money.max_cost_usd,
        max_cost_usd_per_night=max_cost_usd_per_night,
    )
    for plan in report.plans:
        if plan.selection is not None:
            chosen, saved = describe(plan.selection), ""
            if plan.forecast and plan.selection.type_records:
                full = plan.forecast.cost_per_record * plan.selection.type_records
                saved = f"; forecast ${plan.forecast.usd:.2f} instead of ${full:.2f}"
            report.add(Level.OK, "incremental", f"{plan.job.label}: {chosen}{saved}")
    try:  # after the budgets: only the jobs that will run count against the quota
        check_quota(client, report)
    except RuntypeError as exc:
        report.add(Level.FAIL, "quota", f"{type(exc).__name__}: {exc}")
    if not report.failed:
        warehouse.record_forecasts(
            run_key,
            [
                {
                    "flow_id": p.job.flow_id,
                    "record_type": p.job.record_type,
                    "records": p.records,
                    "cost_per_record": p.forecast.cost_per_record if p.forecast else None,
                    "forecast_usd": p.forecast.usd if p.forecast else None,
                    "low_usd": p.forecast.low_usd if p.forecast else None,
                    "high_usd": p.forecast.high_usd if p.forecast else None,
                    "history_nights": p.forecast.nights if p.forecast else 0,
                    "budget_usd": p.budget_usd,
                    "decision": "over_budget" if p.over_budget else "run",
                }
                for p in report.plans
            ],
        )
