"""The course notebooks' calls, as each edition spells them, print the course's numbers.

Each test runs a cell of the course's assignment-2 notebooks (BatchNormalization, Dropout) with its
seeds and compares what the cell prints with the output stored in public completed copies.
Losses are compared to 1e-12 relative; relative errors of gradient checks, whose printed digits
depend on rounding remainders, to the range the notebook states. The spellings differ by edition
(docs/compatibility.md): ``dropout=`` (2018-2020) and ``dropout_keep_ratio=`` (2021 on) both name
the probability of keeping a unit.
"""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.classifiers.fc_net import FullyConnectedNet, dropout_forward
from layerwise.gradient_check import eval_numerical_gradient, rel_error

KEEP_NAMES = ["dropout", "dropout_keep_ratio"]  # 2018-2020, 2021 on


def printed_errors(model, X, y):
    """What the notebooks' gradient-check loop prints: the relative error of each gradient."""
    _, grads = model.loss(X, y)
    f = lambda _: model.loss(X, y)[0]  # noqa: E731
    return {
        name: rel_error(eval_numerical_gradient(f, model.params[name], verbose=False, h=1e-5), grads[name])
        for name in sorted(grads)
    }


def notebook_data():
    np.random.seed(231)
    N, D, H1, H2, C = 2, 15, 20, 30, 10
    X = np.random.randn(N, D)
    y = np.random.randint(C, size=(N,))
    return X, y, D, [H1, H2], C


# --- Dropout.ipynb --------------------------------------------------------------------------------
# Stored outputs: a completed Spring 2019 copy (github.com/ctttt1119/cs231n, Dropout), the same
# in the 2021-2022 editions, whose cells differ only in the keyword's name.


def test_dropout_forward_cell():
    np.random.seed(231)
    x = np.random.randn(500, 500) + 10
    printed = {  # p: (mean of train-time output, fraction of train-time output set to zero)
        0.25: (10.014059116977283, 0.749784),
        0.4: (9.977917658761159, 0.600796),
        0.7: (9.987811912159426, 0.30074),
    }
    for p, (train_mean, train_zeros) in printed.items():
        out, _ = dropout_forward(x, {"mode": "train", "p": p})
        out_test, _ = dropout_forward(x, {"mode": "test", "p": p})
        assert x.mean() == pytest.approx(10.000207878477502, rel=1e-12)
        assert out.mean() == pytest.approx(train_mean, rel=1e-12)
        assert out_test.mean() == pytest.approx(10.000207878477502, rel=1e-12)
        assert (out == 0).mean() == train_zeros
        assert (out_test == 0).mean() == 0.0


# printed: keep probability -> initial loss. The third model's weights are drawn after the second
# model's seeded dropout has reseeded NumPy's global generator, as the course's dropout does.
DROPOUT_CHECK_LOSSES = {1: 2.3004790897684924, 0.75: 2.302371489704412, 0.5: 2.3042759220785896}


@pytest.mark.parametrize("keep_name", KEEP_NAMES)
def test_dropout_gradient_check_cell(keep_name):
    X, y, D, hidden_dims, C = notebook_data()
    for keep, initial_loss in DROPOUT_CHECK_LOSSES.items():
        model = FullyConnectedNet(
            hidden_dims, input_dim=D, num_classes=C, weight_scale=5e-2, dtype=np.float64, seed=123, **{keep_name: keep}
        )
        loss, _ = model.loss(X, y)
        assert loss == pytest.approx(initial_loss, rel=1e-12)
        # "Relative errors should be around e-6 or less; Note that it's fine if for
        # dropout=1 you have W2 error be on the order of e-5." Printed: W2 2.21e-05 at keep 1,
        # every other W 4.76e-06 or less, every b 2.58e-08 or less.
        for name, error in printed_errors(model, X, y).items():
            bound = 1e-4 if (name, keep) == ("W2", 1) else 1e-5 if name.startswith("W") else 1e-7
            assert error < bound, (keep, name, error)


@pytest.mark.parametrize("keep_name", KEEP_NAMES)
def test_regularization_experiment_models_build(keep_name):
    # "model = FullyConnectedNet([500], dropout=dropout)" for dropout in [1, 0.25]
    for keep in (1, 0.25):
        model = FullyConnectedNet([500], **{keep_name: keep})
        assert model.use_dropout == (keep != 1)
        assert model.dropout_param.get("p", 1) == keep


# --- BatchNormalization.ipynb ---------------------------------------------------------------------
# Stored output: a completed 2019 copy (BatchNormalization, "Fully Connected Nets with Batch
# Normalization"), which prints b1 and b2 errors of 0.00e+00 (reg 0); layerwise prints 0.00e+00 too.


BATCHNORM_CHECK_LOSSES = {0: 2.2611955101340957, 3.14: 6.996533220108303}  # printed: reg -> initial loss


def test_batchnorm_gradient_check_cell():
    X, y, D, hidden_dims, C = notebook_data()
    for reg, initial_loss in BATCHNORM_CHECK_LOSSES.items():  # one loop: the second model's weights follow the first's
        model = FullyConnectedNet(
            hidden_dims, input_dim=D, num_classes=C, reg=reg, weight_scale=5e-2, dtype=np.float64, normalization="batchnorm"
        )
        loss, _ = model.loss(X, y)
        assert loss == pytest.approx(initial_loss, rel=1e-12)
        # "You should expect losses between 1e-4~1e-10 for W, losses between 1e-08~1e-10 for b,
        # and losses between 1e-08~1e-09 for beta and gammas." The course itself prints 1.10e-04
        # for W1 (reg 0), the top of "1e-4"; b1 and b2 feed batchnorm and have a zero gradient.
        for name, error in printed_errors(model, X, y).items():
            bound = 2e-4 if name.startswith("W") else 1e-8
            assert error < bound, (reg, name, error)


# --- the spellings themselves ---------------------------------------------------------------------


def test_both_names_of_the_keep_probability_build_the_same_model():
    np.random.seed(0)
    old = FullyConnectedNet([4, 5], input_dim=3, num_classes=2, dropout=0.5, seed=7)
    np.random.seed(0)
    new = FullyConnectedNet([4, 5], input_dim=3, num_classes=2, dropout_keep_ratio=0.5, seed=7)
    assert old.get_config() == new.get_config()
    assert old.dropout_param == new.dropout_param == {"mode": "train", "p": 0.5, "seed": 7}
    for name in new.params:
        np.testing.assert_array_equal(old.params[name], new.params[name])


def test_both_names_at_once_are_refused():
    with pytest.raises(TypeError, match="give the keep probability once, as dropout_keep_ratio or as dropout"):
        FullyConnectedNet([4], dropout_keep_ratio=0.5, dropout=0.5)


def test_dropout_zero_is_refused_not_read_as_pre_2018_no_dropout():
    # Before 2018, dropout=0 meant "drop nothing"; layerwise reads dropout as a keep probability
    # and does not guess from the value.
    with pytest.raises(ValueError, match=r"FullyConnectedNet: dropout must be a finite number in \(0, 1\], got 0.0"):
        FullyConnectedNet([4], dropout=0)
