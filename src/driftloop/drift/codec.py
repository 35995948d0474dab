"""The detector's byte format: a JSON header plus raw little-endian arrays, no pickle.

Layout, version 2::

    magic    8 bytes   b"DLDRIFT\\x00"
    version  u32 LE    2 (version 1, the same without compression, is still read)
    hlen     u64 LE    length of the header
    header   hlen bytes of UTF-8 JSON: {"state": {...}, "arrays": [[name, dtype, shape], ...],
                                        "compression": null | "zlib"}
    payload  the arrays, in header order, each C-contiguous little-endian; zlib-deflated
             as one stream when "compression" is "zlib"
    digest   32 bytes  sha256 of everything before it

Only the dtypes in :data:`ALLOWED_DTYPES` are accepted, the digest is checked before
anything is parsed or inflated, and every size is checked against the payload (a deflated
payload is inflated to at most the size its header declares), so corrupt or hostile bytes
raise :class:`DriftFormatError` and never allocate more than their header declares.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from typing import Any

import numpy as np
import numpy.typing as npt

from driftloop.drift.errors import DriftFormatError, DriftFormatVersionError

MAGIC = b"DLDRIFT\x00"
VERSION = 2
READABLE_VERSIONS = (1, 2)
ALLOWED_DTYPES = ("<f8", "<i8", "<i4")
_PREFIX = struct.Struct("<8sIQ")


def pack(state: dict[str, Any], arrays: dict[str, npt.NDArray[Any]], *,
         compress: bool = False) -> bytes:
    """Frame ``state`` (JSON-serialisable) and ``arrays`` into one checksummed blob;
    ``compress`` deflates the arrays (zlib level 1: small integers and runs of ones, as a
    window's counts are, shrink several-fold for little CPU)."""
    specs: list[list[Any]] = []
    chunks: list[bytes] = []
    for name, array in arrays.items():
        little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        if little.dtype.str not in ALLOWED_DTYPES:
            raise TypeError(f"array {name!r} has unsupported dtype {little.dtype.str}")
        specs.append([name, little.dtype.str, list(little.shape)])
        chunks.append(little.tobytes())
    payload = b"".join(chunks)
    if compress:
        payload = zlib.compress(payload, 1)
    header = json.dumps({"state": state, "arrays": specs,
                         "compression": "zlib" if compress else None},
                        separators=(",", ":")).encode()
    body = _PREFIX.pack(MAGIC, VERSION, len(header)) + header + payload
    return body + hashlib.sha256(body).digest()


def unpack(data: bytes) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """Inverse of :func:`pack`; raises :class:`DriftFormatError` on any inconsistency."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DriftFormatError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _PREFIX.size + 32 or data[:8] != MAGIC:
        raise DriftFormatError("not a driftloop detector state (bad magic or too short)")
    body, digest = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise DriftFormatError("detector state is corrupt: checksum mismatch")
    _, version, header_len = _PREFIX.unpack_from(body)
    if version not in READABLE_VERSIONS:
        raise DriftFormatVersionError(version, READABLE_VERSIONS)
    start = _PREFIX.size
    try:
        header = json.loads(body[start : start + header_len])
        state, specs = header["state"], header["arrays"]
        compression = header.get("compression")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DriftFormatError(f"detector state header is unreadable: {exc}") from exc
    offset = start + header_len
    if compression is not None:
        if compression != "zlib":
            raise DriftFormatError(f"unknown compression {compression!r}")
        body = _inflate(body[offset:], _declared_size(specs))
        offset = 0
    arrays: dict[str, npt.NDArray[Any]] = {}
    for spec in specs:
        try:
            name, dtype, shape = str(spec[0]), str(spec[1]), tuple(int(s) for s in spec[2])
        except (ValueError, TypeError, IndexError) as exc:
            raise DriftFormatError(f"bad array description {spec!r}") from exc
        if dtype not in ALLOWED_DTYPES or any(s < 0 for s in shape):
            raise DriftFormatError(f"array {name!r}: unsupported dtype or shape")
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if offset + size > len(body):
            raise DriftFormatError(f"array {name!r} runs past the end of the data")
        arrays[name] = np.frombuffer(body, dtype=dtype, count=size // np.dtype(dtype).itemsize,
                                     offset=offset).reshape(shape).astype(dtype[1:])
        offset += size
    if offset != len(body):
        raise DriftFormatError("detector state has trailing bytes")
    return state, arrays


def _declared_size(specs: Any) -> int:
    """Bytes the header's array descriptions add up to (checked again, array by array)."""
    try:
        return sum(int(np.prod([int(d) for d in spec[2]], dtype=np.int64))
                   * np.dtype(str(spec[1])).itemsize
                   for spec in specs if str(spec[1]) in ALLOWED_DTYPES)
    except (ValueError, TypeError, IndexError) as exc:
        raise DriftFormatError(f"bad array descriptions: {exc}") from exc


def _inflate(data: bytes, size: int) -> bytes:
    """Inflate at most ``size`` bytes: a deflate bomb stops at its declared size."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, size + 1)
    except zlib.error as exc:
        raise DriftFormatError(f"detector state does not inflate: {exc}") from exc
    if len(out) != size or not inflater.eof or inflater.unused_data:
        raise DriftFormatError("detector state inflates to a size its header does not declare")
    return out
