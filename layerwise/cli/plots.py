"""The run folder's pictures. Curves and the confusion matrix need matplotlib (the ``plot``
extra); the filter grid is written with :func:`layerwise.vis_utils.write_png` alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..vis_utils import visualize_grid, write_png


def matplotlib_pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend, or None when it is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def moving_average(values, window: int) -> np.ndarray:
    """Trailing mean of the last ``window`` values at every position (of fewer at the start).

    Parameters
    ----------
    values : sequence of float, length N
    window : int >= 1

    Returns
    -------
    ndarray of float64, shape (N,)
    """
    values = np.asarray(values, dtype=np.float64)
    sums = np.concatenate([[0.0], np.cumsum(values)])
    end = np.arange(1, values.size + 1)
    start = np.maximum(end - window, 0)
    return (sums[end] - sums[start]) / (end - start)


def smoothing_window(num_iterations: int, iterations_per_epoch: int) -> int:
    """A quarter of an epoch, but at most a fifth of the history (so a short run still shows a trend)."""
    return max(1, min(iterations_per_epoch // 4, num_iterations // 5))


def draw_loss(ax, loss_history, iterations_per_epoch: int) -> None:
    """The raw losses as faint points, their moving average as a line, and a dotted line between epochs."""
    iterations = np.arange(1, len(loss_history) + 1)
    ax.plot(iterations, loss_history, ".", markersize=3, alpha=0.3, color="tab:blue", label="loss")
    window = smoothing_window(len(loss_history), iterations_per_epoch)
    if window > 1:
        ax.plot(iterations, moving_average(loss_history, window), "-", color="tab:blue", label=f"mean of last {window}")
    for boundary in range(iterations_per_epoch, len(loss_history), iterations_per_epoch):
        ax.axvline(boundary + 0.5, color="0.6", linestyle=":", linewidth=0.8)
    ax.set(title="Training loss (dotted lines: epoch boundaries)", xlabel="Iteration", ylabel="Loss")
    if window > 1:
        ax.legend(loc="upper right")


def plot_curves(run_dir: Path, loss_history, train_acc_history, val_acc_history, iterations_per_epoch: int) -> list[Path]:
    """Write ``loss.png`` and ``accuracy.png`` into ``run_dir``; return their paths ([] without matplotlib)."""
    plt = matplotlib_pyplot()
    if plt is None:
        return []
    fig, ax = plt.subplots(figsize=(8, 4.5))
    draw_loss(ax, loss_history, iterations_per_epoch)
    fig.tight_layout()
    fig.savefig(run_dir / "loss.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    epochs = np.arange(len(train_acc_history))
    ax.plot(epochs, train_acc_history, "-o", label="train")
    ax.plot(epochs, val_acc_history, "-o", label="val")
    ax.set(title="Accuracy", xlabel="Epoch", ylabel="Accuracy")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(run_dir / "accuracy.png", dpi=100)
    plt.close(fig)
    return [run_dir / "loss.png", run_dir / "accuracy.png"]


def plot_confusion(path: Path, confusion: np.ndarray, class_names: list[str]) -> bool:
    plt = matplotlib_pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set(xlabel="Predicted", ylabel="True", title="Test confusion matrix")
    threshold = confusion.max() / 2 if confusion.size else 0
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color="white" if count > threshold else "black")
    fig.colorbar(image)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def save_filter_grid(path: Path, first_layer_weights: np.ndarray, scale: int = 4) -> Path:
    """First-layer filters (F, C, HH, WW) as one image grid, each filter rescaled to [0, 255]."""
    grid = visualize_grid(first_layer_weights.transpose(0, 2, 3, 1), padding=1)
    grid = np.kron(grid, np.ones((scale, scale, 1)))  # nearest-neighbour upscaling, to be visible
    return write_png(path, grid)
