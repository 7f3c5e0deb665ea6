"""The ``runtype-backfill`` flow: several simulated nights against the sandbox, so a new
install has history for its trends. Each night moves the sandbox's clock to that night at the
schedule's hour and runs the nightly flow with the night as its run key."""

# No postponed annotations here: a served flow is pickled by value with only the names its
# body uses, and Prefect validates its parameters against these annotations.

from datetime import UTC, date, datetime, timedelta

from prefect import flow, get_run_logger
from prefect.states import Failed

from ..client.sandbox_control import SandboxControl
from ..engine.jobs import Job
from ..engine.outcomes import JobResult
from ..engine.settings import JobSettings, NightSettings, Waiting
from ..orchestration.credentials import resolve_credentials
from ..orchestration.nightly import nightly

NIGHT_HOUR = 2  # the nightly schedule's hour (UTC)
#: The sandbox's nights end within seconds: a backfill polls them closely.
SANDBOX_PACE = JobSettings(
    waiting=Waiting(poll_interval_seconds=0.2, max_poll_interval_seconds=2.0)
)


@flow(name="runtype-backfill")
def backfill(
    nights: int = 7,
    jobs: list[Job] | None = None,
    jobs_file: str | None = None,
    last_night: date | None = None,
    last_night_time_scale: float = 0.0,
    settings: JobSettings = SANDBOX_PACE,
    night: NightSettings = NightSettings(),
) -> dict[str, list[JobResult]]:
    """Run the nightly flow for ``nights`` nights ending ``last_night`` (default: today, UTC).

    Sandbox only: raises `NotASandboxError` against any other API. Earlier nights finish at
    once; ``last_night_time_scale`` lets the last one run at a watchable pace. Every night
    runs; when any ended Failed (a failed job, or a night that failed whole: a bad jobs file,
    a failed preflight, a warehouse held too long), the backfill ends Failed naming those
    nights, with the results of every night as its data. The analytics snapshot is published
    once, after the last night.

    Args:
        nights: How many nights to land.
        jobs: The jobs of each night; empty: the jobs file's.
        jobs_file: A YAML file of jobs (deployments/jobs.yaml), read when jobs is empty.
        last_night: The last night to land; empty: today (UTC).
        last_night_time_scale: The sandbox's pace on the last night (0: at once).
        settings: How each job runs, as for the nightly.
        night: What each night adds, as for the nightly.
    """
    log = get_run_logger()
    last_night = last_night or datetime.now(UTC).date()
    credentials = resolve_credentials(settings.credentials_block)
    results: dict[str, list[JobResult]] = {}
    failed: dict[str, str] = {}
    with SandboxControl(
        credentials.base_url, api_key=credentials.api_key.get_secret_value()
    ) as sandbox:
        sandbox.check()
        for n in range(nights):
            day = last_night - timedelta(days=nights - 1 - n)
            last = n == nights - 1
            sandbox.clock(
                now=datetime(day.year, day.month, day.day, NIGHT_HOUR, tzinfo=UTC),
                time_scale=last_night_time_scale if last else 0.0,
            )
            log.info("backfill night %s (%d/%d)", day, n + 1, nights)
            publish = last and settings.publish_snapshot
            state = nightly(
                jobs=jobs,
                jobs_file=jobs_file,
                run_key=day.isoformat(),
                settings=settings.model_copy(update={"publish_snapshot": publish}),
                night=night,
                return_state=True,
            )
            outcome = state.result(raise_on_failure=False)
            results[day.isoformat()] = outcome if isinstance(outcome, list) else []
            if not state.is_completed():
                failed[day.isoformat()] = night_failure(state.message, outcome)
    if failed:
        message = f"{len(failed)} of {nights} nights failed: " + "; ".join(
            f"{day}: {why}" for day, why in failed.items()
        )
        log.error(message)
        return Failed(data=results, message=message)  # type: ignore[return-value]
    return results


def night_failure(message: str | None, outcome: object) -> str:
    """Return one line saying why a night failed: its run's message, else its error."""
    if message:
        return " ".join(line.strip() for line in message.splitlines())
    return f"{type(outcome).__name__}: {outcome}"
