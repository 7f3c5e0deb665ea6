"""Small objects beside the tables (the run ledger), written with put-if-absent: of two
writers creating the same key, exactly one succeeds, on any machine. S3 (and S3-compatible
stores that honour ``If-None-Match: *``) through boto3; a directory through a hard link, which
fails when the name exists."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from ..connection import WarehouseError
from .location import SharedLocation


class SharedStorageError(WarehouseError):
    """The shared location cannot be reached or refused a request (credentials, bucket)."""


class ObjectStore(Protocol):
    """Keyed blobs under a shared location."""

    def create(self, key: str, body: bytes) -> bool:
        """Write ``body`` at ``key`` unless something is there; return True when this call
        wrote it."""
        ...

    def read(self, key: str) -> bytes | None:
        """Return the blob at ``key``, or None."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """Return every key under ``prefix``, sorted."""
        ...

    def check(self) -> None:
        """Raise `SharedStorageError` unless the store can be written (bucket, credentials)."""
        ...


class LocalObjects:
    """An `ObjectStore` in a directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def create(self, key: str, body: bytes) -> bool:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
            # A hard link is atomic and fails if the name exists: put-if-absent, and a reader
            # never sees half an object.
            os.link(temp, target)
            return True
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)

    def read(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def keys(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.exists():
            return []
        return sorted(
            str(p.relative_to(self.root))
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        )

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SharedStorageError(f"{self.root}: {exc}") from exc
        if not os.access(self.root, os.W_OK):
            raise SharedStorageError(f"{self.root} is not writable by this user")


class S3Objects:
    """An `ObjectStore` in an S3 bucket (or an S3-compatible store), under a prefix."""

    def __init__(self, location: SharedLocation) -> None:
        try:
            import boto3
        except ImportError as exc:  # pragma: no cover - the extra is part of every install here
            raise SharedStorageError(
                "a shared warehouse on S3 needs the 'shared' extra: pip install"
                " 'runtype-prefect[shared]'"
            ) from exc
        env = location.environ
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
        )
        self.bucket = location.bucket
        self.prefix = f"{location.prefix}/" if location.prefix else ""

    def _error(self, exc: Exception, key: str) -> SharedStorageError:
        return SharedStorageError(f"s3://{self.bucket}/{self.prefix}{key}: {exc}")

    def create(self, key: str, body: bytes) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.put_object(
                Bucket=self.bucket, Key=self.prefix + key, Body=body, IfNoneMatch="*"
            )
            return True
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            # 412: the key exists; 409: a concurrent conditional write of the key won.
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                return False
            raise self._error(exc, key) from exc
        except BotoCoreError as exc:
            raise self._error(exc, key) from exc

    def read(self, key: str) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._error(exc, key) from exc
        except BotoCoreError as exc:
            raise self._error(exc, key) from exc
        return bytes(answer["Body"].read())

    def keys(self, prefix: str) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        found: list[str] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                found.extend(o["Key"][len(self.prefix) :] for o in page.get("Contents", []))
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, prefix) from exc
        return sorted(found)

    def check(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise SharedStorageError(
                f"s3://{self.bucket}: {exc} (check the bucket, AWS_ENDPOINT_URL and the"
                " credentials)"
            ) from exc


def object_store(location: SharedLocation) -> ObjectStore:
    """Return the `ObjectStore` of ``location``."""
    if location.scheme == "file":
        return LocalObjects(Path(location.prefix))
    return S3Objects(location)


def check_location(url: str) -> None:
    """Raise unless the shared location ``url`` can be written: ValueError for a URL that names
    none, `SharedStorageError` for a bucket or directory that cannot be reached."""
    object_store(SharedLocation.parse(url)).check()
