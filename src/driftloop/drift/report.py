"""What one evaluation found: per-feature statistics and the dataset verdict."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class FeatureDrift:
    """Drift statistics of one feature (or of the model output) over the window.

    ``ks_statistic`` / ``ks_pvalue`` are set for numeric features and ``chi2_statistic`` /
    ``chi2_pvalue`` for categorical ones; ``pvalue`` is whichever test applies. Statistics
    are ``None`` while the window holds no present value of the feature. Every statistic
    is computed when the window is evaluated (the KS p-values of all features in one
    vectorised pass, :func:`driftloop.drift.stats.ks_pvalues`), so reading them is free.
    """

    name: str
    kind: Literal["numeric", "categorical"]
    count: int
    missing: int
    reference_count: int = 0
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    chi2_statistic: float | None = None
    chi2_pvalue: float | None = None
    psi: float | None = None
    js_distance: float | None = None
    total_variation: float | None = None
    effect: float | None = None
    significant: bool = False
    drifted: bool = False
    bins: tuple[str, ...] = ()
    reference_histogram: tuple[int, ...] = ()
    current_histogram: tuple[int, ...] = ()

    def with_verdict(
        self, *, effect: float | None, significant: bool, drifted: bool
    ) -> FeatureDrift:
        """A copy carrying the policy's verdict."""
        judged = copy.copy(self)  # ~10x cheaper than dataclasses.replace on 20 fields
        object.__setattr__(judged, "effect", effect)
        object.__setattr__(judged, "significant", significant)
        object.__setattr__(judged, "drifted", drifted)
        return judged

    @property
    def pvalue(self) -> float | None:
        return self.ks_pvalue if self.kind == "numeric" else self.chi2_pvalue

    @property
    def tested(self) -> bool:
        """Whether the window held values to test (a p-value exists)."""
        return self.ks_statistic is not None or self.chi2_pvalue is not None

    def pvalue_above(self, level: float) -> bool:
        """True when the test's p-value exceeds ``level`` (or there is no test yet)."""
        return self.pvalue is None or self.pvalue > level

    @property
    def missing_share(self) -> float:
        total = self.count + self.missing
        return self.missing / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["pvalue"] = self.pvalue
        out["missing_share"] = self.missing_share
        return out


@dataclass(frozen=True)
class DriftReport:
    """The window's statistics and verdict at one evaluation point."""

    features: dict[str, FeatureDrift]
    output: FeatureDrift | None
    window_size: int
    window_fill: float
    pane_id: int | None
    evaluated_at: float
    drifted: bool
    drifted_features: tuple[str, ...] = field(default=())

    @property
    def drift_share(self) -> float:
        """Share of input features (the output excluded) judged drifted."""
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": {name: f.to_dict() for name, f in self.features.items()},
            "output": self.output.to_dict() if self.output else None,
            "window_size": self.window_size,
            "window_fill": self.window_fill,
            "pane_id": self.pane_id,
            "evaluated_at": self.evaluated_at,
            "drifted": self.drifted,
            "drifted_features": list(self.drifted_features),
            "drift_share": self.drift_share,
        }
