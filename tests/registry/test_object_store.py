"""Model versions and dataset snapshots in an S3-compatible object store, over real HTTP.

moto's server runs in its own process; driftloop's unmodified boto3 client reaches it
through the standard AWS environment. Each "replica" is a registry with its own empty
cache folder, so nothing is shared except the database and the store.
"""

from __future__ import annotations

import io
import logging
import tarfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from tests.netproxy import Proxy
from tests.registry.helpers import small_model
from tests.s3_standin import ACCESS_KEY, SECRET_KEY, S3StandIn, aws_environment, s3_standin

from driftloop import db
from driftloop.data.snapshots import SnapshotIntegrityError, SnapshotStore
from driftloop.models.base import adapter_named
from driftloop.objectstore import UnsupportedLocationError
from driftloop.registry import ArtifactIntegrityError, ModelRegistry

X = np.random.default_rng(1).normal(size=(20, 3))


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3StandIn]:
    with s3_standin(tmp_path_factory.mktemp("moto")) as standin:
        yield standin


@pytest.fixture
def bucket(s3: S3StandIn) -> Iterator[str]:
    name = f"dl-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(name)
    with aws_environment(s3.endpoint):
        yield name


def replica(db_url: str, bucket: str, cache: Path) -> ModelRegistry:
    return ModelRegistry.open(db_url, artifacts=f"s3://{bucket}/ml", cache=cache)


@pytest.mark.parametrize("location", ["gs://bucket/models", "file:///srv/models",
                                      "https://example.com/models", "s3:models", "s3://"])
def test_a_location_with_an_unsupported_scheme_is_refused_by_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, location: str) -> None:
    """Before: every string was a folder path, so "s3://bucket/models" quietly became the
    local folder ./s3:/bucket/models and replicas never saw each other's models."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsupportedLocationError, match="artifacts: ") as info:
        ModelRegistry.open(f"sqlite:///{tmp_path}/r.db", artifacts=location)
    assert repr(location) in str(info.value)
    assert not any(p.name.endswith(":") for p in tmp_path.rglob("*"))


def test_s3_artifacts_are_stored_in_the_bucket_not_a_local_folder(
        db_url: str, bucket: str, s3: S3StandIn, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    reg = ModelRegistry.open(db_url, artifacts=f"s3://{bucket}/models", cache=tmp_path / "c")
    reg.push_candidate("churn", small_model())
    assert s3.keys(bucket) == ["models/models/churn/1.tar"]
    assert not (tmp_path / "s3:").exists()


def test_a_version_pushed_on_one_replica_loads_verified_on_another(
        db_url: str, bucket: str, s3: S3StandIn, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    model = small_model()
    first = replica(db_url, bucket, tmp_path / "a")
    v = first.push_candidate("churn", model)
    first.promote_candidate("churn", v.version)
    second = replica(db_url, bucket, tmp_path / "b")
    assert not (tmp_path / "b").exists()
    loaded = second.load("churn", v.version)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    # the fetched copy is the verified folder under the recorded path
    assert (tmp_path / "b" / v.artifact_path / "artifact.json").is_file()
    # no credential anywhere: object bytes, database rows, log records
    body = s3.client().get_object(Bucket=bucket, Key=f"ml/{v.artifact_path}.tar")["Body"].read()
    with first.engine.connect() as conn:
        rows = repr(conn.execute(sa.select(db.model_versions)).all())
        rows += repr(conn.execute(sa.select(db.audit_log)).all())
    for secret in (SECRET_KEY, ACCESS_KEY):
        assert secret.encode() not in body
        assert secret not in rows
        assert secret not in caplog.text


def _rewrite_member(body: bytes, change: bytes) -> bytes:
    """The tar ``body`` with ``change`` appended to its first model file: a valid
    archive with one altered file (what a tampered or bit-rotted object looks like)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(body)) as source, \
            tarfile.open(fileobj=out, mode="w") as tar:
        changed = False
        for member in source.getmembers():
            data = source.extractfile(member).read()  # type: ignore[union-attr]
            if not changed and member.name != "artifact.json":
                data, changed = data + change, True
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("damage", ["altered file", "truncated object"])
def test_a_corrupt_object_is_refused_and_never_cached(
        db_url: str, bucket: str, s3: S3StandIn, tmp_path: Path, damage: str) -> None:
    v = replica(db_url, bucket, tmp_path / "a").push_candidate("churn", small_model())
    key = f"ml/{v.artifact_path}.tar"
    client = s3.client()
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    bad = _rewrite_member(body, b"x") if damage == "altered file" else body[:700]
    client.put_object(Bucket=bucket, Key=key, Body=bad)
    fresh = replica(db_url, bucket, tmp_path / "b")
    with pytest.raises(ArtifactIntegrityError, match="not loaded"):
        fresh.load("churn", v.version)
    assert not (tmp_path / "b" / v.artifact_path).exists()
    with pytest.raises(ArtifactIntegrityError):  # and again: nothing half-trusted was kept
        fresh.load("churn", v.version)


