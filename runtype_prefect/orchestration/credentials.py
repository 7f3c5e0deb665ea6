"""`RuntypeCredentials`: a Prefect credentials block, a thin adapter over the client.

It stores what `RuntypeClient` takes (key, base URL, timeout, retry settings) and builds one;
it adds no second API. Flows take a block name and otherwise fall back to the environment.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prefect.blocks.abstract import CredentialsBlock
from pydantic import Field, SecretStr

from ..client import (
    DEFAULT_BASE_URL,
    DEFAULT_DASHBOARD_URL_TEMPLATE,
    RetryPolicy,
    RuntypeClient,
    resolve_api_key,
    resolve_base_url,
    resolve_dashboard_url_template,
)


class RuntypeCredentials(CredentialsBlock):
    """Credentials and connection settings for the Runtype API."""

    _block_type_name = "Runtype Credentials"
    _block_type_slug = "runtype-credentials"
    _description = "API key and connection settings for the Runtype API (runtype-prefect)."

    api_key: SecretStr = Field(description="Runtype API key (rt_live_… or rt_test_…).")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="API base URL, ending in /v1.")
    timeout_seconds: float = Field(default=30.0, gt=0, description="Per-request read timeout.")
    connect_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Longest wait for a connection to open."
    )
    max_attempts: int = Field(default=5, ge=1, description="Tries per call, first included.")
    max_retry_seconds: float = Field(
        default=120.0, ge=0, description="Longest total wait between tries of one call."
    )
    max_call_seconds: float = Field(
        default=60.0, gt=0, description="Longest time one call may take, every try included."
    )
    retry_base_delay: float = Field(
        default=0.5, ge=0, description="First backoff ceiling in seconds (doubles per try)."
    )
    dashboard_url_template: str = Field(
        default=DEFAULT_DASHBOARD_URL_TEMPLATE,
        description="The page a batch link in the Prefect UI opens: {flow_id} and {batch_id}"
        " are filled in (the sandbox serves http://127.0.0.1:8765/ui/batches/{batch_id}).",
    )

    @classmethod
    def from_env(cls) -> RuntypeCredentials:
        """Return credentials from ``RUNTYPE_API_KEY`` / ``RUNTYPE_BASE_URL`` (and
        ``RUNTYPE_DASHBOARD_URL_TEMPLATE``).

        Raises ValueError when no key is set.
        """
        return cls(
            api_key=resolve_api_key(None),
            base_url=resolve_base_url(None),
            dashboard_url_template=resolve_dashboard_url_template(),
        )

    def batch_page_url(self, flow_id: str, batch_id: str) -> str:
        """Return the page a person opens for this batch (``dashboard_url_template`` filled)."""
        return self.dashboard_url_template.format(flow_id=flow_id, batch_id=batch_id)

    def retry_policy(self) -> RetryPolicy:
        """Return the `RetryPolicy` these settings describe."""
        return RetryPolicy(
            max_attempts=self.max_attempts,
            max_total_seconds=self.max_retry_seconds,
            max_call_seconds=self.max_call_seconds,
            base_delay=self.retry_base_delay,
        )

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout_seconds, connect=self.connect_timeout_seconds)

    def get_client(
        self,
        request_hooks: list[Callable[[httpx.Request], None]] | None = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> RuntypeClient:
        """Return a new `RuntypeClient` built from these settings (close it when done);
        ``retry`` and ``timeout`` replace the block's (e.g. for a preflight's short budget)."""
        return RuntypeClient(
            self.api_key,
            self.base_url,
            timeout=timeout or self._timeout(),
            retry=retry or self.retry_policy(),
            request_hooks=request_hooks,
        )


def resolve_credentials(block_name: str | None = None) -> RuntypeCredentials:
    """Return the saved block ``block_name``, or credentials from the environment.

    Raises ValueError when neither a block name nor ``RUNTYPE_API_KEY`` is given.
    """
    if block_name:
        block = RuntypeCredentials.load(block_name)
        if not isinstance(block, RuntypeCredentials):  # Prefect types `load` as maybe-async
            raise TypeError(f"block {block_name!r} is a {type(block).__name__}")
        return block
    return RuntypeCredentials.from_env()
