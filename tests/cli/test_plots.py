"""The run folder's pictures: the smoothed loss curve with its epoch boundaries."""

import numpy as np
import pytest

from layerwise.cli import plots


def test_moving_average_is_the_mean_of_the_last_window_values():
    values = [4.0, 2.0, 6.0, 0.0, 8.0]
    np.testing.assert_allclose(plots.moving_average(values, 2), [4.0, 3.0, 4.0, 3.0, 4.0])
    np.testing.assert_allclose(plots.moving_average(values, 1), values)
    np.testing.assert_allclose(plots.moving_average(values, 10), np.cumsum(values) / np.arange(1, 6))
    assert plots.moving_average([], 3).shape == (0,)


@pytest.mark.parametrize("num_iterations, per_epoch, window", [
    (0, 10, 1), (3, 10, 1), (40, 4, 1), (100, 20, 5), (2450, 490, 122), (100, 1000, 20),
])
def test_the_window_is_a_quarter_epoch_at_most_a_fifth_of_the_history(num_iterations, per_epoch, window):
    assert plots.smoothing_window(num_iterations, per_epoch) == window


def test_the_loss_plot_has_points_a_smoothed_line_and_epoch_boundaries():
    pytest.importorskip("matplotlib")
    plt = plots.matplotlib_pyplot()
    fig, ax = plt.subplots()
    losses = list(2.3 - 0.01 * np.arange(60) + 0.1 * np.sin(np.arange(60)))
    plots.draw_loss(ax, losses, iterations_per_epoch=20)
    points, smoothed, *boundaries = ax.lines
    assert points.get_linestyle() == "None" and len(points.get_xdata()) == 60
    np.testing.assert_allclose(smoothed.get_ydata(), plots.moving_average(losses, 5))
    assert [line.get_xdata()[0] for line in boundaries] == [20.5, 40.5]
    plt.close(fig)


@pytest.mark.parametrize("losses", [[], [2.3]])
def test_a_short_history_still_plots(tmp_path, losses):
    pytest.importorskip("matplotlib")
    written = plots.plot_curves(tmp_path, losses, [0.1] * len(losses), [0.1] * len(losses), iterations_per_epoch=4)
    assert [path.name for path in written] == ["loss.png", "accuracy.png"]
    assert all(path.read_bytes()[:4] == b"\x89PNG" for path in written)
