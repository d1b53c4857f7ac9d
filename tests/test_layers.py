"""Specification of :mod:`layerwise.layers`, the front door of the layers, over one table of every
forward/backward pair (``CASES`` in tests/helpers.py): the dtype policy (float32 in, float32 out;
float64 in, float64 out), float32 agreeing with float64, and no input mutated.

Each layer's own behaviour is specified in tests/_layers/test_<module>.py, and every numeric
gradient check in tests/test_gradients.py."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from layerwise.layers import affine_forward, batchnorm_forward, conv_forward_naive, layernorm_forward

from tests.helpers import CASES, as_tuple


def _arrays(args):
    return [(i, a) for i, a in enumerate(args) if isinstance(a, np.ndarray)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_outputs_and_gradients_keep_the_input_dtype(name, dtype):
    case = CASES[name]
    rng = np.random.default_rng(11)
    args = case.setup(rng, dtype)
    out, cache = case.forward(*args)
    assert out.dtype == dtype
    grads = as_tuple(case.backward(rng.standard_normal(out.shape).astype(dtype), cache))
    for i, grad in zip(case.wrt, grads):
        assert grad.dtype == dtype, f"gradient of argument {i} is {grad.dtype}"


def _to_float32(arg):
    if isinstance(arg, np.ndarray):
        return arg.astype(np.float32)
    if isinstance(arg, dict):
        return {k: _to_float32(v) for k, v in arg.items()}
    return arg


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_results_agree_with_float64(name):
    """float32 is computed in float32, not just cast at the end: it agrees with float64 to ~1e-7."""
    case = CASES[name]
    args64 = case.setup(np.random.default_rng(17), np.float64)
    args32 = [_to_float32(a) for a in args64]
    out64, cache64 = case.forward(*args64)
    out32, cache32 = case.forward(*args32)
    dout = np.random.default_rng(18).standard_normal(out64.shape)
    pairs = [(out32, out64)] + list(
        zip(as_tuple(case.backward(dout.astype(np.float32), cache32)), as_tuple(case.backward(dout, cache64)))
    )
    for low, high in pairs:
        assert low.dtype == np.float32
        assert np.max(np.abs(low - high)) <= 1e-5 * np.max(np.abs(high)) + 1e-7


@pytest.mark.parametrize(
    "forward, args",
    [
        (
            affine_forward,
            lambda rng: (rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((3, 4)), rng.standard_normal(4)),
        ),
        (
            conv_forward_naive,
            lambda rng: (
                rng.standard_normal((1, 2, 4, 4)).astype(np.float32),
                rng.standard_normal((3, 2, 3, 3)),
                rng.standard_normal(3),
                {"stride": 1, "pad": 1},
            ),
        ),
        (
            batchnorm_forward,
            lambda rng: (rng.standard_normal((4, 3)).astype(np.float32), np.ones(3), np.zeros(3), {"mode": "train"}),
        ),
        (layernorm_forward, lambda rng: (rng.standard_normal((4, 3)).astype(np.float32), np.ones(3), np.zeros(3), {})),
    ],
    ids=["affine", "conv_naive", "batchnorm", "layernorm"],
)
def test_float64_parameters_do_not_upcast_float32_activations(forward, args):
    out, _ = forward(*args(np.random.default_rng(13)))
    assert out.dtype == np.float32


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_and_backward_do_not_mutate_their_inputs(name):
    case = CASES[name]
    rng = np.random.default_rng(14)
    args = case.setup(rng, np.float64)
    saved = copy.deepcopy(args)
    out, cache = case.forward(*args)
    dout = rng.standard_normal(out.shape)
    dout_saved = dout.copy()
    for i, a in _arrays(args):
        np.testing.assert_array_equal(a, saved[i], err_msg=f"forward changed argument {i}")
    out_saved = out.copy()
    case.backward(dout, cache)
    case.backward(dout, cache)  # a second backward must see the same cache
    np.testing.assert_array_equal(dout, dout_saved, err_msg="backward changed dout")
    np.testing.assert_array_equal(out, out_saved, err_msg="backward changed the forward output")
    for i, a in _arrays(args):
        np.testing.assert_array_equal(a, saved[i], err_msg=f"backward changed argument {i}")
    for i, a in enumerate(args):
        if isinstance(a, dict):
            # bn_param's running statistics are the one documented mutable input.
            for key in set(saved[i]) - {"running_mean", "running_var"}:
                assert a[key] == saved[i][key], f"{key!r} of argument {i} changed"


def test_backward_twice_gives_the_same_gradients():
    """Caches are not consumed: a backward can be replayed (gradient checks rely on it)."""
    for name in ("batchnorm-train", "spatial_groupnorm-G2", "conv_naive-stride2-pad1", "dropout-train-seeded"):
        case = CASES[name]
        rng = np.random.default_rng(16)
        args = case.setup(rng, np.float64)
        out, cache = case.forward(*args)
        dout = rng.standard_normal(out.shape)
        first = as_tuple(case.backward(dout, cache))
        second = as_tuple(case.backward(dout, cache))
        for a, b in zip(first, second):
            np.testing.assert_array_equal(a, b)
