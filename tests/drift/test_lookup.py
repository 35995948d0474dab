"""Finding live values among the reference's distinct values: always np.searchsorted's
answer, whichever way it is computed."""

from __future__ import annotations

import numpy as np
import pytest

from driftloop.drift.lookup import GRID_MIN, SORTED_LOOKUP_MIN, Grid, GridSet, ValueIndex


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


def test_a_grid_set_finds_what_each_grid_finds() -> None:
    """Every row of a GridSet's matrix is searched in its own values: values equal to,
    between, just beside and far outside them (beyond the grid's trimmed range too)."""
    references = {name: np.unique(values) for name, values in _references().items()
                  if Grid.build(np.unique(values)) is not None}
    assert len(references) >= 3
    indexes = sorted((ValueIndex(v) for v in references.values()),
                     key=lambda index: -index.grid.steps)  # type: ignore[union-attr]
    grids = GridSet(indexes)
    rng = np.random.default_rng(6)
    rows = []
    for index in indexes:
        values = index.values
        rows.append(rng.permutation(np.concatenate([
            rng.choice(values, 400), rng.uniform(values[0], values[-1], 400),
            np.nextafter(rng.choice(values, 50), np.inf), values[:40], values[-40:],
            [values[0] - 1, values[-1] + 1, -1e308, 1e308, 0.0, -0.0],
            rng.uniform(-1e6, 1e6, 48)])))
    x = np.stack(rows)
    found, equal = grids.find(x)
    for row, index in enumerate(indexes):
        assert np.array_equal(found[row], np.searchsorted(index.values, x[row], side="left"))
        assert np.array_equal(equal[row], np.isin(x[row], index.values))


def test_a_grid_set_takes_grids_most_steps_first() -> None:
    rng = np.random.default_rng(7)
    few_steps = ValueIndex(np.unique(rng.uniform(0, 1, 2000)))
    clustered = ValueIndex(np.unique(np.round(rng.normal(0, 1, 3000), 2)))
    indexes = sorted([few_steps, clustered], key=lambda index: index.grid.steps)  # type: ignore[union-attr]
    if indexes[0].grid.steps == indexes[1].grid.steps:  # type: ignore[union-attr]
        pytest.skip("both grids need as many steps")
    with pytest.raises(ValueError, match="most steps first"):
        GridSet(indexes)
