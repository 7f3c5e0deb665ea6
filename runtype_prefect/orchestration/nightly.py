"""The ``runtype-nightly`` flow: many jobs concurrently, each landed, one clear summary."""

# No postponed annotations here: a served flow is pickled by value with only the names its
# body uses, and Prefect validates its parameters against these annotations.

from collections import deque
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, runtime, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.futures import PrefectFuture, as_completed
from prefect.states import Cancelled, Completed, Failed
from prefect.task_runners import ThreadPoolTaskRunner

from ..engine.jobs import Job, discover_jobs, load_jobs, named_after_flows
from ..engine.outcomes import JobResult, Outcome
from ..engine.resources import kept_open, process_warehouse
from ..engine.selection import Repair
from ..engine.settings import JobSettings, NightSettings
from ..gate import QualityThresholds, Verdict
from ..warehouse import Warehouse, is_shared_location
from .alerts import emit_digest, emit_job_alerts, emit_preflight_alerts, emit_quality_alerts
from .cancellation import CancellationWatch
from .credentials import resolve_credentials
from .dispatch import check_dispatchable, dispatch_job
from .job_run import default_run_key, execute_job, job_error_result
from .observability import nightly_markdown, nightly_summary
from .quality import judge_run_key, quality_markdown
from .record_type import cancel_in_flight_batches
from .tasks import preflight_night, publish_night

MAX_WORKERS = 16


@task(name="run-job", task_run_name="{job.display}", cache_policy=NO_CACHE)
def run_job(job: Job, run_key: str, settings: JobSettings, dispatch: str | None = None) -> State:
    """Run one job of the night as this task (`execute_job`): its start, wait and landing are
    its child tasks, and its final state shows the outcome (``CompletedWithFailures``,
    ``BelowFloor``…) with the `JobResult` as data. With ``dispatch`` (a deployment), the job
    runs as a flow run of it on the pool instead (`dispatch_job`). Raises what the job
    raised."""
    if dispatch:
        return dispatch_job(job, run_key, settings, dispatch)
    return execute_job(job, run_key, settings)


@task(name="repair-job", task_run_name="repair · {job.display}", cache_policy=NO_CACHE)
def repair_job(job: Job, run_key: str, settings: JobSettings) -> State:
    """Re-run the job's records whose latest result of the night failed for a reason a re-run
    may cure (`execute_job` with a transient-only `Repair`): once, the choice being kept."""
    return execute_job(job, run_key, settings, repair=Repair(transient_only=True))


def repair_pass(
    jobs: list[Job],
    results: list[JobResult],
    run_key: str,
    settings: JobSettings,
    night_budget_usd: float | None,
) -> list[JobResult]:
    """Run `repair_job` for each landed job with transient failures, one after another, while
    the night's estimated spend plus the repair's (its records at tonight's cost per record)
    stays within ``night_budget_usd``; return the repairs' results (named ``<job> · repair``).
    """
    log = get_run_logger()
    by_label = {r.job: r for r in results}
    spent = sum(r.estimated_cost_usd for r in results)
    plans: list[tuple[Job, int, float]] = []
    with process_warehouse(settings.db_path) as warehouse:
        for job in jobs:
            result = by_label.get(job.label)
            if result is None or not result.failed or not result.records:
                continue
            if result.outcome.failed and result.outcome is not Outcome.BELOW_FLOOR:
                continue  # not landed in full: a re-run of the night comes first
            failed, _ = warehouse.failed_in_night(job.key(run_key), transient_only=True)
            if failed:
                per_record = result.estimated_cost_usd / result.records
                plans.append((job, len(failed), len(failed) * per_record))
    repairs = []
    for job, records, cost in plans:
        if night_budget_usd is not None and spent + cost > night_budget_usd:
            log.warning(
                "repair of %s skipped: %d records, about $%.2f, would take the night to $%.2f,"
                " past its budget of $%.2f",
                job.label,
                records,
                cost,
                spent + cost,
                night_budget_usd,
            )
            continue
        spent += cost
        log.info(
            "repairing %s: %d records failed for a reason a re-run may cure", job.label, records
        )
        future = repair_job.submit(job, run_key, settings)
        repaired = job_result(future, job, run_key)
        repairs.append(repaired.model_copy(update={"job": f"{job.label} · repair"}))
    return repairs


