"""``layerwise gradcheck``: numeric gradient check of every layer and model, as a table.

The notebooks' sanity checks as a tool: each backward pass is compared, in float64, with
centered differences of its forward pass, and the maximum relative and absolute errors are
printed next to the tolerance the row must meet, which says which of the two it bounds.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Callable, Iterator

import numpy as np

from .. import layer_utils as lu
from .. import layers as L
from ..classifiers import ConvNet, FullyConnectedNet, ThreeLayerConvNet, TwoLayerNet
from ..fast_layers import conv_backward_fast, conv_forward_fast, max_pool_backward_fast, max_pool_forward_fast
from ..gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error
from .progress import plural

# Gradients that are zero by construction (a bias followed by batch normalization) have a
# meaningless relative error (rounding noise over rounding noise); a gradient whose entries all lie
# within this of zero, numerically and analytically, is judged on its absolute error instead.
ABSOLUTE_TOLERANCE = 1e-8
LAYER_TOLERANCE = 1e-7
MODEL_TOLERANCE = 1e-5
CONV_NET_TOLERANCE = 1e-2  # the notebook's bound: max pooling near ties makes the numbers noisy


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "gradcheck",
        help="numeric gradient check of every layer and model",
        description="Compare every backward pass with numeric gradients (float64) and print the relative errors.",
    )
    parser.add_argument("--only", help="check only the rows whose name contains this text")
    parser.add_argument("--seed", type=int, default=231, help="random seed of the test inputs (default 231)")
    parser.set_defaults(handler=run)


@contextlib.contextmanager
def _global_rng_kept():
    """Put NumPy's global generator back where it was: seeded dropout reseeds it, as the course's
    does, and the inputs of the checks after it must stay those ``--seed`` gives."""
    state = np.random.get_state()
    try:
        yield
    finally:
        np.random.set_state(state)


def _seeded_dropout(x: np.ndarray) -> tuple:
    with _global_rng_kept():
        return L.dropout_forward(x, {"mode": "train", "p": 0.6, "seed": 1})


def _layer(name: str, forward: Callable, backward: Callable, inputs: dict[str, np.ndarray]) -> Iterator[tuple]:
    """Check ``backward(dout, cache)`` against numeric gradients of ``forward(**inputs)[0]``."""
    out, cache = forward(**inputs)
    dout = np.random.randn(*out.shape)
    grads = backward(dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    for (arg, value), grad in zip(inputs.items(), grads):
        if not isinstance(value, np.ndarray):
            continue

        def f(_, arg=arg):
            return forward(**inputs)[0]

        numeric = eval_numerical_gradient_array(f, value, dout)
        yield name, arg, numeric, grad, LAYER_TOLERANCE


def _model(name: str, model, X: np.ndarray, y: np.ndarray, tolerance: float, h: float = 1e-5) -> Iterator[tuple]:
    _, grads = model.loss(X, y)
    for param in sorted(grads):
        numeric = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[param], verbose=False, h=h)
        yield name, param, numeric, grads[param], tolerance


def checks() -> Iterator[tuple[str, str, np.ndarray, np.ndarray, float]]:
    """Every check, as rows ``(what, gradient name, numeric, analytic, relative tolerance)``."""
    r = np.random.randn
    conv = {"stride": 1, "pad": 1}
    pool = {"pool_height": 2, "pool_width": 2, "stride": 2}
    yield from _layer("affine", L.affine_forward, L.affine_backward, {"x": r(4, 2, 3), "w": r(6, 5), "b": r(5)})
    yield from _layer("relu", L.relu_forward, L.relu_backward, {"x": r(5, 6)})
    for loss in (L.softmax_loss, L.svm_loss):
        x, y = 0.001 * r(20, 10), np.random.randint(10, size=20)
        _, dx = loss(x, y)
        yield loss.__name__, "x", eval_numerical_gradient(lambda x: loss(x, y)[0], x, verbose=False), dx, LAYER_TOLERANCE
    yield from _layer("conv naive", lambda x, w, b: L.conv_forward_naive(x, w, b, conv), L.conv_backward_naive,
                      {"x": r(2, 3, 5, 5), "w": r(2, 3, 3, 3), "b": r(2)})  # fmt: skip
    yield from _layer("conv fast (stride 2)", lambda x, w, b: conv_forward_fast(x, w, b, {"stride": 2, "pad": 1}),
                      conv_backward_fast, {"x": r(2, 3, 7, 7), "w": r(4, 3, 3, 3), "b": r(4)})  # fmt: skip
    yield from _layer("max pool naive", lambda x: L.max_pool_forward_naive(x, pool), L.max_pool_backward_naive, {"x": r(2, 2, 4, 4)})
    yield from _layer("max pool fast", lambda x: max_pool_forward_fast(x, pool), max_pool_backward_fast, {"x": r(2, 2, 4, 4)})
    bn = lambda x, gamma, beta: L.batchnorm_forward(x, gamma, beta, {"mode": "train"})  # noqa: E731
    bn_inputs = {"x": 5 * r(6, 4) + 3, "gamma": r(4), "beta": r(4)}
    yield from _layer("batchnorm", bn, L.batchnorm_backward, bn_inputs)
    yield from _layer("batchnorm (alt)", bn, L.batchnorm_backward_alt, bn_inputs)
    yield from _layer("layernorm", lambda x, gamma, beta: L.layernorm_forward(x, gamma, beta, {}), L.layernorm_backward, bn_inputs)
    yield from _layer("dropout", _seeded_dropout, L.dropout_backward, {"x": r(5, 6)})
    yield from _layer("spatial batchnorm", lambda x, gamma, beta: L.spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"}),
                      L.spatial_batchnorm_backward, {"x": 2 * r(2, 3, 4, 5) + 1, "gamma": r(3), "beta": r(3)})  # fmt: skip
    yield from _layer("spatial groupnorm", lambda x, gamma, beta: L.spatial_groupnorm_forward(x, gamma, beta, 2, {}),
                      L.spatial_groupnorm_backward, {"x": r(2, 4, 3, 3), "gamma": r(1, 4, 1, 1), "beta": r(1, 4, 1, 1)})  # fmt: skip
    yield from _layer("affine-relu", lu.affine_relu_forward, lu.affine_relu_backward, {"x": r(3, 4), "w": r(4, 5), "b": r(5)})
    yield from _layer("affine-bn-relu", lambda x, w, b, gamma, beta: lu.affine_bn_relu_forward(x, w, b, gamma, beta, {"mode": "train"}),
                      lu.affine_bn_relu_backward, {"x": r(4, 4), "w": r(4, 5), "b": r(5), "gamma": r(5), "beta": r(5)})  # fmt: skip
    yield from _layer("conv-relu-pool", lambda x, w, b: lu.conv_relu_pool_forward(x, w, b, conv, pool), lu.conv_relu_pool_backward,
                      {"x": r(2, 3, 6, 6), "w": r(3, 3, 3, 3), "b": r(3)})  # fmt: skip

    X, y = r(3, 5), np.random.randint(7, size=3)
    yield from _model("TwoLayerNet reg=0.7", TwoLayerNet(input_dim=5, hidden_dim=10, num_classes=7, reg=0.7), X, y, MODEL_TOLERANCE)
    X, y = r(2, 15), np.random.randint(10, size=2)
    for normalization in (None, "batchnorm", "layernorm"):
        model = FullyConnectedNet([20, 30], input_dim=15, reg=0.1, weight_scale=5e-2, normalization=normalization, dtype=np.float64)
        yield from _model(f"FullyConnectedNet {normalization or 'plain'}", model, X, y, MODEL_TOLERANCE)
    model = FullyConnectedNet([20, 30], input_dim=15, weight_scale=5e-2, dropout_keep_ratio=0.5, seed=123, dtype=np.float64)
    with _global_rng_kept():
        yield from _model("FullyConnectedNet dropout", model, X, y, MODEL_TOLERANCE)
    X, y = r(2, 3, 8, 8), np.random.randint(10, size=2)
    model = ThreeLayerConvNet(input_dim=(3, 8, 8), num_filters=3, filter_size=3, hidden_dim=7, dtype=np.float64)
    yield from _model("ThreeLayerConvNet", model, X, y, CONV_NET_TOLERANCE, h=1e-6)
    X, y = r(2, 3, 6, 6), np.random.randint(10, size=2)
    blocks = ((4, False), {"filters": 4, "pool": True, "residual": True})
    model = ConvNet(input_dim=(3, 6, 6), blocks=blocks, normalization="groupnorm", groups=2, global_pool="avg",
                    reg=0.1, label_smoothing=0.1, dtype=np.float64)  # fmt: skip
    yield from _model("ConvNet", model, X, y, MODEL_TOLERANCE)


def applicable_tolerance(numeric: np.ndarray, analytic: np.ndarray, relative: float) -> tuple[str, float]:
    """``("rel", relative)``, or ``("abs", ABSOLUTE_TOLERANCE)`` for a gradient that is zero by construction."""
    scale = max(float(np.max(np.abs(numeric))), float(np.max(np.abs(analytic)))) if numeric.size else 0.0
    return ("abs", ABSOLUTE_TOLERANCE) if scale <= ABSOLUTE_TOLERANCE else ("rel", relative)


def run(options: dict[str, Any]) -> int:
    np.random.seed(options.get("seed", 231))
    only = options.get("only")
    out = sys.stdout
    print(f"{'check':<28}{'gradient':<10}{'rel. error':>12}{'tolerance':>12}{'abs. error':>12}  result", file=out)
    failures = total = 0
    for name, grad, numeric, analytic, tolerance in checks():
        if only and only.lower() not in name.lower():
            continue
        error = rel_error(numeric, analytic)
        absolute = float(np.max(np.abs(numeric - analytic))) if numeric.size else 0.0
        kind, bound = applicable_tolerance(numeric, analytic, tolerance)
        ok = (error if kind == "rel" else absolute) <= bound
        total += 1
        failures += not ok
        stated = f"{kind} {bound:.0e}"
        print(f"{name:<28}{grad:<10}{error:>12.2e}{stated:>12}{absolute:>12.1e}  {'ok' if ok else 'FAIL'}", file=out)
    print(f"{total - failures}/{plural(total, 'gradient')} within tolerance", file=out)
    return 1 if failures else 0
