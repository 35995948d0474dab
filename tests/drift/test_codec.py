"""The byte format refuses corrupt, truncated and foreign data with a clear error."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest
from tests.drift.helpers import with_version

from driftloop.drift import DriftDetector, DriftFormatError, IncompatibleDetectorError, codec
from driftloop.drift.errors import DriftFormatVersionError


@pytest.fixture
def blob() -> bytes:
    rng = np.random.default_rng(3)
    reference = {"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)}
    det = DriftDetector.from_reference(reference, window=100, panes=2)
    det.observe({"x": rng.normal(size=150), "c": rng.choice(["a", "b"], 150)})
    return det.to_bytes()


def test_every_single_byte_flip_is_detected(blob: bytes) -> None:
    for position in range(0, len(blob), max(1, len(blob) // 200)):
        damaged = bytearray(blob)
        damaged[position] ^= 0x55
        with pytest.raises(DriftFormatError):
            DriftDetector.from_bytes(bytes(damaged))


@pytest.mark.parametrize("cut", [0, 10, 40, -1, -33])
def test_truncated_data_is_refused(blob: bytes, cut: int) -> None:
    with pytest.raises(DriftFormatError):
        DriftDetector.from_bytes(blob[:cut])


def test_foreign_data_and_types_are_refused() -> None:
    with pytest.raises(DriftFormatError, match="magic"):
        DriftDetector.from_bytes(b"\x80\x04K\x01." * 10)  # a pickle is not a detector
    with pytest.raises(DriftFormatError, match="expected bytes"):
        DriftDetector.from_bytes("text")  # type: ignore[arg-type]


def test_other_versions_are_refused_by_number(blob: bytes) -> None:
    with pytest.raises(DriftFormatError, match="version 99"):
        DriftDetector.from_bytes(with_version(blob, 99))


def test_a_newer_version_is_called_newer_with_both_versions(blob: bytes) -> None:
    with pytest.raises(DriftFormatVersionError) as newer:
        DriftDetector.from_bytes(with_version(blob, codec.VERSION + 1))
    assert (newer.value.found, newer.value.newer) == (codec.VERSION + 1, True)
    assert str(newer.value).startswith(f"detector state version {codec.VERSION + 1} is newer "
                                       "than this driftloop reads (versions 1, 2)")
    with pytest.raises(DriftFormatVersionError) as unknown:
        DriftDetector.from_bytes(with_version(blob, 0))
    assert not unknown.value.newer and "not supported" in str(unknown.value)


def test_well_formed_but_inconsistent_state_is_refused() -> None:
    state = {"kind": "detector",
             "columns": [{"name": "x", "kind": "numeric", "missing": 0, "psi_bins": 10}]}
    sealed = codec.pack(state, {"c0.counts": np.array([1, 2]), "c0.values": np.array([2.0, 1.0])})
    with pytest.raises(DriftFormatError, match="'x'"):
        DriftDetector.from_bytes(sealed)
    with pytest.raises(DriftFormatError, match="inconsistent"):
        DriftDetector.from_bytes(codec.pack({"kind": "detector", "columns": []}, {}))


def test_window_bytes_merge_like_detectors_and_are_not_detectors(blob: bytes) -> None:
    replica = DriftDetector.from_bytes(blob)
    direct = DriftDetector.from_bytes(blob).merge(replica)
    shipped = DriftDetector.from_bytes(blob).merge_window_bytes(replica.window_bytes())
    assert shipped.to_bytes() == direct.to_bytes()
    assert len(replica.window_bytes()) < len(blob) / 3  # no reference inside
    with pytest.raises(DriftFormatError, match="not a whole detector"):
        DriftDetector.from_bytes(replica.window_bytes())
    with pytest.raises(DriftFormatError, match="not a detector window"):
        replica.merge_window_bytes(blob)
    rng = np.random.default_rng(4)
    other = DriftDetector.from_reference({"x": rng.normal(size=500),
                                          "c": rng.choice(["a", "b"], 500)}, window=100, panes=2)
    with pytest.raises(IncompatibleDetectorError, match="different references"):
        other.merge_window_bytes(replica.window_bytes())


def test_only_plain_numeric_dtypes_are_written() -> None:
    with pytest.raises(TypeError, match="dtype"):
        codec.pack({}, {"a": np.array(["x"], dtype=object)})


def test_a_deflate_bomb_stops_at_the_declared_size() -> None:
    import zlib  # noqa: PLC0415

    header = b'{"state":{},"arrays":[["a","<i4",[4]]],"compression":"zlib"}'
    payload = zlib.compress(b"\0" * 10_000_000)
    body = struct.pack("<8sIQ", codec.MAGIC, codec.VERSION, len(header)) + header + payload
    with pytest.raises(DriftFormatError, match="does not declare"):
        codec.unpack(body + hashlib.sha256(body).digest())


def test_compressed_arrays_round_trip() -> None:
    arrays = {"a": np.arange(1000, dtype=np.int32), "b": np.ones(50, dtype=np.int64)}
    state, back = codec.unpack(codec.pack({"k": 1}, arrays, compress=True))
    assert state == {"k": 1}
    assert all(np.array_equal(back[k], v) for k, v in arrays.items())
