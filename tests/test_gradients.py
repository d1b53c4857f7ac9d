"""Every backward function against the numeric gradient of its forward, in float64: one table.

The layers span modules (:mod:`layerwise.layers`, :mod:`layerwise.fast_layers`,
:mod:`layerwise.layer_utils`), so their gradient checks live here, in one table ``GRADIENTS`` of
(name, forward, backward, inputs, tolerances) and one check, ``test_backward_matches_numeric_gradient``,
that compares each gradient a backward returns with the centered difference of its forward.

Rows come in three kinds: the notebooks' cells (their data, seeds and tolerances: the numbers
they print must pass), one row per pair of the ``CASES`` table in tests/helpers.py (small,
awkward shapes, seeded by the row's name), and the geometries of the fast layers.
"""

from __future__ import annotations

import copy
from typing import Callable, NamedTuple

import numpy as np
import pytest

from layerwise import fast_layers, layer_utils, layers
from layerwise.fast_layers import conv_backward_fast, conv_forward_fast, max_pool_backward_fast, max_pool_forward_fast
from layerwise.gradient_check import rel_error
from layerwise.layer_utils import (
    affine_bn_relu_backward,
    affine_bn_relu_forward,
    affine_ln_relu_backward,
    affine_ln_relu_forward,
    affine_relu_backward,
    affine_relu_forward,
    conv_block_backward,
    conv_block_forward,
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
    spatial_batchnorm_relu_backward,
    spatial_batchnorm_relu_forward,
)
from layerwise.layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    conv_backward_naive,
    conv_forward_naive,
    dropout_backward,
    dropout_forward,
    layernorm_backward,
    layernorm_forward,
    max_pool_backward_naive,
    max_pool_forward_naive,
    relu_backward,
    relu_forward,
    softmax_loss,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
    svm_loss,
)

from tests.helpers import CASES, POOL_2X2, as_tuple, numeric_grads


class Zero(NamedTuple):
    """The true gradient is exactly 0 (a bias just before batch norm): the computed one must be 0
    to ``analytic``, the numeric one to ``numeric``; a relative error means nothing there."""

    analytic: float = 1e-12
    numeric: float = 1e-8


class Row(NamedTuple):
    """One gradient check.

    ``inputs()`` gives the forward's float64 arguments and the upstream derivative ``dout``;
    ``wrt`` the argument positions the backward returns gradients for, in order; ``tol`` the
    largest relative error accepted for each (or ``Zero``); ``patch`` (dotted name, value) pairs
    set while the row runs.
    """

    forward: Callable
    backward: Callable
    inputs: Callable[[], tuple[list, np.ndarray]]
    wrt: tuple
    tol: tuple
    patch: tuple = ()


# --- the notebooks' cells: np.random.seed(231), then the arguments and dout in the cell's order ----


def _seeded(*shapes, scale=1.0, shift=0.0):
    """``np.random.seed(231)``, then ``scale * randn(shape) + shift`` for the first shape and
    ``randn(shape)`` for the others, in order (the last one is dout)."""

    def draw():
        np.random.seed(231)
        first, *rest = shapes
        return [scale * np.random.randn(*first) + shift, *(np.random.randn(*s) for s in rest)]

    return draw


def _notebook(draw, *extra):
    """The cell's arrays, the non-array arguments ``extra`` after them, and dout last."""

    def inputs():
        *arrays, dout = draw()
        return [*arrays, *copy.deepcopy(extra)], dout

    return inputs


def _loss(loss_fn):
    """A loss as a forward/backward pair: ``(loss, dx)`` is (output, cache), and the backward of an
    upstream derivative ``dout`` of the loss is ``dout * dx``."""

    def inputs():
        np.random.seed(231)
        x = 0.001 * np.random.randn(50, 10)
        y = np.random.randint(10, size=50)
        return [x, y], np.array(1.0)

    return Row(loss_fn, lambda dout, dx: dout * dx, inputs, (0,), (1e-8,))


def _smoothed_softmax_loss(x, y):
    return softmax_loss(x, y, label_smoothing=0.1)


def _dropout_notebook():
    draw = _seeded((10, 10), (10, 10), shift=10.0)
    return _notebook(draw, {"mode": "train", "p": 0.2, "seed": 123})


def _groupnorm_notebook(G):
    def inputs():
        np.random.seed(231)
        N, C, H, W = 2, 6, 4, 5
        x = 5 * np.random.randn(N, C, H, W) + 12
        gamma, beta = np.random.randn(1, C, 1, 1), np.random.randn(1, C, 1, 1)
        return [x, gamma, beta, G, {}], np.random.randn(N, C, H, W)

    return Row(spatial_groupnorm_forward, spatial_groupnorm_backward, inputs, (0, 1, 2), (1e-6, 1e-8, 1e-8))


