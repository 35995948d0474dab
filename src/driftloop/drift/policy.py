"""When drift statistics become an alarm.

A feature is *drifted* at an evaluation when its test is significant after a
multiple-testing correction across all monitored columns **and** its effect size clears
a floor (so that a huge window does not alarm on a shift too small to matter). The
dataset is drifted when enough features are, or any critical one is. An alarm — a
:class:`DriftEvent` — needs ``consecutive`` drifted evaluations in a row, and fires once
per episode: the next one can fire only after a clean evaluation.

The defaults come from ``benchmarks/drift_bench.py`` (20 numeric + 5 categorical features
resampled from scikit-learn's breast-cancer data, 100k-row reference, window 5000 in two
panes). Measured there: 0 false alarms in 500 stationary evaluations, while a 0.25 sd
shift of one feature alarmed within 2 panes. See the README for the table.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from driftloop.drift.report import DriftReport, FeatureDrift

Correction = Literal["bonferroni", "bh"]
Effect = Literal["psi", "js", "ks"]


@dataclass(frozen=True)
class DriftPolicy:
    """The alarm rule. Every field is validated; a bad value names itself.

    - ``alpha``: family-wise (Bonferroni) or false-discovery (BH) level across columns.
      0.001 rather than 0.01: one evaluation tests 25+ columns every pane, and the
      stationary benchmark showed occasional alarms at 0.01 with ``consecutive=1``.
    - ``effect`` / ``effect_floor``: the size a shift must reach. JS distance (base 2) by
      default because it is bounded, symmetric and defined for both feature kinds. 0.03
      sits above the 99th percentile of a stationary feature's JS distance at the default
      5000-event window (0.028 measured; median 0.017) and below a window fully shifted by
      0.1 sd (0.061) or 0.25 sd (0.14). Sampling noise shrinks as the window grows, so on
      large windows the floor is what stops trivial shifts from alarming.
    - ``min_fill``: share of the window that must hold events before any verdict.
    - ``min_count``: present (non-missing) values a column needs to be tested.
    - ``consecutive``: drifted evaluations in a row before an alarm.
    - ``drift_share``: the dataset is drifted when more than this share of features is
      (0.0: any one feature). ``critical`` features alarm on their own whatever the share;
      the model output does too while ``output_critical`` is set.
    """

    alpha: float = 0.001
    correction: Correction = "bonferroni"
    effect: Effect = "js"
    effect_floor: float = 0.03
    min_fill: float = 0.5
    min_count: int = 100
    consecutive: int = 2
    drift_share: float = 0.0
    critical: tuple[str, ...] = ()
    output_critical: bool = True

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("alpha", 0.0 < self.alpha < 1.0, "must be in (0, 1)"),
            ("correction", self.correction in ("bonferroni", "bh"), "must be 'bonferroni' or 'bh'"),
            ("effect", self.effect in ("psi", "js", "ks"), "must be 'psi', 'js' or 'ks'"),
            ("effect_floor", self.effect_floor >= 0.0, "must be >= 0"),
            ("min_fill", 0.0 <= self.min_fill <= 1.0, "must be in [0, 1]"),
            ("min_count", self.min_count >= 1, "must be >= 1"),
            ("consecutive", self.consecutive >= 1, "must be >= 1"),
            ("drift_share", 0.0 <= self.drift_share < 1.0, "must be in [0, 1)"),
        ]
        for name, ok, why in checks:
            if not ok:
                raise ValueError(f"DriftPolicy.{name} {why}, got {getattr(self, name)!r}")
        object.__setattr__(self, "critical", tuple(self.critical))

    def judge(self, columns: list[FeatureDrift], fill: float) -> list[FeatureDrift]:
        """Mark each column significant / drifted; ``columns[-1]`` may be the output."""
        effects = [self._effect_of(c) for c in columns]
        tested = [
            i for i, c in enumerate(columns)
            if fill >= self.min_fill and c.count >= self.min_count and c.tested
        ]
        significant = self._reject([columns[i] for i in tested], tested)
        return [
            c.with_verdict(
                effect=effects[i],
                significant=i in significant,
                drifted=i in significant and (effects[i] or 0.0) >= self.effect_floor,
            )
            for i, c in enumerate(columns)
        ]

    def dataset_drifted(self, features: list[FeatureDrift], output: FeatureDrift | None) -> bool:
        drifted = [f for f in features if f.drifted]
        if output is not None and output.drifted and self.output_critical:
            return True
        if any(f.name in self.critical for f in drifted):
            return True
        return bool(drifted) and len(drifted) / len(features) > self.drift_share

    def _effect_of(self, column: FeatureDrift) -> float | None:
        if self.effect == "psi":
            return column.psi
        if self.effect == "js":
            return column.js_distance
        return column.ks_statistic if column.kind == "numeric" else column.total_variation

    def _reject(self, tested: list[FeatureDrift], ids: list[int]) -> set[int]:
        """Ids of the columns whose null is rejected, out of ``m = len(tested)`` tests.

        A p-value above ``alpha`` is never rejected by either rule and does not change
        which others are, so those are settled by a cheap bound, not computed.
        """
        m = len(tested)
        if m == 0:
            return set()
        pairs = list(zip(ids, tested, strict=True))
        if self.correction == "bonferroni":
            return {i for i, c in pairs if not c.pvalue_above(self.alpha / m)}
        small = sorted((c.pvalue or 0.0, i) for i, c in pairs if not c.pvalue_above(self.alpha))
        passing = [k for k, (p, _) in enumerate(small, start=1) if p <= k / m * self.alpha]
        return {i for _, i in small[: passing[-1]]} if passing else set()

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftPolicy:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"DriftPolicy has no field {sorted(unknown)[0]!r}")
        return cls(**{**data, "critical": tuple(data.get("critical", ()))})


@dataclass(frozen=True)
class DriftEvent:
    """An alarm: ``consecutive`` drifted evaluations in a row.

    ``events_seen`` counts every event the detector observed up to the alarm, so the
    detection delay of a shift is ``events_seen`` minus the events seen before it.
    """

    report: DriftReport
    events_seen: int
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def detected_at(self) -> float:
        return self.report.evaluated_at

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return self.report.drifted_features

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "detected_at": self.detected_at,
            "events_seen": self.events_seen,
            "drifted_features": list(self.drifted_features),
            "output_drifted": bool(self.report.output and self.report.output.drifted),
            "drift_share": self.report.drift_share,
            "report": self.report.to_dict(),
        }


@dataclass
class AlarmState:
    """The policy's memory between evaluations: the current streak and whether it fired."""

    streak: int = 0
    fired: bool = False

    def update(self, drifted: bool, consecutive: int) -> bool:
        """Record one evaluation; True when it raises an alarm."""
        if not drifted:
            self.streak, self.fired = 0, False
            return False
        self.streak += 1
        if self.streak >= consecutive and not self.fired:
            self.fired = True
            return True
        return False
