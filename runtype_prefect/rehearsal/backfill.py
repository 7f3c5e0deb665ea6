"""The ``runtype-backfill`` flow: several simulated nights against the sandbox, so a new
install has history for its trends. Each night moves the sandbox's clock to that night at the
schedule's hour and runs the nightly flow with the night as its run key."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from prefect import flow, get_run_logger
from prefect.states import Failed

from ..client.sandbox_control import SandboxControl
from ..engine.jobs import Job
from ..engine.outcomes import JobResult
from ..orchestration.credentials import resolve_credentials
from ..orchestration.nightly import nightly

NIGHT_HOUR = 2  # the nightly schedule's hour (UTC)


@flow(name="runtype-backfill")
def backfill(
    nights: int = 7,
    jobs: list[Job] | None = None,
    jobs_file: str | None = None,
    last_night: date | None = None,
    db_path: str | None = None,
    credentials_block: str | None = None,
    last_night_time_scale: float = 0.0,
    poll_interval_seconds: float = 0.1,
    max_concurrent_jobs: int = 4,
) -> dict[str, list[JobResult]]:
    """Run the nightly flow for ``nights`` nights ending ``last_night`` (default: today, UTC).

    Sandbox only: raises `NotASandboxError` against any other API. Earlier nights finish at
    once; ``last_night_time_scale`` lets the last one run at a watchable pace. Every night
    runs; when any ended Failed (a failed job, or a night that failed whole: a bad jobs file,
    a failed preflight, a warehouse held too long), the backfill ends Failed naming those
    nights, with the results of every night as its data.
    """
    log = get_run_logger()
    last_night = last_night or datetime.now(UTC).date()
    credentials = resolve_credentials(credentials_block)
    results: dict[str, list[JobResult]] = {}
    failed: dict[str, str] = {}
    with SandboxControl(
        credentials.base_url, api_key=credentials.api_key.get_secret_value()
    ) as sandbox:
        sandbox.check()
        for n in range(nights):
            night = last_night - timedelta(days=nights - 1 - n)
            last = n == nights - 1
            sandbox.clock(
                now=datetime(night.year, night.month, night.day, NIGHT_HOUR, tzinfo=UTC),
                time_scale=last_night_time_scale if last else 0.0,
            )
            log.info("backfill night %s (%d/%d)", night, n + 1, nights)
            state = nightly(
                jobs=jobs,
                jobs_file=jobs_file,
                run_key=night.isoformat(),
                db_path=db_path,
                credentials_block=credentials_block,
                poll_interval_seconds=poll_interval_seconds,
                max_poll_interval_seconds=2.0,
                publish_snapshot=last,  # the analytics snapshot once, after the last night
                max_concurrent_jobs=max_concurrent_jobs,
                return_state=True,
            )
            outcome = state.result(raise_on_failure=False)
            results[night.isoformat()] = outcome if isinstance(outcome, list) else []
            if not state.is_completed():
                failed[night.isoformat()] = night_failure(state.message, outcome)
    if failed:
        message = f"{len(failed)} of {nights} nights failed: " + "; ".join(
            f"{night}: {why}" for night, why in failed.items()
        )
        log.error(message)
        return Failed(data=results, message=message)  # type: ignore[return-value]
    return results


def night_failure(message: str | None, outcome: object) -> str:
    """Return one line saying why a night failed: its run's message, else its error."""
    if message:
        return " ".join(line.strip() for line in message.splitlines())
    return f"{type(outcome).__name__}: {outcome}"