def job_result(future: PrefectFuture[Any], job: Job, run_key: str) -> JobResult:
    """Return the finished job task's `JobResult`, or one describing the error it raised.

    The task returns a state; its future hands over the state's data (the `JobResult`) or the
    error, which Prefect's types cannot say, hence ``Any``."""
    result = future.result(raise_on_failure=False)
    if isinstance(result, JobResult):
        return result
    error = result if isinstance(result, BaseException) else RuntimeError(repr(result))
    return job_error_result(job, run_key, error)


def resolve_jobs(
    jobs: list[Job] | None,
    jobs_file: str | None,
    discover_flow_ids: list[str] | None,
    credentials_block: str | None = None,
) -> list[Job]:
    """Return the jobs from the parameters, the YAML file, or discovery (in that order).

    Raises ValueError when none is given.
    """
    if jobs:
        return list(jobs)
    if jobs_file:
        return load_jobs(Path(jobs_file))
    if discover_flow_ids:
        with resolve_credentials(credentials_block).get_client() as client:
            return discover_jobs(client, discover_flow_ids)
    raise ValueError("no jobs: pass jobs, jobs_file or discover_flow_ids")


def nightly_run_name() -> str:
    """The flow run's name: the night it runs, ``nightly · 2026-12-06``."""
    return f"nightly · {runtime.flow_run.parameters.get('run_key') or default_run_key()}"


