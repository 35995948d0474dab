"""Where artifacts and snapshots live: a local folder, or an S3-compatible object store.

``--artifacts`` takes a folder path (the default: the data directory) or
``s3://bucket/prefix`` for any S3-compatible store (AWS S3, MinIO, Ceph, ...). Replicas on
several hosts then share model versions and dataset snapshots without a shared filesystem;
each keeps a verified local copy of what it loaded in its own data directory.

The S3 client takes everything from the standard AWS environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, ``AWS_REGION``,
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` for a non-AWS store, instance roles): no
credential is ever passed through driftloop's settings, so none can end up in an
artifact, a manifest, a log line or an error message (the store is named by its URL,
which holds only the bucket and prefix).

A model version or a snapshot is **one object**, an uncompressed tar of its folder,
uploaded under its final key: S3 makes an object visible only once its upload (single
PUT, or the completion of a multipart upload) has finished, so no reader ever sees a
partial one, and an interrupted upload leaves nothing under the key. The registry
records the folder's sha256 and checks the unpacked folder against it before anything is
loaded, so a corrupt or tampered object is refused, never loaded.
"""

from __future__ import annotations

import logging
import re
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from driftloop.errors import ConfigError, IntegrityError, NotFoundError
from driftloop.fsutil import atomic_directory

#: A string that starts like a URL (``scheme:``) rather than a folder path.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
SUPPORTED_SCHEMES = ("s3",)


class UnsupportedLocationError(ConfigError, ValueError):
    """An artifacts location whose URL scheme driftloop cannot store to."""


class ObjectMissingError(NotFoundError):
    """No object under the key."""


class CorruptObjectError(IntegrityError, ValueError):
    """An object that is not a readable archive (truncated, tampered with)."""


@dataclass(frozen=True)
class StoredObject:
    key: str  # relative to the store's prefix
    last_modified: datetime
    size: int


class ObjectStore(Protocol):
    """The few operations artifacts and snapshots need from a remote store. Keys are
    '/'-separated and relative to the store's own prefix."""

    url: str  # names the store in messages; never holds a credential

    def put_file(self, key: str, path: Path) -> None:
        """Upload ``path`` so that ``key`` shows all of it or nothing."""

    def get_file(self, key: str, path: Path) -> None:
        """Download ``key`` to ``path``; :class:`ObjectMissingError` if there is none."""

    def list(self, prefix: str) -> Iterator[StoredObject]:
        """Every object whose key starts with ``prefix``."""

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when it is already gone)."""

    def abort_stale_uploads(self, older_than: datetime) -> int:
        """Abort unfinished multipart uploads begun before ``older_than`` (their parts are
        invisible but take space); how many were aborted."""


class S3ObjectStore:
    """An S3 bucket and key prefix, through boto3 and the standard AWS environment."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        if client is None:
            import boto3  # noqa: PLC0415 - only deployments with an object store need it

            client = boto3.client("s3")
        # botocore logs every signed request at DEBUG (access key id, signature, headers):
        # a server run with --log-level debug must not write those to its log.
        for name in ("botocore", "boto3", "s3transfer"):
            if logging.getLogger(name).getEffectiveLevel() < logging.INFO:
                logging.getLogger(name).setLevel(logging.INFO)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_file(self, key: str, path: Path) -> None:
        # upload_file: one PUT below 8 MiB, a multipart upload above (aborted on error);
        # either way the key appears only when the whole object is there.
        self.client.upload_file(str(path), self.bucket, self._key(key))

    def get_file(self, key: str, path: Path) -> None:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        try:
            self.client.download_file(self.bucket, self._key(key), str(path))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise ObjectMissingError(f"{self.url}/{key} does not exist") from None
            raise

    def list(self, prefix: str) -> Iterator[StoredObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        start = len(self.prefix) + 1 if self.prefix else 0
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            for item in page.get("Contents", []):
                yield StoredObject(item["Key"][start:], item["LastModified"], item["Size"])

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def abort_stale_uploads(self, older_than: datetime) -> int:
        aborted = 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        prefix = f"{self.prefix}/" if self.prefix else ""
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < older_than:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                       UploadId=upload["UploadId"])
                    aborted += 1
        return aborted


def open_location(location: str | Path) -> ObjectStore | None:
    """The remote store ``location`` names, or ``None`` for a local folder path.

    A string that starts with a URL scheme other than ``s3:`` is refused by name instead of
    becoming a folder called ``gs:`` or ``s3:`` in the working directory.
    """
    if isinstance(location, Path):
        return None
    match = _SCHEME.match(location)
    if match is None:
        return None
    scheme = match.group(1).lower()
    if scheme not in SUPPORTED_SCHEMES:
        raise UnsupportedLocationError(
            f"artifacts: {location!r} uses the scheme {scheme!r}, which driftloop cannot "
            "store to; give a folder path or s3://bucket/prefix (any S3-compatible store)")
    rest = location[match.end():]
    if not rest.startswith("//") or not rest[2:].split("/", 1)[0]:
        raise UnsupportedLocationError(
            f"artifacts: {location!r} is not an s3://bucket/prefix URL (no bucket)")
    bucket, _, prefix = rest[2:].partition("/")
    return S3ObjectStore(bucket, prefix)


def pack(folder: Path, into: Path) -> Path:
    """``folder``'s files as one uncompressed tar (sorted, no owners or times that differ
    between hosts), written to a temporary file in ``into``; returns its path."""
    handle, name = tempfile.mkstemp(dir=into, prefix=".upload-", suffix=".tar")
    with open(handle, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = tar.gettarinfo(str(file), file.relative_to(folder).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            info.mode = 0o644
            with file.open("rb") as data:
                tar.addfile(info, data)
    return Path(name)


def unpack(archive: Path, folder: Path) -> None:
    """Extract ``archive`` into ``folder`` with tarfile's ``data`` filter: no absolute
    paths, no ``..``, no links or devices, so an object someone tampered with cannot
    write outside ``folder``. A damaged archive raises :class:`tarfile.TarError`."""
    with tarfile.open(archive, mode="r:") as tar:
        tar.extractall(folder, filter="data")


def upload(remote: ObjectStore, key: str, folder: Path) -> None:
    """``folder`` as one tar object under ``key`` (visible whole or not at all). The tar
    is built in the temporary directory, where a crash's leftover is the system's to
    clean, not in the store's folders."""
    archive = pack(folder, Path(tempfile.gettempdir()))
    try:
        remote.put_file(key, archive)
    finally:
        archive.unlink(missing_ok=True)


def download(remote: ObjectStore, key: str, final: Path,
             check: Callable[[Path], None]) -> None:
    """Unpack the tar object ``key`` into a temporary folder beside ``final``, run
    ``check(folder)`` on it (it raises to refuse the object), and only then rename it to
    ``final``: a folder under its final name has always passed the check. Another process
    that fetched the same object first wins the rename (its copy passed the same check)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=".fetch-") as scratch:
        archive = Path(scratch) / "object.tar"
        remote.get_file(key, archive)
        try:
            with atomic_directory(final) as tmp:
                try:
                    unpack(archive, tmp)
                except (tarfile.TarError, OSError) as exc:
                    raise CorruptObjectError(
                        f"{remote.url}/{key} is not a readable archive ({exc})") from exc
                check(tmp)
        except OSError:  # FileExistsError, or the rename lost to a concurrent fetch
            if not final.is_dir():
                raise
