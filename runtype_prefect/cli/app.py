"""The ``runtype-prefect`` command line (typer + rich)."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from ..engine.jobs import Job

# These machines are offline: Prefect's anonymous telemetry can only fail (noisily).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from .console import console, print_failures, print_verdicts, results_table
from .exit_codes import ExitCode, exit_code_for
from .help_format import Command, Group
from .prefect_logs import prefect_logs_to_file
from .progress import job_progress

#: The sandbox's test key (`client.sandbox_control.SANDBOX_TEST_KEY`, which a test holds this
#: to): spelled here so that the command line answers --help without importing the client.
DEFAULT_API_KEY = "rt_test_sandbox"
#: The alert automations' deadlines in minutes (`orchestration.automations.DEFAULT_LATE_AFTER`
#: and ``DEFAULT_MISSED_AFTER``, which a test holds these to), for the same reason.
LATE_AFTER_MINUTES, MISSED_AFTER_MINUTES = 240.0, 30.0
#: Where `runtype-prefect server` (``make server``) serves its sandbox.
SERVER_SANDBOX_URL = "http://127.0.0.1:8765/v1"

app = typer.Typer(
    help="Run Runtype AI flows on a schedule with Prefect and turn their results into analytics.",
    no_args_is_help=True,
    add_completion=False,
    cls=Group,
)


_options = {"verbose": False}
F = TypeVar("F", bound=Callable[..., Any])


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"runtype-prefect {version('runtype-prefect')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _group(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Print Prefect's logs here and the traceback of a failure."
        ),
    ] = False,
) -> None:
    """Run Runtype AI flows on a schedule with Prefect and turn their results into analytics."""
    _options["verbose"] = verbose
    if not verbose:
        # A failure ends in one line of ours; the client's retry notices would precede it.
        logging.getLogger("runtype_prefect.client").addHandler(logging.NullHandler())


def _is_expected(exc: BaseException) -> bool:
    """Return True for failures an operator fixes (bad input, environment, service answers):
    these print one line; anything else is a bug and keeps its traceback."""
    from ..client import RuntypeError
    from ..client.sandbox_control import NotASandboxError
    from ..engine.errors import RunError
    from ..warehouse import WarehouseError
    from .stack import StackError

    kinds = (
        RuntypeError,  # the API's answers
        RunError,  # orchestration's: a bad jobs file, a failed check, a start to settle
        WarehouseError,
        NotASandboxError,
        StackError,
        ValueError,
        OSError,
        TimeoutError,
    )
    return isinstance(exc, kinds)


def friendly(command: F) -> F:
    """Wrap a command so an expected failure prints ``error: <what and how to fix it>`` and
    exits 1 (``--verbose`` shows the traceback instead)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except Exception as exc:
            if _options["verbose"] or not _is_expected(exc):
                raise
            console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def prefect_api() -> Iterator[None]:
    """For a command that runs flows: send Prefect's own log lines to a file (printed here)
    unless ``--verbose``, and when ``PREFECT_API_URL`` is unset run the local Prefect server
    (`local_prefect`: SQLite under ``$PREFECT_HOME``) for the command's duration."""
    log_path = None
    if not _options["verbose"]:
        log_path = prefect_logs_to_file()
        console.print(f"Prefect's logs: {log_path} (--verbose prints them here)", highlight=False)
    if os.environ.get("PREFECT_API_URL"):
        yield
        return
    from .local_prefect import local_prefect_server

    console.print(
        "Prefect: PREFECT_API_URL is unset, so a local Prefect server starts for this command"
        " (SQLite under $PREFECT_HOME, no UI; up to a minute on a first run)"
        " · `make server` runs one with the UI",
        highlight=False,
    )
    with local_prefect_server(log_path=log_path):
        yield


#: Options several commands share, declared once.
DbOption = Annotated[str | None, typer.Option(help="DuckDB file (default $RUNTYPE_PREFECT_DB).")]
CredentialsOption = Annotated[
    str | None, typer.Option(help="Saved RuntypeCredentials block (default: environment).")
]


def _env(name: str) -> str:
    return f"RUNTYPE_SANDBOX_{name}"


