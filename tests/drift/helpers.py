"""Shared helpers for the drift tests: raw-window bookkeeping and direct recomputation."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import numpy.typing as npt


def fixed_clock() -> float:
    return 0.0


def window_rows(n: int, pane_size: int, panes: int) -> slice:
    """Rows of an n-row count-based stream that sit in the window: the last closed panes."""
    closed = n // pane_size
    return slice(max(0, closed - panes) * pane_size, closed * pane_size)


def direct_psi(reference: npt.NDArray[np.int64], current: npt.NDArray[np.int64]) -> float:
    """PSI written out term by term, independently of driftloop.drift.stats."""
    total = 0.0
    r_sum, c_sum = reference.sum(), current.sum()
    for r_count, c_count in zip(reference.tolist(), current.tolist(), strict=True):
        r = r_count / r_sum or 1e-4
        c = c_count / c_sum or 1e-4
        total += (c - r) * np.log(c / r)
    return float(total)


def with_version(blob: bytes, version: int) -> bytes:
    """Detector bytes relabelled as codec format ``version``, with a valid digest: what
    another driftloop release would write."""
    body = bytearray(blob[:-32])
    struct.pack_into("<I", body, 8, version)
    return bytes(body) + hashlib.sha256(bytes(body)).digest()
