"""Finding live values among the reference's distinct values: always np.searchsorted's
answer, whichever way it is computed."""

from __future__ import annotations

import numpy as np
import pytest

from driftloop.drift.lookup import GRID_MIN, SORTED_LOOKUP_MIN, Grid, ValueIndex


def _references() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "uniform": rng.uniform(0, 1, 500),
        "rounded": np.round(rng.normal(50, 10, 3000), 1),
        "lognormal": rng.lognormal(0, 2, 2000),  # heavy tail: a grid may be refused
        "outliers": np.concatenate([rng.normal(0, 1, 1000), [-1e300, 1e300]]),
        "tiny range": 1.0 + np.arange(100) * np.finfo(float).eps,
        "few": np.arange(5.0),
        "large": rng.normal(0, 1, SORTED_LOOKUP_MIN + 100),
    }


@pytest.mark.parametrize("name", list(_references()))
def test_find_equals_searchsorted(name: str) -> None:
    values = np.unique(_references()[name])
    rng = np.random.default_rng(4)
    live = np.concatenate([
        rng.choice(values, 3000),  # equal to reference values
        rng.uniform(values[0], values[-1], 3000),  # between them
        np.nextafter(rng.choice(values, 500), np.inf),
        np.nextafter(rng.choice(values, 500), -np.inf),
        [values[0] - 1, values[-1] + 1, -1e308, 1e308, 0.0, -0.0],
    ])
    index = ValueIndex(values)
    for x in (live, live[:GRID_MIN - 1], live[:1000]):
        found, equal = index.find(x)
        assert np.array_equal(found, np.searchsorted(values, x, side="left"))
        assert np.array_equal(equal, np.isin(x, values))


def test_a_grid_serves_the_references_it_is_meant_for() -> None:
    rng = np.random.default_rng(5)
    assert Grid.build(np.unique(rng.uniform(0, 1, 2000))) is not None
    assert Grid.build(np.arange(5.0)) is None  # a binary search is cheap here
    assert Grid.build(np.unique(rng.normal(0, 1, SORTED_LOOKUP_MIN + 1))) is None