@app.command(cls=Command)
@friendly
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port; 0 picks a free one.", envvar=_env("PORT"))
    ] = 8765,
    seed: Annotated[int, typer.Option(help="Seed of flows, records and executions.")] = 7,
    time_scale: Annotated[
        float,
        typer.Option(
            help="Wall seconds per simulated second of work; 0 = at once.",
            envvar=_env("TIME_SCALE"),
        ),
    ] = 0.01,
    start: Annotated[
        datetime | None, typer.Option(help="Simulated start time (UTC); default: now.")
    ] = None,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            help="Accepted API key (repeatable). Default: $RUNTYPE_API_KEY, else "
            f"{DEFAULT_API_KEY}."
        ),
    ] = None,
    immediate_threshold: Annotated[int, typer.Option(help="Largest immediate run.")] = 10,
    record_concurrency: Annotated[int, typer.Option(help="Records run at once per batch.")] = 25,
    daily_limit: Annotated[
        int | None, typer.Option(help="Executions per day before 429 (default: unlimited).")
    ] = None,
    latency_ms: Annotated[
        float, typer.Option(help="Added latency per request.", envvar=_env("LATENCY_MS"))
    ] = 0.0,
    rate_429: Annotated[
        float, typer.Option(help="Share of requests answered 429.", envvar=_env("RATE_429"))
    ] = 0.0,
    retry_after: Annotated[
        float, typer.Option(help="Retry-After of a 429, seconds.", envvar=_env("RETRY_AFTER"))
    ] = 1.0,
    burst_limit: Annotated[
        int | None, typer.Option(help="API requests per 10 s.", envvar=_env("BURST_LIMIT"))
    ] = None,
    rate_5xx: Annotated[
        float, typer.Option(help="Share of requests answered 503.", envvar=_env("RATE_5XX"))
    ] = 0.0,
    rate_drop: Annotated[
        float, typer.Option(help="Share of connections dropped.", envvar=_env("RATE_DROP"))
    ] = 0.0,
    rate_malformed: Annotated[
        float,
        typer.Option(help="Share of answers with a broken body.", envvar=_env("RATE_MALFORMED")),
    ] = 0.0,
    public: Annotated[
        bool,
        typer.Option("--public", help="Allow --host beyond loopback (anyone who can reach it)."),
    ] = False,
    calm: Annotated[
        bool,
        typer.Option(
            "--calm",
            help="No planted regressions (slow weeks, incident nights): ordinary noise only.",
            envvar=_env("CALM"),
        ),
    ] = False,
    churn: Annotated[
        float,
        typer.Option(
            help="How much the records change each simulated day (0 never; 1 about 3% updated,"
            " 1% new, 0.3% deleted).",
            envvar=_env("CHURN"),
        ),
    ] = 0.0,
) -> None:
    """Serve the Runtype-compatible sandbox API (faults are off unless switched on).

    Loopback only unless --public; its /_sandbox controls take the same key as the API.
    """
    from ..sandbox import FaultConfig, SandboxSettings, create_app  # the `sandbox` extra
    from ..sandbox.app import LOOPBACK_HOSTS
    from ..sandbox.server import bind, uvicorn_server

    loopback = host in LOOPBACK_HOSTS or host.startswith("127.")
    if not loopback and not public:
        raise ValueError(
            f"--host {host} would let other machines reach the sandbox and its controls:"
            " pass --public as well if that is what you want"
        )
    keys = tuple(api_key or [os.environ.get("RUNTYPE_API_KEY") or DEFAULT_API_KEY])
    settings = SandboxSettings(
        seed=seed,
        time_scale=time_scale,
        start=start,
        immediate_threshold=immediate_threshold,
        record_concurrency=record_concurrency,
        daily_execution_limit=daily_limit,
        api_keys=keys,
        calm=calm,
        churn=churn,
    )
    faults = FaultConfig(
        latency_ms=latency_ms,
        rate_429=rate_429,
        retry_after_seconds=retry_after,
        burst_limit=burst_limit,
        rate_5xx=rate_5xx,
        rate_drop=rate_drop,
        rate_malformed=rate_malformed,
    )
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    if not loopback:
        console.print(
            f"[yellow]warning:[/] listening on {host}: anyone who can reach this machine can"
            " use the sandbox with its key; any Host header is accepted",
            highlight=False,
        )
    key_source = (
        "--api-key"
        if api_key
        else ("RUNTYPE_API_KEY" if os.environ.get("RUNTYPE_API_KEY") else "the default test key")
    )
    console.print(f"[bold]Runtype sandbox[/] on http://{host}:{bound_port}/v1")
    console.print(
        f"  accepting {len(keys)} key(s) from {key_source}"
        + (f": {DEFAULT_API_KEY}" if key_source == "the default test key" else "")
    )
    console.print(
        f"  OpenAPI: http://{host}:{bound_port}/docs · controls (same key): /_sandbox/faults"
    )
    app_ = create_app(settings, faults, allowed_hosts=LOOPBACK_HOSTS if loopback else None)
    uvicorn_server(app_).run(sockets=[sock])