def test_an_upload_cut_midway_leaves_no_version_row_and_no_object(
        db_url: str, bucket: str, s3: S3StandIn, tmp_path: Path) -> None:
    port = int(s3.endpoint.rsplit(":", 1)[1])
    proxy = Proxy(port, cut_after=4000)  # the request line, headers and part of the body
    try:
        with aws_environment(f"http://127.0.0.1:{proxy.port}"):
            reg = replica(db_url, bucket, tmp_path / "a")
            with pytest.raises(Exception, match=r"(?i)connection|closed|aborted|reset"):
                reg.push_candidate("churn", small_model())
    finally:
        proxy.close()
    assert proxy.connections >= 1
    assert s3.keys(bucket) == []
    assert reg.list_versions("churn") == []
    assert not (tmp_path / "a" / "models" / "churn" / "1").exists()
    # the next push works and takes a new number: a gap, never a reused version
    again = replica(db_url, bucket, tmp_path / "a").push_candidate("churn", small_model())
    assert again.version == 2


def test_garbage_collection_deletes_only_unreferenced_old_objects(
        db_url: str, bucket: str, s3: S3StandIn, tmp_path: Path) -> None:
    reg = replica(db_url, bucket, tmp_path / "a")
    kept = reg.push_candidate("churn", small_model())
    # a push killed between its upload and its row: an object no row references
    sklearn = adapter_named("sklearn", reg.adapters)
    orphan = reg.artifacts.write("churn", 99, small_model(1), sklearn)
    assert f"ml/{orphan.path}.tar" in s3.keys(bucket)
    assert reg.collect_garbage(older_than=3600) == []  # young: may be a push in progress
    # and a multipart upload that never completed: invisible, but its parts take space
    # (moto reports every upload as initiated in 2010, so only "old" can be tested here)
    client = s3.client()
    started = client.create_multipart_upload(Bucket=bucket, Key="ml/models/churn/98.tar")
    client.upload_part(Bucket=bucket, Key="ml/models/churn/98.tar", PartNumber=1,
                       UploadId=started["UploadId"], Body=b"x" * 1024)
    removed = reg.collect_garbage(older_than=0)
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert f"s3://{bucket}/ml/{orphan.path}.tar" in removed
    assert s3.keys(bucket) == [f"ml/{kept.artifact_path}.tar"]
    replica(db_url, bucket, tmp_path / "b").load("churn", kept.version)


def frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return pd.DataFrame({"request_id": [f"r{i}" for i in range(n)],
                         "event_timestamp": [start + timedelta(minutes=i) for i in range(n)],
                         "x": rng.normal(size=n), "label": rng.integers(0, 2, n)})


def test_snapshots_travel_through_the_store_and_are_verified_on_arrival(
        db_url: str, bucket: str, s3: S3StandIn, tmp_path: Path) -> None:
    writer = SnapshotStore.for_registry(replica(db_url, bucket, tmp_path / "a"))
    snap = writer.write(frame())
    assert f"ml/datasets/{snap.id}.tar" in s3.keys(bucket)
    reader = SnapshotStore.for_registry(replica(db_url, bucket, tmp_path / "b"))
    got = reader.get(snap.id)
    assert got.path == tmp_path / "b" / "datasets" / snap.id
    pd.testing.assert_frame_equal(pd.read_parquet(got.train_path),
                                  pd.read_parquet(snap.train_path))
    reader.verify(snap.id)
    # what a training process on another replica does first: verify by id
    trainer = SnapshotStore.for_registry(replica(db_url, bucket, tmp_path / "t"))
    assert trainer.verify(snap.id).path == tmp_path / "t" / "datasets" / snap.id
    # a tampered object is refused on a third replica, and nothing lands in its cache
    key = f"ml/datasets/{snap.id}.tar"
    client = s3.client()
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    client.put_object(Bucket=bucket, Key=key, Body=_rewrite_member(body, b"\0"))
    third = SnapshotStore.for_registry(replica(db_url, bucket, tmp_path / "c"))
    with pytest.raises(SnapshotIntegrityError):
        third.get(snap.id)
    assert not (tmp_path / "c" / "datasets" / snap.id).exists()


def test_a_snapshot_object_without_a_row_is_collected(
        db_url: str, bucket: str, s3: S3StandIn, tmp_path: Path) -> None:
    reg = replica(db_url, bucket, tmp_path / "a")
    store = SnapshotStore.for_registry(reg)
    kept = store.write(frame())
    with db.transaction(reg.engine) as conn:  # as if the write died before its row
        conn.execute(sa.delete(db.dataset_snapshots).where(db.dataset_snapshots.c.id == kept.id))
    lost = kept.id
    kept = store.write(frame())
    removed = reg.collect_garbage(older_than=0)
    assert removed == [f"s3://{bucket}/ml/datasets/{lost}.tar"]
    assert s3.keys(bucket) == [f"ml/datasets/{kept.id}.tar"]
