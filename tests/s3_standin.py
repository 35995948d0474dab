"""A local S3-compatible server for the object-store tests: moto's server mode, in its own
process, spoken to over real HTTP by the unmodified boto3 client.

driftloop reads the endpoint and the credentials from the standard AWS environment, as it
does in production; :func:`aws_env` is that environment for the stand-in (the key pair is
a fixed dummy that moto accepts and the tests look for in logs and artifacts).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
from tests.netproxy import free_port

ACCESS_KEY = "AKIASTANDIN0123456789"
SECRET_KEY = "standin/secret+key/that-must-never-be-logged"
#: Variables that would point boto3 at the developer's own account or profile.
_AWS_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL_S3")


@dataclass(frozen=True)
class S3StandIn:
    endpoint: str
    process: subprocess.Popen[bytes]

    def env(self, endpoint: str | None = None) -> dict[str, str]:
        """The AWS environment that points boto3 at the stand-in (or at ``endpoint``, a
        proxy in front of it)."""
        return aws_env(endpoint or self.endpoint)

    def client(self) -> object:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]

    def keys(self, bucket: str) -> list[str]:
        page = self.client().list_objects_v2(Bucket=bucket)  # type: ignore[attr-defined]
        return sorted(item["Key"] for item in page.get("Contents", []))


def aws_env(endpoint: str) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            # no retries: a test that cuts the connection wants the first failure
            "AWS_MAX_ATTEMPTS": "2"}


@contextmanager
def s3_standin(log_dir: Path) -> Iterator[S3StandIn]:
    """moto's S3 server on a free port until the block ends."""
    port = free_port()
    log = log_dir / f"moto-{port}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                 "-p", str(port)], stdout=sink, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"moto server did not start: {log.read_text()}") from None
                time.sleep(0.2)
        yield S3StandIn(endpoint, proc)
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def aws_environment(endpoint: str) -> Iterator[None]:
    """Set the stand-in's AWS environment in this process for the block."""
    saved = {k: os.environ.get(k) for k in (*aws_env(endpoint), *_AWS_ENV)}
    for key in _AWS_ENV:
        os.environ.pop(key, None)
    os.environ.update(aws_env(endpoint))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
