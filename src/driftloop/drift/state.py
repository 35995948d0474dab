"""Persisting a detector, whole or window only, in the :mod:`driftloop.drift.codec` format.

``dump`` / ``load``: everything (reference profiles, policy, alarm streak, window), for a
restart. ``dump_window`` / ``load_window``: the window alone plus the reference's
fingerprint, for replicas that ship their counts to the process that merges them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from driftloop.drift import codec
from driftloop.drift.dispersion import Dispersion
from driftloop.drift.errors import DriftFormatError, IncompatibleDetectorError
from driftloop.drift.policy import AlarmState, DriftPolicy
from driftloop.drift.profile import CategoricalProfile, FeatureProfile, NumericProfile
from driftloop.drift.window import OpenPane, Pane

if TYPE_CHECKING:
    from driftloop.drift.detector import DriftDetector


@dataclass(frozen=True)
class WindowDelta:
    """A window's contents, ready to be summed into another detector's window."""

    closed: list[Pane]
    open_codes: npt.NDArray[np.int32]
    open_id: int
    events_seen: int
    first_pane: int | None

    @classmethod
    def of(cls, det: DriftDetector) -> WindowDelta:
        window = det._window
        return cls(list(window.closed), window.open.codes, window.open.id, det.events_seen,
                   det._first_pane)


def check_compatible(det: DriftDetector, fingerprint: str, settings: tuple[Any, ...]) -> None:
    if fingerprint != det.fingerprint:
        raise IncompatibleDetectorError("cannot merge detectors built on different references")
    if tuple(settings) != det.window_settings:
        raise IncompatibleDetectorError(
            f"cannot merge detectors with different windows (window, panes, pane_seconds): "
            f"{det.window_settings} vs {tuple(settings)}"
        )


def _window_parts(det: DriftDetector) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    arrays: dict[str, npt.NDArray[Any]] = {}
    panes = []
    for k, pane in enumerate(det._window.closed):
        panes.append({"id": pane.id, "events": pane.events})
        arrays[f"p{k}.missing"] = pane.missing
        for j, (slots, counts) in enumerate(zip(pane.slots, pane.counts, strict=True)):
            # Sorted slots as gaps: small numbers that deflate well.
            arrays[f"p{k}.{j}.slots"] = np.diff(slots, prepend=np.int32(0)).astype(np.int32)
            arrays[f"p{k}.{j}.counts"] = counts
    arrays["open.codes"] = det._window.open.codes
    meta = {
        "window": det.window,
        "panes": det.panes,
        "pane_seconds": det.pane_seconds,
        "events_seen": det.events_seen,
        "first_pane": det._first_pane,
        "closed": panes,
        "open_id": det._window.open.id,
    }
    return meta, arrays


def _read_window(meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]],
                 sizes: list[int]) -> WindowDelta:
    closed = []
    for k, pane in enumerate(meta["closed"]):
        slots = [np.cumsum(arrays[f"p{k}.{j}.slots"], dtype=np.int64).astype(np.int32)
                 if arrays[f"p{k}.{j}.slots"].size else np.zeros(0, dtype=np.int32)
                 for j in range(len(sizes))]
        counts = [arrays[f"p{k}.{j}.counts"] for j in range(len(sizes))]
        for s, c, size in zip(slots, counts, sizes, strict=True):
            in_range = s.size == 0 or (s[0] >= 0 and s[-1] < size and bool(np.all(np.diff(s) > 0)))
            if s.size != c.size or not in_range or np.any(c < 0):
                raise DriftFormatError(f"pane {pane['id']}: slot counts out of range")
        closed.append(Pane(int(pane["id"]), int(pane["events"]), slots, counts,
                           arrays[f"p{k}.missing"]))
    codes = arrays["open.codes"]
    if codes.shape[0] != len(sizes) or any(
        codes[j].size and (codes[j].min() < -1 or codes[j].max() >= size)
        for j, size in enumerate(sizes)
    ):
        raise DriftFormatError("open pane codes out of range")
    first = meta["first_pane"]
    return WindowDelta(closed, codes.astype(np.int32), int(meta["open_id"]),
                       int(meta["events_seen"]), None if first is None else int(first))


def dump_window(det: DriftDetector) -> bytes:
    meta, arrays = _window_parts(det)
    return codec.pack({"kind": "window", "fingerprint": det.fingerprint, **meta}, arrays,
                      compress=True)


def load_window(det: DriftDetector, data: bytes) -> WindowDelta:
    meta, arrays = codec.unpack(data)
    if meta.get("kind") != "window":
        raise DriftFormatError("not a detector window (use from_bytes for a whole detector)")
    check_compatible(det, str(meta.get("fingerprint")),
                     (meta.get("window"), meta.get("panes"), meta.get("pane_seconds")))
    try:
        return _read_window(meta, arrays, det._window.slot_sizes)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise DriftFormatError(f"detector window is inconsistent: {exc!r}") from exc


def dump(det: DriftDetector) -> bytes:
    arrays: dict[str, npt.NDArray[Any]] = {}
    columns: list[dict[str, Any]] = []
    for j, p in enumerate(det._columns):
        arrays[f"c{j}.counts"] = p.counts
        if isinstance(p, NumericProfile):
            arrays[f"c{j}.values"] = p.values
            columns.append({"name": p.name, "kind": p.kind, "missing": p.missing,
                            "psi_bins": p.psi_bins, "resolution": p.resolution})
        else:
            columns.append({"name": p.name, "kind": p.kind, "missing": p.missing,
                            "categories": p.categories})
    meta, window_arrays = _window_parts(det)
    arrays.update(window_arrays)
    state = {
        "kind": "detector",
        "columns": columns,
        "has_output": det._output is not None,
        "policy": det.policy.to_dict(),
        "alarm": det._alarm.to_dict(),
        "dispersion": det._dispersion.to_dict(),
        "output_source": det.output_source,
        **meta,
    }
    return codec.pack(state, arrays)


def load(cls: type[DriftDetector], data: bytes, policy: DriftPolicy | None,
         clock: Callable[[], float]) -> DriftDetector:
    state, arrays = codec.unpack(data)
    try:
        return _restore(cls, state, arrays, policy, clock)
    except DriftFormatError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise DriftFormatError(f"detector state is inconsistent: {exc!r}") from exc


def _restore(cls: type[DriftDetector], state: dict[str, Any],
             arrays: dict[str, npt.NDArray[Any]], policy: DriftPolicy | None,
             clock: Callable[[], float]) -> DriftDetector:
    if state.get("kind") != "detector":
        raise DriftFormatError("not a whole detector (a window goes to merge_window_bytes)")
    profiles: list[FeatureProfile] = []
    for j, col in enumerate(state["columns"]):
        counts = arrays[f"c{j}.counts"]
        if col["kind"] == "numeric":
            values = arrays[f"c{j}.values"]
            if values.size < 2 or values.size != counts.size or np.any(np.diff(values) <= 0):
                raise DriftFormatError(f"column {col['name']!r}: reference values are invalid")
            resolution = col.get("resolution")
            profiles.append(NumericProfile(col["name"], values, counts, int(col["missing"]),
                                           int(col["psi_bins"]),
                                           None if resolution is None else float(resolution)))
        else:
            if len(col["categories"]) != counts.size:
                raise DriftFormatError(f"column {col['name']!r}: categories and counts differ")
            profiles.append(CategoricalProfile(col["name"], list(col["categories"]), counts,
                                               int(col["missing"])))
    output = profiles.pop() if state["has_output"] else None
    det = cls(profiles, output=output, window=int(state["window"]), panes=int(state["panes"]),
              pane_seconds=state["pane_seconds"],
              policy=policy or DriftPolicy.from_dict(state["policy"]), clock=clock,
              output_source=state.get("output_source"))
    det._alarm = AlarmState.from_dict(state["alarm"])
    det._dispersion = Dispersion.from_dict(len(det._columns), state.get("dispersion"))
    delta = _read_window(state, arrays, det._window.slot_sizes)
    for pane in delta.closed:
        det._window.insert(pane)
    det._window.open = OpenPane(delta.open_id, det._window.slot_sizes)
    det._window.open.add(delta.open_codes)
    det.events_seen = delta.events_seen
    det._first_pane = delta.first_pane
    return det