def check_before_prefect(jobs: list[Job], db: str | None, *, api: bool) -> dict[str, str]:
    """Run the checks that need no Prefect before its server starts, within seconds: the
    warehouse's path, and with ``api`` (credentials from the environment; a block lives on the
    Prefect server and is checked in the run) the key, the base URL, each flow and each record
    type. Returns {flow id: flow name} of the flows it read ({} without ``api``). Prints one line
    per problem and exits 4 for record types without records (misspelt?), 5 for anything else;
    raises `PreflightError` for the key, the URL or a flow."""
    from ..client import RuntypeClient
    from ..engine.preflight import (
        PREFLIGHT_TIMEOUT,
        JobPlan,
        Level,
        PreflightReport,
        check_access,
        check_record_types,
        check_warehouse_path,
        preflight_retry,
    )

    report = PreflightReport("", plans=[JobPlan(job) for job in jobs])
    check_warehouse_path(report, db)
    names: dict[str, str] = {}
    if api:
        with RuntypeClient(retry=preflight_retry(), timeout=PREFLIGHT_TIMEOUT) as client:
            names = check_access(client, jobs)
            check_record_types(client, report)
    if not report.failed:
        return names
    for problem in report.problems():
        console.print(f"[red]error:[/] {problem}", highlight=False, soft_wrap=True)
    checks = {f.check for f in report.findings if f.level is Level.FAIL}
    raise typer.Exit(
        ExitCode.NO_RECORDS if checks == {"record type"} else ExitCode.PREFLIGHT_FAILED
    )


