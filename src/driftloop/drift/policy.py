"""When drift statistics become an alarm, and how often one is false.

A feature is *drifted* at an evaluation when its test is significant after a
multiple-testing correction across all monitored columns **and** its effect size clears
a floor (so that a huge window does not alarm on a shift too small to matter). Each
column is tested twice: its distribution (KS or chi-square) and its missing share (a 2x2
chi-square), in one family. The dataset is drifted when enough features are, or any
critical one is.

What is controlled, and how:

- **false alarms over time**. The user states a rate, ``false_alarms_per_million`` events
  (default 0.5, i.e. 0.05 per 100k) or ``false_alarms_per_day``; the per-evaluation level
  is that rate divided by the evaluations per unit (one per pane). By the union bound
  over evaluations this holds the expected number of false alarms per unit at the stated
  rate whatever the dependence between overlapping windows; persistence and the effect
  floor only lower it further. An explicit ``alpha`` overrides the derived level.
- **clustered traffic**. Tests assume independent rows; the detector measures how much
  more the live panes vary than that (:mod:`driftloop.drift.dispersion`) and deflates
  each statistic by it, so the level above stays valid on clustered streams.
- **effect sizes that mean the same for every feature**: JS and PSI are biased upwards
  by sampling noise by about ``(k - 1) / (8 ln2 N)`` (JS², bits) and ``(k - 1) / N``
  (PSI) for ``k`` bins and effective size ``N = nm / (n + m)``, times the inflation.
  The floor applies to the bias-corrected value, so 0.03 means a real JS distance of
  0.03 whether a feature has 2 bins or 200 and whether the window holds 500 events or
  50,000.
- **one alarm per episode**. An alarm needs ``consecutive`` drifted evaluations (and a
  stream long enough to know its clustering: no alarm in its first panes); the
  episode it opens ends only after ``clear_after`` clean evaluations in a row (p-values
  above ``clear_pvalue``, not just below the alarm level). Drift of
  the same columns within an episode raises nothing more; drift of new columns updates
  the episode's alarm (same id, ``update`` counting up) instead of opening another.

Measured with ``benchmarks/drift_validity.py`` (docs/statistics.md has the tables).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from driftloop.drift.report import DriftReport, FeatureDrift

#: The model output's name among a report's columns.
OUTPUT = "output"
Correction = Literal["bonferroni", "bh"]
Effect = Literal["psi", "js", "ks"]
Dependence = Literal["panes", "independent"]
#: The highest per-evaluation level a stated rate may produce (a rate that high is a
#: misconfiguration, not a monitoring policy).
MAX_LEVEL = 0.05
LN2 = math.log(2.0)
#: The level when no evaluation rate is known: a batch report, or no traffic yet.
UNKNOWN_RATE_LEVEL = 0.001


@dataclass(frozen=True)
class DriftPolicy:
    """The alarm rule. Every field is validated; a bad value names itself.

    - ``false_alarms_per_million`` / ``false_alarms_per_day``: the expected number of false
      alarms the user accepts per million events / per day on stationary traffic. The
      per-evaluation level is derived from it (:meth:`level`); per day needs time-based
      panes, whose evaluation rate is known. Per day wins when both are set.
    - ``alpha``: an explicit per-evaluation level (family-wise for Bonferroni, false
      discovery for BH); when set, the rates above are ignored.
    - ``effect`` / ``effect_floor``: the size a shift must reach, bias-corrected (see the
      module doc). JS distance (base 2) by default because it is bounded, symmetric and
      defined for both feature kinds; 0.03 is below a window fully shifted by 0.1 sd
      (0.06) and far above the corrected stationary JS (mostly 0).
    - ``min_fill``: share of the window that must hold events before any verdict.
    - ``min_count``: present (non-missing) values a column needs to be tested.
    - ``consecutive``: drifted evaluations in a row before an alarm. 1 by default: the
      level already controls the rate, and a shift the test detects only now and then
      (power near the level) would wait many panes for two in a row; each extra one costs
      at least a pane of delay.
    - ``clear_after`` / ``clear_pvalue``: an episode ends after ``clear_after`` clean
      evaluations in a row, *clean* meaning that every column the episode alarmed on has
      a p-value above ``clear_pvalue`` (not merely above the alarm level): a persistent
      shift the test catches only now and then keeps its p-values small, and stays one
      episode.
    - ``dependence``: ``"panes"`` deflates each test by the variance inflation measured
      between live panes (valid on clustered traffic); ``"independent"`` trusts the rows
      to be independent draws (inflation 1: a little more power, false alarms on
      clustered traffic).
    - ``drift_share``: the dataset is drifted when more than this share of features is
      (0.0: any one feature). ``critical`` features alarm on their own whatever the share;
      the model output does too while ``output_critical`` is set.
    """

    false_alarms_per_million: float | None = 0.5
    false_alarms_per_day: float | None = None
    alpha: float | None = None
    correction: Correction = "bonferroni"
    effect: Effect = "js"
    effect_floor: float = 0.03
    min_fill: float = 0.5
    min_count: int = 100
    consecutive: int = 1
    clear_after: int = 3
    clear_pvalue: float = 0.05
    dependence: Dependence = "panes"
    drift_share: float = 0.0
    critical: tuple[str, ...] = ()
    output_critical: bool = True

    def __post_init__(self) -> None:
        def rate_ok(value: float | None) -> bool:
            return value is None or (math.isfinite(value) and value > 0.0)

        checks: list[tuple[str, bool, str]] = [
            ("alpha", self.alpha is None or 0.0 < self.alpha < 1.0,
             "must be None or in (0, 1)"),
            ("false_alarms_per_million", rate_ok(self.false_alarms_per_million),
             "must be None or a finite number > 0"),
            ("false_alarms_per_day", rate_ok(self.false_alarms_per_day),
             "must be None or a finite number > 0"),
            ("correction", self.correction in ("bonferroni", "bh"), "must be 'bonferroni' or 'bh'"),
            ("effect", self.effect in ("psi", "js", "ks"), "must be 'psi', 'js' or 'ks'"),
            ("effect_floor", self.effect_floor >= 0.0, "must be >= 0"),
            ("min_fill", 0.0 <= self.min_fill <= 1.0, "must be in [0, 1]"),
            ("min_count", self.min_count >= 1, "must be >= 1"),
            ("consecutive", self.consecutive >= 1, "must be >= 1"),
            ("clear_after", self.clear_after >= 1, "must be >= 1"),
            ("clear_pvalue", 0.0 <= self.clear_pvalue < 1.0, "must be in [0, 1)"),
            ("dependence", self.dependence in ("panes", "independent"),
             "must be 'panes' or 'independent'"),
            ("drift_share", 0.0 <= self.drift_share < 1.0, "must be in [0, 1)"),
        ]
        for name, ok, why in checks:
            if not ok:
                raise ValueError(f"DriftPolicy.{name} {why}, got {getattr(self, name)!r}")
        if (self.alpha is None and self.false_alarms_per_million is None
                and self.false_alarms_per_day is None):
            raise ValueError("DriftPolicy.false_alarms_per_million: state a false-alarm rate "
                             "(per million events or per day) or an explicit alpha")
        object.__setattr__(self, "critical", tuple(self.critical))

    def level(self, evaluations_per_million: float | None,
              evaluations_per_day: float | None) -> float:
        """The per-evaluation level: ``alpha`` if given, else the stated false-alarm rate
        divided by the evaluation rate (a union bound over evaluations)."""
        if self.alpha is not None:
            return self.alpha
        if self.false_alarms_per_day is not None:
            if evaluations_per_day is None:
                raise ValueError("DriftPolicy.false_alarms_per_day needs time-based panes "
                                 "(pane_seconds) so that evaluations per day are known; with "
                                 "count-based panes state false_alarms_per_million")
            return min(MAX_LEVEL, self.false_alarms_per_day / evaluations_per_day)
        assert self.false_alarms_per_million is not None
        if evaluations_per_million is None:  # rate unknown (no traffic yet, or a batch)
            return UNKNOWN_RATE_LEVEL
        return min(MAX_LEVEL, self.false_alarms_per_million / evaluations_per_million)

    def judge(self, columns: list[FeatureDrift], fill: float,
              level: float | None = None) -> list[FeatureDrift]:
        """Mark each column significant / drifted at family level ``level`` (default:
        :meth:`level` with no known evaluation rate); ``columns[-1]`` may be the output."""
        if level is None:
            level = self.level(None, None)
        ready = fill >= self.min_fill
        tests: list[tuple[int, bool, FeatureDrift]] = []  # (column, is_missing_test, column)
        for i, c in enumerate(columns):
            if ready and c.count >= self.min_count and c.tested:
                tests.append((i, False, c))
            if (ready and c.count + c.missing >= self.min_count
                    and c.missing_pvalue is not None and c.reference_missing + c.missing > 0):
                tests.append((i, True, c))
        rejected = self._reject(tests, level)
        out = []
        for i, c in enumerate(columns):
            effect, missing_effect = self._effect_of(c), self._missing_effect_of(c)
            significant = (i, False) in rejected
            missing_significant = (i, True) in rejected
            out.append(c.with_verdict(
                effect=effect, significant=significant or missing_significant,
                drifted=significant and (effect or 0.0) >= self.effect_floor,
                missing_effect=missing_effect,
                missing_drifted=missing_significant
                and (missing_effect or 0.0) >= self.effect_floor))
        return out

    def clean(self, report: DriftReport, columns: tuple[str, ...]) -> bool:
        """Whether ``report`` shows none of ``columns`` drifting, even weakly: not drifted,
        and each column's p-values (distribution, missing share) above ``clear_pvalue``."""
        if report.drifted:
            return False
        for name in columns:
            column = report.output if name == OUTPUT else report.features.get(name)
            if column is None:
                continue
            for p in (column.adjusted_pvalue, column.missing_adjusted_pvalue):
                if p is not None and p <= self.clear_pvalue:
                    return False
        return True

    def dataset_drifted(self, features: list[FeatureDrift], output: FeatureDrift | None) -> bool:
        drifted = [f for f in features if f.drifted]
        if output is not None and output.drifted and self.output_critical:
            return True
        if any(f.name in self.critical for f in drifted):
            return True
        return bool(drifted) and len(drifted) / len(features) > self.drift_share

    def _effect_of(self, column: FeatureDrift) -> float | None:
        size = _effective_size(column.reference_count, column.count)
        k, phi = column.bins_used, column.inflation
        if self.effect == "psi":
            return _debiased_psi(column.psi, k, size, phi)
        if self.effect == "js":
            return _debiased_js(column.js_distance, k, size, phi)
        return column.ks_statistic if column.kind == "numeric" else column.total_variation

    def _missing_effect_of(self, column: FeatureDrift) -> float | None:
        n = column.reference_count + column.reference_missing
        m = column.count + column.missing
        size, phi = _effective_size(n, m), column.missing_inflation
        if self.effect == "psi":
            return _debiased_psi(column.missing_psi, 2, size, phi)
        if self.effect == "js":
            return _debiased_js(column.missing_js, 2, size, phi)
        if not (n and m):
            return None
        return abs(column.missing / m - column.reference_missing / n)

    def _reject(self, tests: list[tuple[int, bool, FeatureDrift]],
                level: float) -> set[tuple[int, bool]]:
        """The (column, is-missing-test) keys whose null is rejected, out of ``m`` tests.

        A p-value above ``level`` is never rejected by either rule and does not change
        which others are, so only the others are sorted.
        """
        m = len(tests)
        if m == 0:
            return set()

        def above(c: FeatureDrift, missing: bool, bound: float) -> bool:
            if missing:
                p = c.missing_adjusted_pvalue
                return p is None or p > bound
            return c.pvalue_above(bound)

        def pvalue(c: FeatureDrift, missing: bool) -> float:
            p = c.missing_adjusted_pvalue if missing else c.adjusted_pvalue
            return 1.0 if p is None else p

        if self.correction == "bonferroni":
            return {(i, miss) for i, miss, c in tests if not above(c, miss, level / m)}
        small = sorted((pvalue(c, miss), i, miss) for i, miss, c in tests
                       if not above(c, miss, level))
        passing = [k for k, (p, _, _) in enumerate(small, start=1) if p <= k / m * level]
        return {(i, miss) for _, i, miss in small[: passing[-1]]} if passing else set()

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftPolicy:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"DriftPolicy has no field {sorted(unknown)[0]!r}")
        return cls(**{**data, "critical": tuple(data.get("critical", ()))})


