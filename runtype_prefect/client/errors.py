"""The client's error hierarchy, split by what the caller should do.

``retryable`` answers one question: may the *same* call be sent again safely and usefully?
Rate limits, server errors, dropped connections and timeouts say yes; bad input, bad
credentials, missing resources and quota refusals say no. `RunStartUncertainError` says
neither: the run may have started, so the caller must reconcile before starting anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import BatchStatus


class RuntypeError(Exception):
    """Base class of every error the client raises."""

    retryable: bool = False


class RuntypeAPIError(RuntypeError):
    """The API answered with an error status.

    Attributes carry the HTTP status, the machine code and message from the error body
    (when the body had them) and the response's request id, for support tickets.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        request_id: str | None = None,
        method: str | None = None,
        url: str | None = None,
        details: list[Any] | None = None,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.method = method
        self.url = url
        self.details = details or []
        super().__init__(self._render())

    def _render(self) -> str:
        where = f" ({self.method} {self.url})" if self.method and self.url else ""
        code = f" {self.code}" if self.code else ""
        rid = f" [request id {self.request_id}]" if self.request_id else ""
        return f"HTTP {self.status_code}{code}: {self.message}{where}{rid}"


class BadRequestError(RuntypeAPIError):
    """400: the request was invalid (see ``details``)."""


class AuthenticationError(RuntypeAPIError):
    """401: the API key is missing, unknown, expired or revoked."""


class PaymentRequiredError(RuntypeAPIError):
    """402: the plan's quota or feature gate refused the call."""


class PermissionDeniedError(RuntypeAPIError):
    """403: the key lacks the scope the call needs."""


class NotFoundError(RuntypeAPIError):
    """404: the flow, batch or record does not exist (or is not visible to this key)."""


class ConflictError(RuntypeAPIError):
    """409: the resource already exists (e.g. a record with the same type and name)."""


class RateLimitError(RuntypeAPIError):
    """429: too many executions or requests; ``retry_after`` seconds, when the server said."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServerError(RuntypeAPIError):
    """5xx: the service (or a proxy in front of it) failed."""

    retryable = True


class RuntypeConnectionError(RuntypeError):
    """The request did not get an HTTP answer: refused, reset, dropped or unreadable."""

    retryable = True

    def __init__(self, message: str, *, request_sent: bool) -> None:
        #: False only when the server certainly never saw the request (connection refused).
        self.request_sent = request_sent
        super().__init__(message)


class RuntypeTimeoutError(RuntypeConnectionError):
    """The request timed out (connect, read, write or waiting for a pooled connection)."""


class MalformedResponseError(RuntypeError):
    """A success response whose body is not the JSON the spec describes."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        # A truncated body is a transport accident worth retrying; a schema mismatch is not.
        self.retryable = retryable
        super().__init__(message)


class RunStartUncertainError(RuntypeError):
    """Starting a run failed in a way that leaves open whether the server started it.

    Never retried blindly: a retry could start a duplicate batch. The caller should look for
    the run (e.g. in the batch summary) and reconnect to it, or start again only when sure.
    """

    def __init__(
        self, *, flow_id: str, target: str, started_at: datetime, cause: RuntypeError
    ) -> None:
        self.flow_id = flow_id
        #: What the run was over, in words ("record type 'lead'", "300 chosen records").
        self.target = target
        self.started_at = started_at
        self.cause = cause
        super().__init__(
            f"starting flow {flow_id!r} on {target} failed after the request was sent"
            f" ({cause}); the run may have started, reconcile before starting again"
        )


class UnknownBatchStatusError(RuntypeError):
    """The API reported a batch status this client does not know; never waited on."""

    def __init__(self, batch_id: str, status: object) -> None:
        self.batch_id = batch_id
        self.status = status
        super().__init__(
            f"batch {batch_id!r} reported unknown status {status!r}; expected one of"
            " queued, running, completed, failed, cancelled"
        )


class BatchWaitTimeout(RuntypeError):
    """A batch did not end (or, having said ``completed``, did not finish its records) before
    the wall-clock deadline. The batch is left running: waiting again reconnects to it."""

    def __init__(self, batch_id: str, elapsed: float, limit: float, last: BatchStatus | None):
        self.batch_id = batch_id
        self.elapsed = elapsed
        self.limit = limit
        self.last = last
        progress = (
            f"; last seen {last.status.value}, {last.processed_records}/{last.total_records}"
            " records processed"
            if last
            else "; its status could not be read"
        )
        super().__init__(
            f"batch {batch_id!r} did not finish within {limit:.3g}s (waited {elapsed:.1f}s)"
            f"{progress}. It was left running: a re-run reconnects to it."
        )


class BatchWaitStopped(RuntypeError):
    """Waiting for a batch was stopped by the caller (``should_stop``); the batch is untouched."""

    def __init__(self, batch_id: str, last: BatchStatus | None):
        self.batch_id = batch_id
        self.last = last
        super().__init__(f"stopped waiting for batch {batch_id!r}")


_BY_STATUS: dict[int, type[RuntypeAPIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
}


def error_class_for_status(status_code: int) -> type[RuntypeAPIError]:
    """Return the error class for an HTTP error status (5xx → `ServerError`)."""
    if status_code >= 500:
        return ServerError
    return _BY_STATUS.get(status_code, RuntypeAPIError)


def is_retryable(exc: BaseException) -> bool:
    """Return True when ``exc`` is a Runtype error that a retry of the same call may cure."""
    return isinstance(exc, RuntypeError) and exc.retryable
