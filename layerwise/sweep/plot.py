"""``DIR/sweep.png``: the metric against the two most varied settings, one point per trial.

Two settings: a scatter over them, coloured by the metric. One setting: the metric against it.
Settings sampled log-uniformly get log axes; settings whose values are not numbers (strings,
lists) get one position per value. Trials stopped early are hollow grey circles (at their metric
in a one-setting plot); those that diverged or failed are red crosses (at the bottom of a
one-setting plot). Needs matplotlib, like the run folder's curves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..cli.plots import matplotlib_pyplot
from .space import Dimension


def most_varied(records: list[dict[str, Any]], space: dict[str, Dimension], count: int = 2) -> list[str]:
    """The ``count`` settings with the most distinct values among ``records`` (ties: the space's order)."""
    varied = []
    for position, key in enumerate(space):
        distinct = {json.dumps(record.get(key), sort_keys=True) for record in records}
        if len(distinct) > 1:
            varied.append((-len(distinct), position, key))
    return [key for _, _, key in sorted(varied)[:count]]


def _axis_values(records: list[dict[str, Any]], key: str) -> tuple[list[float], list[str] | None]:
    """The positions of ``key``'s values on an axis, and tick labels where the values are not numbers."""
    values = [record.get(key) for record in records]
    if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values):
        return [float(value) for value in values], None
    labels = sorted({json.dumps(value) for value in values})
    return [float(labels.index(json.dumps(value))) for value in values], labels


def plot_sweep(path: Path, records: list[dict[str, Any]], space: dict[str, Dimension], metric: str) -> bool:
    """Write the plot to ``path``; False (nothing written) without matplotlib or without a varied setting."""
    plt = matplotlib_pyplot()
    keys = most_varied(records, space)
    if plt is None or not keys or not records:
        return False
    ok = [record["status"] == "ok" and record.get(metric) is not None for record in records]
    stopped = [record["status"] == "stopped" for record in records]
    failed = [not good and not halted for good, halted in zip(ok, stopped)]
    fig, ax = plt.subplots(figsize=(7, 5))
    xs, x_labels = _axis_values(records, keys[0])
    if len(keys) == 2:
        ys, y_labels = _axis_values(records, keys[1])
        stopped_y = [y for y, halted in zip(ys, stopped) if halted]
        shown = ax.scatter([x for x, good in zip(xs, ok) if good], [y for y, good in zip(ys, ok) if good],
                           c=[r[metric] for r, good in zip(records, ok) if good], cmap="viridis", s=60,
                           edgecolors="black", linewidths=0.5)  # fmt: skip
        if any(ok):
            fig.colorbar(shown, ax=ax, label=metric)
        _set_axis(ax, "y", keys[1], space, y_labels)
        failed_y = [y for y, bad in zip(ys, failed) if bad]
    else:
        ax.plot([x for x, good in zip(xs, ok) if good], [r[metric] for r, good in zip(records, ok) if good], "o")
        ax.set_ylabel(metric)
        stopped_y = [r.get(metric) or 0.0 for r, halted in zip(records, stopped) if halted]
        failed_y = [0.0 for bad in failed if bad]
    stopped_x = [x for x, halted in zip(xs, stopped) if halted]
    failed_x = [x for x, bad in zip(xs, failed) if bad]
    if stopped_x:
        ax.scatter(stopped_x, stopped_y, marker="o", facecolors="none", edgecolors="grey", s=60, label="stopped early")
    if failed_x:
        ax.scatter(failed_x, failed_y, marker="x", color="red", s=60, label="diverged or failed")
    if stopped_x or failed_x:
        ax.legend(loc="best")
    _set_axis(ax, "x", keys[0], space, x_labels)
    ax.set_title(f"{metric} of {len(records)} trials")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _set_axis(ax, axis: str, key: str, space: dict[str, Dimension], labels: list[str] | None) -> None:
    getattr(ax, f"set_{axis}label")(key)
    if labels is not None:
        getattr(ax, f"set_{axis}ticks")(range(len(labels)), labels)
    elif space[key].kind == "loguniform" or _spans_decades(space[key]):
        getattr(ax, f"set_{axis}scale")("log")
        from matplotlib.ticker import NullFormatter  # matplotlib is there: the figure exists

        getattr(ax, f"{axis}axis").set_minor_formatter(NullFormatter())  # minor labels overlap on short ranges


def _spans_decades(dimension: Dimension) -> bool:
    """A grid of positive numbers over two decades or more (1e-3, 1e-2, 1e-1) reads best on a log axis."""
    values = dimension.values
    if dimension.kind != "values" or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values):
        return False
    return max(values) / min(values) >= 100