def _effective_size(n: int, m: int) -> float:
    return n * m / (n + m) if n and m else 0.0


def _debiased_js(js: float | None, bins: int, size: float, inflation: float) -> float | None:
    """JS distance with its expected value under no drift taken out of JS²."""
    if js is None or size <= 0.0:
        return js
    bias = inflation * max(bins - 1, 0) / (8.0 * LN2 * size)
    return math.sqrt(max(js * js - bias, 0.0))


def _debiased_psi(value: float | None, bins: int, size: float, inflation: float
                  ) -> float | None:
    """PSI less its expected value under no drift, ``φ (k - 1) / N``."""
    if value is None or size <= 0.0:
        return value
    return max(value - inflation * max(bins - 1, 0) / size, 0.0)


@dataclass(frozen=True)
class DriftEvent:
    """An alarm: ``consecutive`` drifted evaluations in a row, opening an episode.

    ``update`` is 0 for the alarm that opens an episode and counts up when drift of other
    columns during the same episode updates it (same ``id``). ``events_seen`` counts every
    event the detector observed up to the alarm, so the detection delay of a shift is
    ``events_seen`` minus the events seen before it.
    """

    report: DriftReport
    events_seen: int
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    update: int = 0

    @property
    def detected_at(self) -> float:
        return self.report.evaluated_at

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return self.report.drifted_features

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "update": self.update,
            "detected_at": self.detected_at,
            "events_seen": self.events_seen,
            "drifted_features": list(self.drifted_features),
            "output_drifted": bool(self.report.output and self.report.output.drifted),
            "drift_share": self.report.drift_share,
            "report": self.report.to_dict(),
        }


