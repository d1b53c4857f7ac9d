"""A sweep: the base settings, the space, the trial budget, the seed, the metric and early stopping; and its trials."""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import numpy as np

from ..cli import settings as run_settings
from .space import Dimension, SweepError, default_trials, parse_space, trial_settings
from .stopping import EarlyStopping, parse_early_stopping

METRICS = ("best_val_acc", "final_val_acc", "best_train_acc", "final_train_acc")
"""What a sweep may rank by (each higher is better; the train ones on ``num_train_samples`` training images)."""

SPEC_KEYS = ("base", "space", "trials", "seed", "metric", "early_stopping")


class SweepSpec(NamedTuple):
    """A checked sweep.

    Attributes
    ----------
    base : dict
        Settings shared by every trial (keys of a run's ``config.json``, ``seed`` excepted).
    space : dict of str to Dimension
    trials : int
        How many trials: trial indices ``0 .. trials - 1``.
    seed : int
        The sweep's seed; trial ``i``'s settings and training seed derive from it and ``i``.
    metric : str
        One of ``METRICS``.
    early_stopping : EarlyStopping or None
        How bad trials stop early (:mod:`.stopping`); None: every trial runs to its end.
    """

    base: dict[str, Any]
    space: dict[str, Dimension]
    trials: int
    seed: int
    metric: str
    early_stopping: EarlyStopping | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base, "space": {key: dim.to_json() for key, dim in self.space.items()},
            "trials": self.trials, "seed": self.seed, "metric": self.metric,
            "early_stopping": None if self.early_stopping is None else self.early_stopping.to_json(),
        }  # fmt: skip


class Trial(NamedTuple):
    """One trial: its index, training seed, the space's settings and every resolved setting.

    ``config`` is what ``layerwise train --config`` takes to repeat the trial.
    """

    index: int
    seed: int
    settings: dict[str, Any]
    config: dict[str, Any]


def parse_sweep(document: Any, overrides: dict[str, Any] | None = None) -> SweepSpec:
    """Check a sweep as written in ``SWEEP.json`` (``{"base", "space", "trials"?, "seed"?, "metric"?, "early_stopping"?}``).

    Parameters
    ----------
    document : dict
    overrides : dict, optional
        Values that win over the document's: settings (merged into ``base``), and ``trials``,
        ``seed``, ``metric``, ``early_stopping`` (a rule's name or ``"none"``: the command line's options).

    Raises
    ------
    SweepError
        For an unknown key, setting or metric, a bad space, trial budget, seed or early stopping.
    """
    if not isinstance(document, dict):
        raise SweepError(f"a sweep must be a JSON object with 'base' and 'space', got {type(document).__name__}")
    unknown = sorted(set(document) - set(SPEC_KEYS))
    if unknown:
        raise SweepError(f"unknown sweep keys {unknown}; valid ones are {list(SPEC_KEYS)}")
    overrides = dict(overrides or {})
    base = document.get("base", {})
    if not isinstance(base, dict):
        raise SweepError(f"base must be a JSON object of settings, got {type(base).__name__}")
    base = {**base, **{key: value for key, value in overrides.items() if key in run_settings.SETTINGS and key != "seed"}}
    if "seed" in base:
        raise SweepError("base: 'seed' is the sweep's, not a setting of the trials: give it as the sweep's \"seed\" (or --seed)")
    unknown = sorted(set(base) - set(run_settings.SETTINGS))
    if unknown:
        raise SweepError(f"base: unknown settings {unknown}; valid ones are {run_settings.SETTINGS}")
    space = parse_space(document.get("space", {}), run_settings.SETTINGS)
    trials = overrides.get("trials", document.get("trials"))
    trials = default_trials(space) if trials is None else trials
    if type(trials) is not int or trials < 1:
        raise SweepError(f"trials must be a positive integer, got {trials!r}")
    seed = overrides.get("seed", document.get("seed"))
    seed = int(np.random.SeedSequence().entropy % 2**31) if seed is None else seed
    if type(seed) is not int or seed < 0:
        raise SweepError(f"seed must be a non-negative integer, got {seed!r}")
    metric = overrides.get("metric", document.get("metric", "best_val_acc"))
    if metric not in METRICS:
        raise SweepError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    early_stopping = parse_early_stopping(document.get("early_stopping"), overrides.get("early_stopping"))
    return SweepSpec(base, space, trials, seed, metric, early_stopping)


def make_trials(spec: SweepSpec) -> list[Trial]:
    """Every trial of the sweep, each one's settings resolved and checked as ``layerwise train`` would.

    Range dimensions are checked at both ends too, so that a range reaching outside a setting's
    valid values is refused even if no trial happened to draw such a value.

    Raises
    ------
    SweepError
        Naming the trial (or range end) and the setting that cannot train.
    """
    for key, dimension in spec.space.items():
        if dimension.kind in ("uniform", "loguniform"):
            for end in dimension.values:
                _resolve(spec.base, {key: end}, 0, f"space[{key!r}]: the end {end!r} of the {dimension.kind!r} range")
    trials = []
    for index in range(spec.trials):
        settings, seed = trial_settings(spec.space, spec.seed, index)
        config = _resolve(spec.base, {**settings, "seed": seed}, seed, f"trial {index} ({describe(settings)})")
        trials.append(Trial(index, seed, settings, config))
    return trials


def _resolve(base: dict[str, Any], settings: dict[str, Any], seed: int, what: str) -> dict[str, Any]:
    try:
        return run_settings.resolve_settings(copy.deepcopy({**base, **settings, "seed": seed}))
    except run_settings.CommandError as error:
        raise SweepError(f"{what}: {error}") from None


def describe(settings: dict[str, Any]) -> str:
    """``learning_rate=0.00123, hidden_dims=[100, 100]``: a trial's settings in one line (4 digits)."""
    return ", ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value!r}" for key, value in settings.items())
