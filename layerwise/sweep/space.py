"""A sweep's search space: parsing and checking it, and the settings of every trial.

A space maps settings (the keys of a run's ``config.json``) to one of::

    {"values": [v1, v2, ...]}      grid: every trial takes the values in turn
    {"choice": [v1, v2, ...]}      random: one of the values, uniformly
    {"uniform": [low, high]}       random: a float uniformly in [low, high)
    {"loguniform": [low, high]}    random: a float whose log is uniform in [log low, log high), 0 < low

The grid is the product of the ``values`` dimensions (the last one varying fastest); trial ``i``
takes grid point ``i mod G`` and draws its random dimensions, in the order of the space, from a
generator seeded by ``(sweep seed, i)`` alone. Trial ``i``'s settings therefore depend on nothing
but the sweep's seed, the space and ``i``: not on the number of trials, the back-end, or the order
in which trials finish.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, NamedTuple

import numpy as np

KINDS = ("values", "choice", "uniform", "loguniform")
GRID_KINDS = ("values",)
RANGE_KINDS = ("uniform", "loguniform")

# Settings every trial must share: the data (loaded once per sweep) and the seed (derived per trial).
SHARED_SETTINGS = ("data", "sample", "download", "num_training", "num_validation", "num_test", "dtype", "normalize", "seed")


class SweepError(ValueError):
    """A sweep that cannot run: a bad search space, base, or option; raised before any trial runs."""


class Dimension(NamedTuple):
    """One setting's part of the space.

    Attributes
    ----------
    kind : str
        One of ``KINDS``.
    values : tuple
        The values (``values``, ``choice``) or ``(low, high)`` (``uniform``, ``loguniform``).
    """

    kind: str
    values: tuple

    @property
    def is_grid(self) -> bool:
        return self.kind in GRID_KINDS

    def to_json(self) -> dict[str, list]:
        return {self.kind: list(self.values)}


def parse_space(space: Any, settings: list[str] | tuple[str, ...]) -> dict[str, Dimension]:
    """Check a space as written in ``SWEEP.json`` and return its dimensions, in its order.

    Parameters
    ----------
    space : dict
        Setting name -> ``{"values"|"choice"|"uniform"|"loguniform": [...]}``.
    settings : sequence of str
        The valid setting names.

    Raises
    ------
    SweepError
        Naming the setting, what was expected and what came.
    """
    if not isinstance(space, dict):
        raise SweepError(f"space must be a JSON object of settings, got {type(space).__name__}")
    dimensions = {}
    for key, described in space.items():
        if key not in settings:
            raise SweepError(f"space: unknown setting {key!r}; valid ones are {sorted(settings)}")
        if key in SHARED_SETTINGS:
            raise SweepError(
                f"space: {key!r} cannot vary between trials (the data is loaded once per sweep and each trial's seed "
                f"derives from the sweep's seed); set it in base, or the sweep's seed with \"seed\""
            )
        dimensions[key] = parse_dimension(key, described)
    return dimensions


def parse_dimension(key: str, described: Any) -> Dimension:
    """One ``{"kind": [...]}`` entry of a space (see :func:`parse_space`)."""
    if not isinstance(described, dict) or len(described) != 1 or next(iter(described)) not in KINDS:
        raise SweepError(f"space[{key!r}] must be one of {[{kind: '[...]'} for kind in KINDS]}, got {described!r}")
    kind, values = next(iter(described.items()))
    if not isinstance(values, list) or not values:
        raise SweepError(f"space[{key!r}]: {kind!r} needs a non-empty list, got {values!r}")
    if kind in RANGE_KINDS:
        if len(values) != 2 or not all(_is_finite_real(value) for value in values):
            raise SweepError(f"space[{key!r}]: {kind!r} needs [low, high], two finite numbers, got {values!r}")
        low, high = values
        if not low < high:
            raise SweepError(f"space[{key!r}]: {kind!r} needs low < high, got [{low!r}, {high!r}]")
        if kind == "loguniform" and low <= 0:
            raise SweepError(f"space[{key!r}]: a 'loguniform' range must be positive (0 < low < high), got [{low!r}, {high!r}]")
        values = [float(low), float(high)]
    return Dimension(kind, tuple(values))


def _is_finite_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def grid_points(dimensions: dict[str, Dimension]) -> list[dict[str, Any]]:
    """Every combination of the grid dimensions' values, the last dimension varying fastest ([{}] without any)."""
    grid = {key: dimension.values for key, dimension in dimensions.items() if dimension.is_grid}
    return [dict(zip(grid, combination)) for combination in itertools.product(*grid.values())]


def default_trials(dimensions: dict[str, Dimension]) -> int:
    """The grid's size when every dimension is a grid, else 10 (random trials need a budget)."""
    if all(dimension.is_grid for dimension in dimensions.values()):
        return len(grid_points(dimensions))
    return 10


def trial_seeds(sweep_seed: int, index: int) -> tuple[np.random.SeedSequence, int]:
    """The seed sequence of trial ``index``'s random draws, and its training seed (an int in [0, 2**31))."""
    draws, training = np.random.SeedSequence(sweep_seed, spawn_key=(index,)).spawn(2)
    return draws, int(training.generate_state(1)[0] % 2**31)


def trial_settings(dimensions: dict[str, Dimension], sweep_seed: int, index: int) -> tuple[dict[str, Any], int]:
    """The settings the space gives trial ``index`` (0-based), and the trial's training seed.

    Returns
    -------
    settings : dict
        One value per dimension, in the space's order; floats for ``uniform``/``loguniform``.
    seed : int
    """
    grid = grid_points(dimensions)
    point = grid[index % len(grid)]
    draws, seed = trial_seeds(sweep_seed, index)
    rng = np.random.default_rng(draws)
    settings = {}
    for key, dimension in dimensions.items():
        if dimension.is_grid:
            settings[key] = point[key]
        elif dimension.kind == "choice":
            settings[key] = dimension.values[int(rng.integers(len(dimension.values)))]
        elif dimension.kind == "uniform":
            settings[key] = float(rng.uniform(*dimension.values))
        else:
            low, high = dimension.values
            drawn = math.exp(rng.uniform(math.log(low), math.log(high)))
            settings[key] = float(min(max(drawn, low), high))  # exp(log(x)) may round just outside
    return settings, seed
