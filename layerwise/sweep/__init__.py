"""Hyperparameter sweeps: many ``layerwise train`` runs over a search space, in parallel.

A sweep is a base configuration (a run's ``config.json`` keys) plus a search space over any of its
settings, a trial budget, a seed and a metric; see :mod:`.space` for the space's forms. Trials run
in local processes or on Ray (:mod:`.local`, :mod:`.ray_backend`); each one is reproducible from its
recorded seed and settings; results land in a sweep folder as they finish (:mod:`.runner`).
Bad trials may stop early by a deterministic median rule (:mod:`.stopping`).

>>> spec = parse_sweep({"base": {"model": "fc", "sample": True, "epochs": 2},
...                     "space": {"learning_rate": {"loguniform": [1e-4, 1e-2]}}, "trials": 8, "seed": 0})
>>> result = run_sweep(spec, "sweeps/lr")            # doctest: +SKIP
>>> result.best["learning_rate"], result.best["best_val_acc"]   # doctest: +SKIP
"""

from .runner import BACKENDS, SweepResult, run_sweep
from .space import SweepError
from .spec import METRICS, SweepSpec, Trial, make_trials, parse_sweep
from .stopping import EarlyStopping

__all__ = ["BACKENDS", "METRICS", "EarlyStopping", "SweepError", "SweepResult", "SweepSpec", "Trial", "make_trials", "parse_sweep",
           "run_sweep"]  # fmt: skip
