"""Learning-rate schedules: the learning rate of every update, from a JSON-able spec.

A schedule is a callable ``schedule(iteration) -> float``: the learning rate of update number
``iteration`` (0-based, so the first update uses ``schedule(0)``). The rate follows from the
iteration count alone, so a run resumed from a checkpoint needs no schedule state. A spec is a
dict that a run's ``config.json`` can hold, e.g. ``{"name": "one_cycle", "max_lr": 0.2}``;
:func:`make_schedule` is the only way a name becomes a schedule, and an unknown name lists the
valid ones.

=================  =================================================================================
name               spec entries (defaults) and the PyTorch scheduler it follows
=================  =================================================================================
``constant``       none: ``base_lr`` throughout
``step``           ``factor`` (0.1) and either ``every`` (k: decay at k, 2k, ...; ``StepLR``) or
                   ``boundaries`` (increasing iterations; ``MultiStepLR``): ``base_lr * factor**d``
                   after ``d`` decays; an iteration equal to a boundary already has the decayed rate
``linear_warmup``  ``warmup_iterations`` (required), ``start_factor`` (1/3): from
                   ``start_factor * base_lr`` linearly to ``base_lr``, then constant (``LinearLR``)
``cosine``         ``min_lr`` (0), ``warmup_iterations`` (0), ``warmup_start_factor`` (1/3): the
                   linear warm-up, then ``CosineAnnealingLR`` from ``base_lr`` to ``min_lr`` over the
                   remaining iterations
``one_cycle``      ``max_lr`` (``base_lr``), ``pct_start`` (0.3), ``div_factor`` (25),
                   ``final_div_factor`` (1e4), ``three_phase`` (false), ``anneal_strategy`` ("cos"
                   or "linear"): ``OneCycleLR`` over ``total_iterations`` (momentum is not cycled)
=================  =================================================================================

Every rate is computed from its closed form, so it can differ from PyTorch's recursive
schedulers (``StepLR``, ``CosineAnnealingLR``) in the last bits. Past the last iteration a
schedule keeps its final rate.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from . import _validation as v

Schedule = Callable[[int], float]

_FUNC = "make_schedule"


@dataclass(frozen=True)
class Constant:
    """The same learning rate at every iteration."""

    lr: float

    def __call__(self, iteration: int) -> float:
        return self.lr


@dataclass(frozen=True)
class Step:
    """``base_lr * factor**d`` after ``d`` decays: at every ``every`` iterations, or at each boundary."""

    base_lr: float
    factor: float
    every: int | None = None
    boundaries: tuple[int, ...] = ()

    def __call__(self, iteration: int) -> float:
        decays = iteration // self.every if self.every else bisect.bisect_right(self.boundaries, iteration)
        return self.base_lr * self.factor**decays


@dataclass(frozen=True)
class LinearWarmup:
    """From ``start_factor * base_lr`` linearly to ``base_lr`` over ``warmup_iterations``, then constant."""

    base_lr: float
    warmup_iterations: int
    start_factor: float = 1 / 3

    def __call__(self, iteration: int) -> float:
        progress = min(iteration, self.warmup_iterations) / self.warmup_iterations
        return self.base_lr * (self.start_factor + (1.0 - self.start_factor) * progress)


@dataclass(frozen=True)
class Cosine:
    """An optional linear warm-up, then a half cosine from ``base_lr`` down to ``min_lr``.

    The cosine spans ``total_iterations - warmup_iterations`` iterations and reaches ``min_lr`` at
    ``total_iterations`` (as ``CosineAnnealingLR`` with that ``T_max``).
    """

    base_lr: float
    total_iterations: int
    min_lr: float = 0.0
    warmup_iterations: int = 0
    warmup_start_factor: float = 1 / 3

    def __call__(self, iteration: int) -> float:
        if iteration < self.warmup_iterations:
            return LinearWarmup(self.base_lr, self.warmup_iterations, self.warmup_start_factor)(iteration)
        span = self.total_iterations - self.warmup_iterations
        progress = min(iteration - self.warmup_iterations, span) / span
        return self.min_lr + (self.base_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress)) / 2.0


@dataclass(frozen=True)
class OneCycle:
    """PyTorch's ``OneCycleLR`` (without momentum cycling), step by step the same phases.

    Up from ``max_lr / div_factor`` to ``max_lr`` over the first ``pct_start`` of the iterations,
    then down to ``max_lr / div_factor / final_div_factor`` at the last one; ``three_phase``
    comes back down to the initial rate symmetrically before the final descent.
    """

    max_lr: float
    total_iterations: int
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    three_phase: bool = False
    anneal_strategy: str = "cos"

    def __call__(self, iteration: int) -> float:
        initial = self.max_lr / self.div_factor
        final = initial / self.final_div_factor
        rise_end = self.pct_start * self.total_iterations - 1
        last = self.total_iterations - 1
        if self.three_phase:
            phases = [(rise_end, initial, self.max_lr), (2 * self.pct_start * self.total_iterations - 2, self.max_lr, initial),
                      (last, initial, final)]  # fmt: skip
        else:
            phases = [(rise_end, initial, self.max_lr), (last, self.max_lr, final)]
        step = min(iteration, last)
        start_step = 0.0
        for index, (end_step, start_lr, end_lr) in enumerate(phases):
            if step <= end_step or index == len(phases) - 1:
                # A phase of no length (a tiny run) counts as done; PyTorch divides by zero there.
                pct = (step - start_step) / (end_step - start_step) if end_step != start_step else 1.0
                if self.anneal_strategy == "linear":
                    return (end_lr - start_lr) * pct + start_lr
                return end_lr + (start_lr - end_lr) / 2.0 * (math.cos(math.pi * pct) + 1)
            start_step = end_step
        raise AssertionError("unreachable: the last phase always matches")


# Each schedule's spec entries: name -> (default, kind, bounds). A default of _REQUIRED must be given;
# kinds: "real" (low, high, low_open, high_open), "int" (minimum), "bool", "choice" (options), "ints".
_REQUIRED = object()
_POSITIVE = (0.0, None, True, False)
_FRACTION = (0.0, 1.0, True, False)
ENTRIES: dict[str, dict[str, tuple[Any, str, Any]]] = {
    "constant": {},
    "step": {"factor": (0.1, "real", _FRACTION), "every": (None, "int", 1), "boundaries": (None, "ints", 1)},
    "linear_warmup": {"warmup_iterations": (_REQUIRED, "int", 1), "start_factor": (1 / 3, "real", _FRACTION)},
    "cosine": {
        "min_lr": (0.0, "real", (0.0, None, False, False)),
        "warmup_iterations": (0, "int", 0),
        "warmup_start_factor": (1 / 3, "real", _FRACTION),
    },
    "one_cycle": {
        "max_lr": (None, "real", _POSITIVE),
        "pct_start": (0.3, "real", (0.0, 1.0, False, False)),
        "div_factor": (25.0, "real", _POSITIVE),
        "final_div_factor": (1e4, "real", _POSITIVE),
        "three_phase": (False, "bool", None),
        "anneal_strategy": ("cos", "choice", ("cos", "linear")),
    },
}
"""Every schedule name and the entries its spec may hold: ``(default, kind, bounds)``."""

SCHEDULES = sorted(ENTRIES)


def check_spec(spec: Any) -> dict[str, Any]:
    """Check a schedule spec on its own (the checks that need no run length) and return its entries.

    Returns
    -------
    dict
        Every entry of the named schedule, defaults filled in (``name`` left out). ``one_cycle``'s
        ``max_lr`` is None when the spec leaves it to ``base_lr``; ``step``'s ``boundaries`` a tuple.

    Raises
    ------
    TypeError, ValueError
        Naming the entry, what was expected and what came; an unknown name lists the valid ones.
    """
    v.param_dict(_FUNC, "spec", spec)
    name = spec.get("name")
    if not isinstance(name, str) or name not in ENTRIES:
        raise ValueError(f"{_FUNC}: spec['name'] must be one of {SCHEDULES}, got {v.describe(name)}")
    entries = ENTRIES[name]
    unknown = sorted(set(spec) - set(entries) - {"name"})
    if unknown:
        valid = sorted(entries) if entries else "none besides 'name'"
        raise ValueError(f"{_FUNC}: spec has unknown entries {unknown} for schedule {name!r}; valid ones are {valid}")
    values = {}
    for key, (default, kind, bounds) in entries.items():
        if key not in spec or spec[key] is None:
            if default is _REQUIRED:
                raise ValueError(f"{_FUNC}: spec for schedule {name!r} must contain {key!r}, got entries {sorted(spec)}")
            values[key] = default
        else:
            values[key] = _entry(f"spec[{key!r}]", spec[key], kind, bounds)
    if name == "step" and (values["every"] is None) == (values["boundaries"] is None):
        raise ValueError(f"{_FUNC}: spec for schedule 'step' must contain one of 'every' and 'boundaries', got entries {sorted(spec)}")
    return values


def make_schedule(spec: Mapping[str, Any], base_lr: float, total_iterations: int) -> Schedule:
    """The schedule a spec describes, for a run of ``total_iterations`` updates.

    Parameters
    ----------
    spec : dict
        ``{"name": NAME, ...}`` with the entries :data:`ENTRIES` lists for that name.
    base_lr : float > 0
        The rate the schedule scales (``constant``, ``step``, ``linear_warmup``, ``cosine``) or,
        for ``one_cycle`` without ``max_lr``, its peak: the update rule's ``learning_rate``.
    total_iterations : int >= 1
        The updates of the whole run (epochs times iterations per epoch).

    Returns
    -------
    callable ``schedule(iteration: int) -> float``
    """
    values = check_spec(spec)
    base_lr = v.real_value(_FUNC, "base_lr", base_lr, low=0.0, low_open=True)
    total = v.int_value(_FUNC, "total_iterations", total_iterations, minimum=1)
    name = spec["name"]
    if name == "constant":
        return Constant(base_lr)
    if name == "step":
        return Step(base_lr, values["factor"], values["every"], values["boundaries"] or ())
    if name == "linear_warmup":
        return LinearWarmup(base_lr, values["warmup_iterations"], values["start_factor"])
    if name == "cosine":
        if values["warmup_iterations"] >= total:
            raise ValueError(
                f"{_FUNC}: spec['warmup_iterations'] must be fewer than the run's {total} iterations, "
                f"got {values['warmup_iterations']}"
            )
        return Cosine(base_lr, total, values["min_lr"], values["warmup_iterations"], values["warmup_start_factor"])
    max_lr = base_lr if values["max_lr"] is None else values["max_lr"]
    return OneCycle(max_lr, total, values["pct_start"], values["div_factor"], values["final_div_factor"],
                    values["three_phase"], values["anneal_strategy"])  # fmt: skip


def _entry(name: str, value: Any, kind: str, bounds: Any) -> Any:
    if kind == "real":
        low, high, low_open, high_open = bounds
        return v.real_value(_FUNC, name, value, low=low, high=high, low_open=low_open, high_open=high_open)
    if kind == "int":
        return v.int_value(_FUNC, name, value, minimum=bounds)
    if kind == "bool":
        if not isinstance(value, bool):
            raise TypeError(f"{_FUNC}: {name} must be true or false, got {v.describe(value)}")
        return value
    if kind == "choice":
        if value not in bounds:
            raise ValueError(f"{_FUNC}: {name} must be one of {list(bounds)}, got {v.describe(value)}")
        return value
    if not isinstance(value, (list, tuple)) or not value:
        raise TypeError(f"{_FUNC}: {name} must be a non-empty list of iterations, got {v.describe(value)}")
    iterations = tuple(v.int_value(_FUNC, f"{name}[{i}]", item, minimum=bounds) for i, item in enumerate(value))
    if any(later <= earlier for earlier, later in zip(iterations, iterations[1:])):
        raise ValueError(f"{_FUNC}: {name} must be strictly increasing, got {list(iterations)}")
    return iterations
