"""Checks that run before anything is started or Prefect is even imported: the key, the base
URL and every job's flow, each answered within seconds, each failure one line naming the fix.

It needs only the client, so the CLI can fail fast on a wrong key, an unknown flow or an
endpoint that does not answer, instead of after Prefect's temporary server has started.
"""

from __future__ import annotations

from collections.abc import Iterable

from .client import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RetryPolicy,
    RuntypeClient,
    RuntypeConnectionError,
)
from .jobs import Job

#: The preflight's retry budget: one quick second try, never the minutes a job may spend.
PREFLIGHT_RETRY = RetryPolicy(max_attempts=2, base_delay=0.5, max_total_seconds=2.0)


class PreflightError(Exception):
    """A check before the run failed; the message is one line naming the problem and fix."""


def check_access(client: RuntypeClient, jobs: Iterable[Job]) -> dict[str, str]:
    """Read every job's flow once; return {flow id: flow name}.

    Raises `PreflightError` for a rejected key, a key without access, an unknown flow or an
    endpoint that cannot be reached.
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