@dataclass
class AlarmState:
    """The policy's memory between evaluations: the drifted streak, the clean streak and
    the open episode (its alarm id, the columns it has alarmed on, its updates)."""

    streak: int = 0
    clean: int = 0
    episode: str | None = None
    columns: tuple[str, ...] = ()
    updates: int = 0

    def update(self, drifted: bool, columns: tuple[str, ...], policy: DriftPolicy,
               clean: bool = True) -> tuple[str, int] | None:
        """Record one evaluation; ``(alarm id, update number)`` when it raises or updates
        an alarm, None otherwise. ``clean``: see :meth:`DriftPolicy.clean`."""
        if not drifted:
            self.streak = 0
            if self.episode is not None:
                self.clean = self.clean + 1 if clean else 0
                if self.clean >= policy.clear_after:
                    self.episode, self.columns, self.updates, self.clean = None, (), 0, 0
            return None
        self.clean = 0
        self.streak += 1
        if self.streak < policy.consecutive:
            return None
        if self.episode is None:
            self.episode, self.columns, self.updates = uuid.uuid4().hex, columns, 0
            return self.episode, 0
        new = tuple(c for c in columns if c not in self.columns)
        if not new:
            return None
        self.columns += new
        self.updates += 1
        return self.episode, self.updates

    def to_dict(self) -> dict[str, Any]:
        return {"streak": self.streak, "clean": self.clean, "episode": self.episode,
                "columns": list(self.columns), "updates": self.updates}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlarmState:
        episode = data.get("episode")
        return cls(int(data["streak"]), int(data.get("clean", 0)),
                   None if episode is None else str(episode),
                   tuple(str(c) for c in data.get("columns", ())), int(data.get("updates", 0)))
