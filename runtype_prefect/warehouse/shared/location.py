"""Where a shared warehouse lives: a URL on object storage (``s3://bucket/prefix``) or, for one
machine and the tests, a directory (``file:///path``), with the options its clients need.

Credentials and the endpoint come from the standard AWS variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` for an S3-compatible store),
which both delta-rs and boto3 read, so one place configures both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

SCHEMES = ("s3", "file")
#: Passed on to delta-rs when set in the environment.
_AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ALLOW_HTTP",
    "AWS_PROFILE",
)


def is_shared_location(location: str | os.PathLike[str] | None) -> bool:
    """Return True when ``location`` names a shared warehouse (a URL with a known scheme), not
    a DuckDB file."""
    if location is None:
        return False
    return urlparse(str(location)).scheme in SCHEMES


@dataclass(frozen=True)
class SharedLocation:
    """A parsed shared-warehouse URL: its scheme, bucket (or root directory) and prefix."""

    url: str
    scheme: str
    bucket: str
    prefix: str
    #: The AWS variables of the environment it was parsed in (credentials: kept out of repr).
    environ: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, url: str, environ: dict[str, str] | None = None) -> SharedLocation:
        """Return the location ``url`` names.

        Raises ValueError for another scheme, an S3 URL without a bucket, or a ``file:`` URL
        that is not absolute.
        """
        parsed = urlparse(url)
        # Only the AWS variables: the location is passed around, the rest of the environment
        # (other secrets) need not be.
        source = os.environ if environ is None else environ
        env = {k: v for k, v in source.items() if k in _AWS_VARIABLES and v}
        if parsed.scheme == "s3":
            if not parsed.netloc:
                raise ValueError(f"shared warehouse {url!r} names no bucket (s3://bucket/prefix)")
            return cls(url.rstrip("/"), "s3", parsed.netloc, parsed.path.strip("/"), env)
        if parsed.scheme == "file":
            if parsed.netloc or not parsed.path.startswith("/"):
                raise ValueError(f"shared warehouse {url!r} is not file:///absolute/path")
            return cls(url.rstrip("/"), "file", "", parsed.path.rstrip("/"), env)
        raise ValueError(
            f"{url!r} is not a shared warehouse location: expected s3://bucket/prefix or"
            " file:///path (a plain path is a DuckDB file)"
        )

    def table_uri(self, name: str) -> str:
        """Return the URI of the Delta table ``name`` under this location."""
        if self.scheme == "file":
            return str(Path(self.prefix) / name)
        return (
            f"s3://{self.bucket}/{self.prefix}/{name}"
            if self.prefix
            else f"s3://{self.bucket}/{name}"
        )

    def storage_options(self) -> dict[str, str]:
        """Return delta-rs's storage options: the AWS variables set, and commits made with a
        conditional put (S3 has put-if-absent since 2024) so concurrent writers on several
        machines never lose a commit, without a locking table."""
        if self.scheme == "file":
            return {}
        options = dict(self.environ)
        if "AWS_REGION" not in options and "AWS_DEFAULT_REGION" in options:
            options["AWS_REGION"] = options["AWS_DEFAULT_REGION"]
        endpoint = options.get("AWS_ENDPOINT_URL", "")
        if endpoint.startswith("http://"):
            options.setdefault("AWS_ALLOW_HTTP", "true")
        options["conditional_put"] = "etag"
        return options