@flow(
    name="runtype-nightly",
    flow_run_name=nightly_run_name,
    # Prefect 3.9's stubs infer ThreadPoolTaskRunner[Never] here; the runner is what it wants.
    task_runner=ThreadPoolTaskRunner(max_workers=MAX_WORKERS),  # type: ignore[arg-type]
    on_cancellation=[cancel_in_flight_batches],
)
def nightly(
    jobs: list[Job] | None = None,
    jobs_file: str | None = None,
    discover_flow_ids: list[str] | None = None,
    run_key: str | None = None,
    settings: JobSettings = JobSettings(),
    night: NightSettings = NightSettings(),
) -> list[JobResult] | State:
    """Run every job concurrently, land what succeeds, publish the analytics snapshot, and end
    Failed naming the jobs that failed.

    First the preflight checks the warehouse, the key and endpoint, every flow and record
    type, the quota and the budgets; a failed check fails the night before anything starts,
    one line per problem. A job whose cost forecast exceeds its budget (or would take the night
    past the night's) is skipped with the ``over_budget`` outcome; the rest run.

    With a dispatch deployment (``run-record-type/on-demand``) each job runs as a flow run of
    that deployment, on whichever worker of its pool is free, landing into the shared warehouse
    ``settings.db_path`` must then name (``s3://…``); the summary reads the shared tables.
    Without it (the default, for a single worker) the jobs run in this process.

    With the quality gate (and a date as run key) each job's night is judged against its own
    clean history (`runtype_prefect.gate`); every verdict is stored in ``quality_verdicts``,
    regressions emit ``runtype.quality.degraded``, appear in the summary and, with
    ``night.quality.fail_on_degradation``, fail the run.

    Args:
        jobs: The jobs to run (flow id, record type, name); empty: the jobs file's.
        jobs_file: A YAML file of jobs (deployments/jobs.yaml), read when jobs is empty.
        discover_flow_ids: Without jobs or a jobs file: these flows over every record type.
        run_key: What makes a re-run idempotent; empty: the scheduled night (UTC date).
        settings: How each job runs: the warehouse, the key, waiting, money, judgement.
        night: What the night adds: concurrency, the night's budget, dispatch, the quality
            gate, the repair pass.
    """
    log = get_run_logger()
    if night.dispatch_deployment:
        check_dispatchable(settings.db_path)
    job_list = resolve_jobs(jobs, jobs_file, discover_flow_ids, settings.credentials_block)
    resolve_order = list(job_list)
    run_key = run_key or default_run_key()
    # The night runs the preflight once, before its first job, and publishes the snapshot once,
    # after its last: its jobs do neither, here or dispatched to the pool.
    job_settings = settings.model_copy(update={"preflight": False, "publish_snapshot": False})
    results: list[JobResult] = []
    # A shared location's staging warehouse stays open from the preflight's forecasts to the
    # last job (its history is pulled once); a DuckDB file is opened only to write.
    with kept_open(settings.db_path):
        if settings.preflight:
            report = preflight_night(job_list, run_key, settings, night.max_cost_usd)
            emit_preflight_alerts(report)
            if report.failed:
                message = "preflight failed, nothing was started:\n" + "\n".join(
                    f"- {problem}" for problem in report.problems()
                )
                log.error(message)
                return Failed(data=[], message=message)
            skipped = {p.job.label for p in report.plans if not p.runs}
            job_list = [job for job in job_list if job.label not in skipped]
            # Jobs given without a name go by their flow's from here on (the UI, the tables).
            named = report.flow_names
            results = [
                JobResult.of(job, run_key, outcome=Outcome.OVER_BUDGET, message=p.over_budget)
                for p in report.plans
                if not p.runs
                for job in named_after_flows([p.job], named)
            ]
            job_list = named_after_flows(job_list, named)
            resolve_order = named_after_flows(resolve_order, named)
        log.info(
            "nightly %s: %d jobs, %d at a time", run_key, len(job_list), night.max_concurrent_jobs
        )
        limit = max(1, min(night.max_concurrent_jobs, MAX_WORKERS))
        order = {job.label: i for i, job in enumerate(resolve_order)}
        # The jobs open the warehouse only while they write: another run's writes fit between.
        pending: deque[Job] = deque(job_list)
        running: dict[PrefectFuture[Any], Job] = {}
        while pending or running:
            while pending and len(running) < limit:
                job = pending.popleft()
                future = run_job.submit(job, run_key, job_settings, night.dispatch_deployment)
                running[future] = job
            done = next(as_completed(list(running)))
            results.append(job_result(done, running.pop(done), run_key))
        results.sort(key=lambda r: order.get(r.job, 0))
        cancelled_run = _cancelled()
        if night.repair.enabled and not cancelled_run:
            if is_shared_location(settings.db_path):  # dispatching needs one as well
                log.warning("no repair pass: it needs a local warehouse, not a shared location")
            else:
                results += repair_pass(job_list, results, run_key, job_settings, night.max_cost_usd)
        findings: list[Verdict] = []
        judge = night.quality.enabled and not cancelled_run
        if judge or settings.publish_snapshot:
            with process_warehouse(settings.db_path) as warehouse:
                if judge:
                    warehouse.refresh()  # a shared warehouse: what other workers landed
                    findings = _quality(warehouse, run_key, night.quality.thresholds)
                if settings.publish_snapshot:
                    publish_night(warehouse, settings.db_path, run_key, job_list)
    if cancelled_run:
        cancelled = [r.job for r in results if r.outcome is Outcome.CANCELLED]
        log.warning("nightly %s cancelled: %d jobs cancelled", run_key, len(cancelled))
        return Cancelled(
            data=results,
            message=f"cancelled; jobs cancelled: {', '.join(cancelled) or 'none'}",
        )
    degraded = [v for v in findings if v.degraded]
    for verdict in degraded:
        log.warning("quality degraded: %s", verdict.describe())
    emit_job_alerts(results)
    emit_quality_alerts(findings)
    emit_digest(run_key, results, findings)
    summary = nightly_markdown(run_key, results) + quality_markdown(findings)
    nightly_summary(run_key, summary)
    log.info("\n%s", summary)
    failed = [r for r in results if r.outcome.failed]
    problems = (
        [
            f"{len(failed)} of {len(results)} jobs failed: "
            + ", ".join(f"{r.job} ({r.outcome.value})" for r in failed)
        ]
        if failed
        else []
    )
    if degraded and night.quality.fail_on_degradation:
        problems.append(f"quality degraded: {'; '.join(v.describe() for v in degraded)}")
    if problems:
        return Failed(data=results, message=" · ".join(problems))
    partial = [r for r in results if not r.outcome.ok]
    if partial:
        names = ", ".join(f"{r.job} ({r.outcome.value})" for r in partial)
        return Completed(
            data=results,
            name="CompletedWithFailures",
            message=f"all jobs landed; needs a look: {names}",
        )
    return results


def _cancelled() -> bool:
    """Return True when this flow run (or its root) is being cancelled."""
    flow_run = runtime.flow_run
    with CancellationWatch([flow_run.id, flow_run.root_flow_run_id]) as watch:
        return watch.should_stop()


def _quality(
    warehouse: Warehouse, run_key: str, thresholds: QualityThresholds | None
) -> list[Verdict]:
    verdicts = judge_run_key(warehouse, run_key, thresholds)
    if not verdicts:
        get_run_logger().info("run key %r is not a night with records: no quality gate", run_key)
    return verdicts