@app.command(cls=Command)
@friendly
def run(
    flow_id: Annotated[str, typer.Option(help="Runtype flow id.")],
    record_type: Annotated[list[str], typer.Option(help="Record type (repeatable).")],
    db: DbOption = None,
    credentials_block: CredentialsOption = None,
    run_key: Annotated[str | None, typer.Option(help="Idempotency key (default: today).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each batch.")] = 6 * 3600.0,
    force: Annotated[
        bool, typer.Option("--force", help="Start new batches even if the key ran.")
    ] = False,
    max_cost_usd_per_job: Annotated[
        float | None, typer.Option(help="Skip a job whose cost forecast is higher.")
    ] = None,
    max_cost_usd_per_night: Annotated[
        float | None, typer.Option(help="Skip jobs that would take the night past this.")
    ] = None,
    min_success_rate: Annotated[
        float,
        typer.Option(help="A job whose records succeed less often ends Failed (exit code 3)."),
    ] = 0.5,
    incremental: Annotated[
        bool,
        typer.Option(
            "--incremental",
            help="Run only the records new, changed or failed since their last result.",
        ),
    ] = False,
) -> None:
    """Run one Runtype flow over record types through Prefect and land results in DuckDB.

    The key, the base URL and the flow are checked first, within seconds, before Prefect starts.

    Exit codes: 0 landed, 1 a job failed, 3 below the success floor, 4 no records, 5 the
    preflight failed (nothing started).
    """
    from ..engine.jobs import Job, named_after_flows
    from ..engine.settings import JobSettings, Judgement, Mode, Money, NightSettings, Waiting

    jobs = [Job(flow_id=flow_id, record_type=t) for t in record_type]
    names = check_before_prefect(jobs, db, api=credentials_block is None)
    # Named after the flow, as the UI and the results table show a job (not its flow id).
    jobs = named_after_flows(jobs, names)
    settings = JobSettings(
        credentials_block=credentials_block,
        db_path=db,
        force=force,
        waiting=Waiting(timeout_seconds=timeout),
        money=Money(max_cost_usd=max_cost_usd_per_job),
        judgement=Judgement(min_success_rate=min_success_rate),
        mode=Mode.INCREMENTAL if incremental else None,
    )
    with prefect_api(), job_progress(console):
        from ..flows import nightly

        state = nightly(
            jobs=jobs,
            run_key=run_key,
            settings=settings,
            night=NightSettings(max_cost_usd=max_cost_usd_per_night),
            return_state=True,
        )
    results = state.result(raise_on_failure=False)
    if not isinstance(results, list):
        console.print(f"[red]run failed:[/] {results}")
        raise typer.Exit(ExitCode.JOB_FAILED)
    if not results:  # the preflight failed: nothing was started
        console.print(f"[red]{state.message}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(ExitCode.PREFLIGHT_FAILED)
    console.print(results_table(f"Runtype run {results[0].run_key if results else ''}", results))
    print_failures(results)
    from ..gate import latest_verdicts
    from ..warehouse import open_warehouse

    with contextlib.suppress(ValueError), open_warehouse(db) as warehouse:  # a night: verdicts
        print_verdicts(console, latest_verdicts(warehouse, date.fromisoformat(results[0].run_key)))
    raise typer.Exit(exit_code_for(results))


@app.command(cls=Command)
@friendly
def repair(
    night: Annotated[str, typer.Option(help="The night to repair (its run key, e.g. 2026-12-06).")],
    job: Annotated[str, typer.Option(help="The job: its name or its record type.")],
    db: DbOption = None,
    credentials_block: CredentialsOption = None,
    transient_only: Annotated[
        bool,
        typer.Option(
            "--transient-only", help="Only failures a re-run may cure: timeouts, rate limits, 5xx."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Choose again and start a new repair batch.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the batch.")] = 6 * 3600.0,
) -> None:
    """Re-run the records that failed in one night's batches of a job, exactly once.

    The job is found in the warehouse (what ran that night). A second identical repair starts
    nothing. Exit codes as for `run`.
    """
    from ..engine.settings import JobSettings, Waiting
    from ..warehouse import open_warehouse

    with open_warehouse(db) as warehouse:
        ran = warehouse.query(
            "SELECT DISTINCT flow_id, record_type, job_name FROM batch_nights"
            " WHERE run_key = ? ORDER BY record_type, job_name",
            [night],
        )
    matches = [r for r in ran if job in (r[1], r[2])]
    if len(matches) != 1:
        names = ", ".join(f"{name or flow} · {record_type}" for flow, record_type, name in ran)
        problem = "no job" if not matches else "more than one job"
        raise ValueError(
            f"{problem} {job!r} ran on {night} in {db or 'the default warehouse'};"
            f" jobs that ran that night: {names or 'none'}"
        )
    ((flow_id, record_type, job_name),) = matches
    settings = JobSettings(
        credentials_block=credentials_block,
        db_path=db,
        force=force,
        waiting=Waiting(timeout_seconds=timeout),
    )
    with prefect_api(), job_progress(console):
        from ..flows import repair_night

        state = repair_night(
            flow_id=flow_id,
            record_type=record_type,
            run_key=night,
            job_name=job_name,
            transient_only=transient_only,
            settings=settings,
            return_state=True,
        )
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    console.print(results_table(f"Repair of {night}", [result]))
    if result.message:
        console.print(result.message, highlight=False, soft_wrap=True)
    raise typer.Exit(exit_code_for([result]))


@app.command(cls=Command)
@friendly
def setup(
    api_requests_per_second: Annotated[float, typer.Option(help="Runtype API rate limit.")] = 20.0,
    max_running_batches: Annotated[int, typer.Option(help="Batches running at once.")] = 4,
    work_pool: Annotated[
        str, typer.Option(help="Process work pool to create.")
    ] = "runtype-process",
    save_block: Annotated[
        str | None,
        typer.Option(help="Also save a RuntypeCredentials block of this name from the env."),
    ] = None,
    notify: Annotated[
        str | None,
        typer.Option(
            help="Alert through this notification block (<block type>/<name>, e.g."
            " custom-webhook/on-call): creates or updates the alert automations."
        ),
    ] = None,
    webhook: Annotated[
        str | None,
        typer.Option(
            help="Alert by POSTing JSON {subject, body} to this URL (saves the generic webhook"
            " block custom-webhook/runtype-alerts); --notify takes precedence."
        ),
    ] = None,
    late_after: Annotated[
        float,
        typer.Option(help="Minutes after it was due before an unfinished nightly is late."),
    ] = LATE_AFTER_MINUTES,
    missed_after: Annotated[
        float,
        typer.Option(help="Minutes a due nightly may wait to start before it is missed."),
    ] = MISSED_AFTER_MINUTES,
    digest: Annotated[
        bool,
        typer.Option("--digest", help="One message per night instead of one per job and problem."),
    ] = False,
) -> None:
    """Create the Prefect limits and work pool and register the credentials block type.

    With --notify (or --webhook), also create or update the automations that send alerts:
    degraded quality, failed jobs, the quota warning, late and missed nights (or, with
    --digest, one digest per night instead of the first three). Also rewrites this project's
    deployments (and their scheduled runs) that still hold the flat parameter names of earlier
    versions to the grouped settings, one line per deployment. Safe to run twice: existing
    limits and automations are updated, nothing is duplicated.
    """
    from ..orchestration.provisioning import run_setup

    with prefect_api():
        for line in run_setup(
            api_requests_per_second=api_requests_per_second,
            max_running_batches=max_running_batches,
            work_pool=work_pool,
            save_block=save_block,
            notify=notify,
            webhook=webhook,
            late_after=timedelta(minutes=late_after),
            missed_after=timedelta(minutes=missed_after),
            digest=digest,
        ):
            console.print(line)


@app.command(cls=Command)
@friendly
def doctor(
    release: Annotated[
        bool,
        typer.Option(
            "--release",
            help="Free the slots listed, when no run of this project is pending or running.",
        ),
    ] = False,
) -> None:
    """List the concurrency slots this project's limits hold on the Prefect server, and with
    --release free them when no run of ours is active (slots a restarted server forgot).

    Servers this project starts free a dead holder's slot when its lease expires; a server
    that keeps leases in memory (Prefect's default) forgets them when it restarts.
    """
    from ..orchestration.limits import active_runs, release_slots, taken_slots

    with prefect_api():
        taken = taken_slots()
        running = active_runs()
        if not taken:
            console.print("no slots taken: nothing to free")
            return
        for slot in taken:
            console.print(f"{slot.name}: {slot.active_slots} of {slot.limit} slots taken")
        console.print(f"runs of this project pending or running: {running}")
        if not release:
            console.print("`runtype-prefect doctor --release` frees them once no run is active")
            return
        if running:
            raise typer.BadParameter(
                f"{running} run(s) of this project are active and may hold these slots: wait"
                " for them to end (or cancel them), then run --release again"
            )
        release_slots([slot.name for slot in taken])
        console.print(f"freed the slots of {len(taken)} limit(s)")


@app.command(cls=Command)
@friendly
def backfill(
    nights: Annotated[int, typer.Option(help="Nights to land, ending today (UTC).")] = 7,
    jobs_file: Annotated[str, typer.Option(help="Jobs YAML.")] = "deployments/jobs.yaml",
    db: DbOption = None,
    sandbox_url: Annotated[
        str,
        typer.Option(
            help="The sandbox's API URL (default: $RUNTYPE_BASE_URL, else `make server`'s).",
            envvar="RUNTYPE_BASE_URL",
        ),
    ] = SERVER_SANDBOX_URL,
) -> None:
    """Land several simulated nights from a running sandbox (sandbox only)."""
    from ..client.sandbox_control import SandboxControl
    from ..engine.jobs import load_jobs

    with SandboxControl(sandbox_url) as control:
        control.check()  # NotASandboxError, before Prefect starts
    check_before_prefect(load_jobs(Path(jobs_file)), db, api=False)
    os.environ["RUNTYPE_BASE_URL"] = sandbox_url
    from ..client.sandbox_control import sandbox_page_template

    os.environ["RUNTYPE_DASHBOARD_URL_TEMPLATE"] = sandbox_page_template(sandbox_url)
    os.environ.setdefault("RUNTYPE_API_KEY", DEFAULT_API_KEY)
    with prefect_api(), job_progress(console):
        from ..rehearsal.backfill import SANDBOX_PACE
        from ..rehearsal.backfill import backfill as backfill_flow

        settings = SANDBOX_PACE.model_copy(update={"db_path": db})
        state = backfill_flow(
            nights=nights, jobs_file=jobs_file, settings=settings, return_state=True
        )
    results = state.result(raise_on_failure=False)
    if not isinstance(results, dict):
        raise results if isinstance(results, Exception) else RuntimeError(state.message)
    for night, night_results in results.items():
        if night_results:
            console.print(results_table(f"Night {night}", night_results))
    code = exit_code_for(r for night in results.values() for r in night)
    if not state.is_completed():
        console.print(f"[red]backfill failed:[/] {state.message}", highlight=False, soft_wrap=True)
        whole = any(not night_results for night_results in results.values())
        if whole and code is not ExitCode.JOB_FAILED:  # a night that started nothing
            code = ExitCode.PREFLIGHT_FAILED
    raise typer.Exit(code)


@app.command(cls=Command)
@friendly
def server(
    port: Annotated[int, typer.Option(help="Prefect server (UI) port.")] = 4200,
    sandbox_port: Annotated[int, typer.Option(help="Sandbox port.")] = 8765,
    time_scale: Annotated[float, typer.Option(help="Sandbox time scale.")] = 0.01,
    api_url: Annotated[
        str | None,
        typer.Option(help="Use this running Prefect server instead of starting one."),
    ] = None,
    sandbox_url: Annotated[
        str | None, typer.Option(help="Use this running sandbox instead of starting one.")
    ] = None,
    db: Annotated[str, typer.Option(help="DuckDB file the deployments land into.")] = (
        "runtype.duckdb"
    ),
    notify: Annotated[
        str | None,
        typer.Option(help="Set up the alerts through this notification block (see setup)."),
    ] = None,
    webhook: Annotated[
        str | None,
        typer.Option(help="Set up the alerts to POST to this URL (see setup)."),
    ] = None,
) -> None:
    """Run a Prefect server with the UI, the sandbox, the deployments and a process worker,
    until Ctrl-C or SIGTERM (which stop every child). Schedules run here (the temporary server
    Prefect starts alone has none). With --notify or --webhook, its setup also creates the
    alert automations. Honours $PREFECT_HOME (default ./.prefect)."""
    from .stack import LocalStack, api_url_of, stop_on_sigterm

    stop_on_sigterm()
    with LocalStack(
        prefect_port=port,
        sandbox_port=sandbox_port,
        sandbox_url=sandbox_url,
        api_url=api_url_of(api_url) if api_url else None,
        api_key=os.environ.get("RUNTYPE_API_KEY") or DEFAULT_API_KEY,
        time_scale=time_scale,
        db_path=db,
        setup_options=[
            *(["--notify", notify] if notify else []),
            *(["--webhook", webhook] if webhook else []),
        ],
        log=lambda line: console.print(line, highlight=False, soft_wrap=True),
    ) as stack:
        stack.deploy()
        stack.start_worker()
        console.print(
            f"[bold green]ready[/]: Prefect UI {stack.ui_url} · sandbox {stack.sandbox_url} ·"
            f" warehouse {stack.db_path} · process group {stack.process_group}",
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            "in another terminal:\n"
            f"  export PREFECT_API_URL={stack.api_url}\n"
            "  .venv/bin/prefect deployment run runtype-nightly/nightly   # a night, now\n"
            f"  .venv/bin/runtype-prefect backfill --sandbox-url {stack.sandbox_url}"
            "   # 7 nights of history\n"
            "Ctrl-C stops everything",
            highlight=False,
            soft_wrap=True,
        )
        stack.wait()


@app.command(cls=Command)
@friendly
def demo(
    nights: Annotated[int, typer.Option(help="Simulated nights of history to land.")] = 7,
    db: Annotated[str, typer.Option(help="DuckDB file to land into.")] = "runtype.duckdb",
    time_scale: Annotated[
        float, typer.Option(help="Sandbox wall seconds per simulated second, last night.")
    ] = 0.002,
    report_path: Annotated[str, typer.Option("--report", help="HTML report to write.")] = (
        "reports/report.html"
    ),
) -> None:
    """Start the sandbox, run the nightly flow for several simulated nights on Prefect's local
    server, land everything in DuckDB and print a summary."""
    from .demo import run_demo

    with prefect_api():
        run_demo(console, nights=nights, db_path=db, time_scale=time_scale, report_path=report_path)


@app.command(cls=Command)
@friendly
def report(
    db: Annotated[
        str | None, typer.Option(help="Warehouse or its snapshot (default $RUNTYPE_PREFECT_DB).")
    ] = None,
    out: Annotated[str, typer.Option(help="HTML file to write.")] = "report.html",
    since: Annotated[
        datetime | None,
        typer.Option(help="Only nights on or after this date.", formats=["%Y-%m-%d"]),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(help="Only nights on or before this date.", formats=["%Y-%m-%d"]),
    ] = None,
    prefect_ui_url: Annotated[
        str | None,
        typer.Option(
            help="Prefect UI to link each batch's flow run to (default $PREFECT_UI_URL, or"
            " $PREFECT_API_URL without /api; none: no links)."
        ),
    ] = None,
    batch_url_template: Annotated[
        str | None,
        typer.Option(
            help="A batch's page, {flow_id} and {batch_id} filled in (default"
            " $RUNTYPE_DASHBOARD_URL_TEMPLATE, else the flow's Runtype dashboard)."
        ),
    ] = None,
    no_by_record_type: Annotated[
        bool,
        typer.Option(
            "--no-by-record-type",
            help="One page over every record type, without the record-type selector.",
        ),
    ] = False,
) -> None:
    """Write the self-contained HTML report (opens offline) from the analytics snapshot."""
    from ..analytics import AnalyticsUnavailableError, build_report
    from .report_links import report_links

    links = report_links(prefect_ui_url, batch_url_template)
    try:
        path = build_report(
            db,
            out,
            since=since.date() if since else None,
            until=until.date() if until else None,
            links=links,
            by_record_type=not no_by_record_type,
        )
    except AnalyticsUnavailableError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB, opens offline)")


@app.command(cls=Command)
@friendly
def pull(
    source: Annotated[
        str,
        typer.Option("--from", help="The shared warehouse: s3://bucket/prefix or file:///path."),
    ],
    db: Annotated[
        str | None,
        typer.Option(help="Local DuckDB file to pull into (default $RUNTYPE_PREFECT_DB)."),
    ] = None,
    no_publish: Annotated[
        bool,
        typer.Option("--no-publish", help="Leave the analytics snapshot as it was."),
    ] = False,
) -> None:
    """Bring what workers landed at a shared location into a local DuckDB warehouse (only the
    batches it does not have yet) and publish its analytics snapshot: the notebooks, the report
    and the SQL models then read it as they read any night landed locally."""
    from ..warehouse import SharedWarehouse, Warehouse, is_shared_location, location_key
    from ..warehouse.shared import pull as pull_shared

    if is_shared_location(location_key(db)):
        raise typer.BadParameter("--db (or $RUNTYPE_PREFECT_DB) must name a local DuckDB file")
    with SharedWarehouse(source) as shared, Warehouse(db) as warehouse:
        pulled = pull_shared(shared.tables, shared.ledger, warehouse)
        console.print(
            f"pulled {pulled.landed_batches} newly landed of {pulled.batches} batches"
            f" ({pulled.record_results} record and {pulled.step_results} step results) and"
            f" {pulled.listings} record listings from {source} into {warehouse.path}"
        )
        if not no_publish:
            console.print(f"analytics snapshot: {warehouse.publish_snapshot()}")


@app.command(cls=Command)
@friendly
def adopt(
    flow_id: Annotated[str, typer.Option(help="The job's Runtype flow id.")],
    record_type: Annotated[str, typer.Option(help="The job's record type.")],
    run_key: Annotated[str, typer.Option(help="The night (run key) to settle.")],
    part: Annotated[
        str, typer.Option(help="The part of the night the error named (e.g. 'incremental 2/2').")
    ] = "",
    batch_id: Annotated[
        str | None, typer.Option(help="The batch that night's start became.")
    ] = None,
    start_new: Annotated[
        bool,
        typer.Option(
            "--start-new", help="None of the candidates is it: let the next run start afresh."
        ),
    ] = False,
    db: DbOption = None,
) -> None:
    """Settle a start that reconciliation could not (AmbiguousBatchError): attribute a batch to
    the job's night, checked against the API, or clear the night so the next run starts one."""
    from ..client import RuntypeClient
    from ..engine.jobs import Job
    from ..engine.starting import adopt_batch, forget_start
    from ..warehouse import open_warehouse

    if (batch_id is None) == (not start_new):
        raise typer.BadParameter("give exactly one of --batch-id and --start-new")
    job = Job(flow_id=flow_id, record_type=record_type)
    with open_warehouse(db) as warehouse:
        if start_new:
            forget_start(warehouse, job, run_key, part)
            console.print(f"{job.label} {run_key}: cleared; the next run starts a new batch")
            return
        assert batch_id is not None
        with RuntypeClient() as client:
            adopt_batch(client, warehouse, job, run_key, batch_id, part)
    console.print(f"{job.label} {run_key}: adopted batch {batch_id}; a re-run lands it")