_BN_NOTEBOOK = _notebook(_seeded((4, 5), (5,), (5,), (4, 5), scale=5.0, shift=12.0), {"mode": "train"})

NOTEBOOK = {
    "affine-notebook": Row(affine_forward, affine_backward, _notebook(_seeded((10, 2, 3), (6, 5), (5,), (10, 5))), (0, 1, 2), (1e-9,) * 3),
    "relu-notebook": Row(relu_forward, relu_backward, _notebook(_seeded((10, 10), (10, 10))), (0,), (1e-11,)),
    "softmax_loss-notebook": _loss(softmax_loss),
    "svm_loss-notebook": _loss(svm_loss),
    # The centered difference's rounding with h = 1e-5 (the plain loss sees 9.4e-9 on this data) gives
    # 1.1e-8 here; tests/_layers/test_losses.py checks it with h = 1e-4 to 1e-8.
    "softmax_loss-label_smoothing": _loss(_smoothed_softmax_loss)._replace(tol=(2e-8,)),
    # The notebook prints dx error 1.159803161159293e-08 for this very data ("around e-8 or
    # less"): the centered difference's own error, reproduced here to the last digit. 1e-8
    # would reject the notebook's reference output, so dx gets 2e-8.
    "conv_naive-notebook": Row(
        conv_forward_naive, conv_backward_naive,
        _notebook(_seeded((4, 3, 5, 5), (2, 3, 3, 3), (2,), (4, 2, 5, 5)), {"stride": 1, "pad": 1}),
        (0, 1, 2), (2e-8, 1e-8, 1e-8),
    ),
    "max_pool_naive-notebook": Row(
        max_pool_forward_naive, max_pool_backward_naive, _notebook(_seeded((3, 2, 8, 8), (3, 2, 4, 4)), POOL_2X2), (0,), (1e-11,)
    ),
    # notebook: dx 1.7e-09
    "batchnorm-notebook": Row(batchnorm_forward, batchnorm_backward, _BN_NOTEBOOK, (0, 1, 2), (1e-8, 1e-10, 1e-10)),
    "batchnorm_alt-notebook": Row(batchnorm_forward, batchnorm_backward_alt, _BN_NOTEBOOK, (0, 1, 2), (1e-8, 1e-10, 1e-10)),
    "layernorm-notebook": Row(
        layernorm_forward, layernorm_backward, _notebook(_seeded((4, 5), (5,), (5,), (4, 5), scale=5.0, shift=12.0), {}),
        (0, 1, 2), (1e-8, 1e-10, 1e-10),
    ),
    # notebook: 5.45e-11; the Dropout notebook's cell of every course edition (tests/test_course_editions.py)
    "dropout-notebook": Row(dropout_forward, dropout_backward, _dropout_notebook(), (0,), (1e-10,)),
    # notebook: dx 2.8e-07 (x ~ 12 +- 5 makes the numeric estimate noisy)
    "spatial_batchnorm-notebook": Row(
        spatial_batchnorm_forward, spatial_batchnorm_backward,
        _notebook(_seeded((2, 3, 4, 5), (3,), (3,), (2, 3, 4, 5), scale=5.0, shift=12.0), {"mode": "train"}),
        (0, 1, 2), (1e-6, 1e-10, 1e-10),
    ),
    # the notebook's data (x ~ 12 +- 5) limits the numeric estimate of dx
    **{f"spatial_groupnorm-notebook-G{G}": _groupnorm_notebook(G) for G in (1, 2, 6)},
    "affine_relu-notebook": Row(
        affine_relu_forward, affine_relu_backward, _notebook(_seeded((2, 3, 4), (12, 10), (10,), (2, 10))), (0, 1, 2), (1e-9,) * 3
    ),
    # The notebook's tolerance, with its seed: no near-tie in a pool window falls within h here.
    # notebook: dx 9.59e-09, dw 5.80e-09, db 1.01e-09
    "conv_relu_pool-notebook": Row(
        conv_relu_pool_forward, conv_relu_pool_backward,
        _notebook(_seeded((2, 3, 16, 16), (3, 3, 3, 3), (3,), (2, 3, 8, 8)), {"stride": 1, "pad": 1}, POOL_2X2),
        (0, 1, 2), (1e-8,) * 3,
    ),
    "conv_relu-notebook": Row(
        conv_relu_forward, conv_relu_backward,
        _notebook(_seeded((2, 3, 8, 8), (3, 3, 3, 3), (3,), (2, 3, 8, 8)), {"stride": 1, "pad": 1}),
        (0, 1, 2), (1e-8,) * 3,
    ),
}


# --- every pair of layerwise.layers, on the CASES table's inputs ---------------------------------


def _case(name):
    """The CASES row's inputs, drawn from a generator seeded by the name; dout drawn after them."""
    case = CASES[name]

    def inputs():
        rng = np.random.default_rng(sum(map(ord, name)))
        args = case.setup(rng, np.float64)
        out, _ = case.forward(*args)
        return args, rng.standard_normal(out.shape)

    return Row(case.forward, case.backward, inputs, case.wrt, case.tol)


PAIRS = {name: _case(name) for name in CASES}


# --- the normalized sandwiches of layerwise.layer_utils ------------------------------------------


def _sandwich(forward, arguments):
    def inputs():
        args = arguments(np.random.default_rng(231))
        out, _ = forward(*args)
        return args, np.random.default_rng(0).standard_normal(out.shape)

    return inputs


def _affine_bn_relu(rng):
    x = rng.standard_normal((5, 2, 3))
    w, b = rng.standard_normal((6, 4)), rng.standard_normal(4)
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    return [x, w, b, gamma, beta, {"mode": "train"}]


def _affine_ln_relu(rng):
    x = rng.standard_normal((3, 7))
    w, b = rng.standard_normal((7, 5)), rng.standard_normal(5)
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    return [x, w, b, gamma, beta, {}]


def _conv_bn_relu(rng):
    x = rng.standard_normal((2, 3, 5, 5))
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    return [x, w, b, gamma, beta, {"stride": 1, "pad": 1}, {"mode": "train"}]


def _spatial_batchnorm_relu(rng):
    x = rng.standard_normal((3, 4, 3, 5)) * 2 + 1
    return [x, rng.standard_normal(4), rng.standard_normal(4), {"mode": "train"}]


def _conv_block(normalization, pool, residual):
    """conv_block_forward with gamma and beta as positional arguments (3 and 4), so that the rows
    can take their numeric gradients; without normalization the forward takes x, w, b only."""
    norm_param = {None: None, "batchnorm": {"mode": "train"}, "groupnorm": {"groups": 2}}[normalization]
    pool_param = POOL_2X2 if pool else None

    def forward(x, w, b, gamma=None, beta=None):
        return conv_block_forward(
            x, w, b, {"stride": 1, "pad": 1}, normalization=normalization, gamma=gamma, beta=beta,
            norm_param=copy.deepcopy(norm_param), pool_param=pool_param, residual=residual,
        )  # fmt: skip

    def backward(dout, cache):
        dx, dw, db, dgamma, dbeta = conv_block_backward(dout, cache)
        return (dx, dw, db) if normalization is None else (dx, dw, db, dgamma, dbeta)

    def arguments(rng):
        x = rng.standard_normal((2, 4, 4, 6))
        w, b = 0.3 * rng.standard_normal((4, 4, 3, 3)), rng.standard_normal(4)
        return [x, w, b] if normalization is None else [x, w, b, rng.standard_normal(4), rng.standard_normal(4)]

    # The bias before batch norm has gradient 0; conv_block_backward itself is in the table for
    # the coverage check through the batchnorm rows, whose five gradients it returns as they are.
    db_tol = Zero() if normalization == "batchnorm" else 1e-7
    tol = (1e-6, 1e-6, db_tol) + (() if normalization is None else (1e-6, 1e-6))
    chosen = conv_block_backward if normalization == "batchnorm" else backward
    return Row(forward, chosen, _sandwich(forward, arguments), range(len(tol)), tol)


# A bias before batch norm is cancelled by the mean subtraction: its gradient is 0.
SANDWICHES = {
    "affine_bn_relu": Row(
        affine_bn_relu_forward, affine_bn_relu_backward, _sandwich(affine_bn_relu_forward, _affine_bn_relu), range(5), (1e-6, 1e-6, Zero(), 1e-6, 1e-6)
    ),
    "affine_ln_relu": Row(affine_ln_relu_forward, affine_ln_relu_backward, _sandwich(affine_ln_relu_forward, _affine_ln_relu), range(5), (1e-6,) * 5),
    "conv_bn_relu": Row(
        conv_bn_relu_forward, conv_bn_relu_backward, _sandwich(conv_bn_relu_forward, _conv_bn_relu), range(5), (1e-6, 1e-6, Zero(), 1e-6, 1e-6)
    ),
    "spatial_batchnorm_relu": Row(
        spatial_batchnorm_relu_forward,
        spatial_batchnorm_relu_backward,
        _sandwich(spatial_batchnorm_relu_forward, _spatial_batchnorm_relu),
        range(3),
        (1e-7,) * 3,
    ),
    **{
        f"conv_block-{normalization or 'plain'}{'-pool' if pool else ''}{'-residual' if residual else ''}": _conv_block(
            normalization, pool, residual
        )
        for normalization in (None, "batchnorm", "groupnorm")
        for pool in (False, True)
        for residual in (False, True)
    },
}


# --- the fast layers' geometries ------------------------------------------------------------------


def _conv_fast(x_shape, w_shape, stride, pad):
    def inputs():
        rng = np.random.default_rng(0)
        x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
        param = {"stride": stride, "pad": pad}
        out, _ = conv_forward_fast(x, w, b, param)
        return [x, w, b, param], rng.standard_normal(out.shape)

    return inputs


def _pool_fast(x_shape, PH, PW, stride):
    def inputs():
        # Distinct values a few h apart: finite differences never cross a tie.
        x = np.random.default_rng(1).permutation(np.prod(x_shape)).reshape(x_shape) * 0.01
        param = {"pool_height": PH, "pool_width": PW, "stride": stride}
        out, _ = max_pool_forward_fast(x, param)
        return [x, param], np.random.default_rng(2).standard_normal(out.shape)

    return inputs


CONV_FAST = {
    "3x3-s1-p1": ((2, 3, 5, 6), (3, 3, 3, 3), 1, 1),
    "3x2-s2-p1": ((2, 2, 8, 6), (3, 2, 3, 2), 2, 1),  # non-square filter, stride does not tile
    "4x4-s3-p2": ((1, 2, 7, 7), (2, 2, 4, 4), 3, 2),  # filter larger than stride, non-tiling
    "1x1-s2-p0": ((2, 1, 5, 5), (2, 1, 1, 1), 2, 0),
}
CHUNKING = {"one-chunk": 1 << 22, "chunk-per-image": 1}
POOL_FAST = {
    "2x2-s2": ((2, 3, 8, 8), 2, 2, 2),
    "3x2-s2": ((2, 2, 7, 9), 3, 2, 2),
    "3x3-s1": ((1, 2, 7, 7), 3, 3, 1),
    "2x3-s3": ((2, 1, 9, 6), 2, 3, 3),
}
FAST = {
    **{
        f"conv_fast-{geometry}-{chunking}": Row(
            conv_forward_fast, conv_backward_fast, _conv_fast(*shapes), (0, 1, 2), (1e-7,) * 3,
            (("layerwise._layers.conv_plan.CHUNK_BYTES", chunk_bytes),),
        )
        for geometry, shapes in CONV_FAST.items()
        for chunking, chunk_bytes in CHUNKING.items()
    },
    **{
        f"max_pool_fast-{geometry}": Row(max_pool_forward_fast, max_pool_backward_fast, _pool_fast(*shapes), (0,), (1e-7,))
        for geometry, shapes in POOL_FAST.items()
    },
}

GRADIENTS = {**NOTEBOOK, **PAIRS, **SANDWICHES, **FAST}


def test_every_public_backward_function_has_a_gradient_check():
    public = {name for module in (layers, fast_layers, layer_utils) for name in module.__all__ if "_backward" in name}
    aliases = {"conv_backward_strides"}  # conv_backward_fast under its cs231n name
    checked = {row.backward.__name__ for row in GRADIENTS.values()}
    assert public - aliases <= checked, f"no numeric gradient check for {sorted(public - aliases - checked)}"


@pytest.mark.parametrize("name", list(GRADIENTS))
def test_backward_matches_numeric_gradient(name, monkeypatch):
    row = GRADIENTS[name]
    for target, value in row.patch:
        monkeypatch.setattr(target, value)
    args, dout = row.inputs()
    out, cache = row.forward(*args)
    grads = as_tuple(row.backward(dout, cache))
    wrt = tuple(row.wrt)
    assert len(grads) == len(wrt) == len(row.tol)
    expected = numeric_grads(row.forward, args, wrt, dout)
    for i, grad, num, tol in zip(wrt, grads, expected, row.tol):
        assert grad.shape == np.shape(args[i]), f"gradient of argument {i} has the wrong shape"
        assert grad.dtype == np.float64, f"gradient of argument {i} is {grad.dtype}"
        if isinstance(tol, Zero):
            np.testing.assert_allclose(grad, 0, atol=tol.analytic, err_msg=f"gradient of argument {i}")
            np.testing.assert_allclose(num, 0, atol=tol.numeric, err_msg=f"numeric gradient of argument {i}")
        else:
            assert rel_error(num, grad) < tol, f"gradient of argument {i}: rel error {rel_error(num, grad):.2e}"
