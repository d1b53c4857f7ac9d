"""Forward and backward of the layers against ``torch.nn.functional``, in float64.

Each check runs the layer and its backward with one random upstream gradient ``dout``, and the
torch function with autograd on ``sum(out * dout)``; both must agree to the tolerances below
(float64 round-off of the different summation orders, far below any modelling difference).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
F = torch.nn.functional

from layerwise.fast_layers import (  # noqa: E402
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from layerwise.layers import (  # noqa: E402
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    conv_backward_naive,
    conv_forward_naive,
    global_avg_pool_backward,
    global_avg_pool_forward,
    global_max_pool_backward,
    global_max_pool_forward,
    layernorm_backward,
    layernorm_forward,
    max_pool_backward_naive,
    max_pool_forward_naive,
    softmax_loss,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
    svm_loss,
)

RTOL, ATOL = 1e-10, 1e-12  # float64 everywhere


def leaf(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def torch_vjp(out, inputs, dout):
    """Gradients of ``sum(out * dout)`` with respect to ``inputs`` (torch leaves), as numpy."""
    grads = torch.autograd.grad(out, inputs, grad_outputs=torch.tensor(dout, dtype=torch.float64))
    return [g.numpy() for g in grads]


def close(actual, expected, rtol=RTOL, atol=ATOL, what=""):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


# --- convolution ----------------------------------------------------------------------------------

CONV_CASES = [
    # x shape, w shape, stride, pad  (all tile exactly, so the naive layer accepts them)
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 1),
    ((2, 3, 7, 7), (2, 3, 3, 3), 2, 1),
    ((1, 2, 6, 8), (3, 2, 2, 4), 2, 0),  # non-square filter
    ((2, 1, 5, 7), (2, 1, 1, 3), 1, 2),  # 1xk filter, pad larger than needed
    ((3, 2, 9, 8), (2, 2, 3, 2), 3, 0),  # stride 3
    ((1, 3, 4, 4), (2, 3, 4, 4), 1, 0),  # filter as large as the input
]
CONV_IMPLS = {
    "naive": (conv_forward_naive, conv_backward_naive),
    "fast": (conv_forward_fast, conv_backward_fast),
}


@pytest.mark.parametrize("impl", sorted(CONV_IMPLS))
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CONV_CASES)
def test_conv_matches_torch(impl, x_shape, w_shape, stride, pad):
    forward, backward = CONV_IMPLS[impl]
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    out, cache = forward(x, w, b, {"stride": stride, "pad": pad})
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    tout = F.conv2d(tx, tw, tb, stride=stride, padding=pad)
    close(out, tout.detach().numpy(), what="out")
    dout = rng.standard_normal(out.shape)
    for name, mine, ref in zip(("dx", "dw", "db"), backward(dout, cache), torch_vjp(tout, (tx, tw, tb), dout)):
        close(mine, ref, what=name)


@pytest.mark.parametrize(
    "x_shape, w_shape, stride, pad",
    [((2, 3, 8, 8), (2, 3, 3, 3), 2, 0), ((1, 2, 7, 6), (3, 2, 2, 3), 3, 1), ((2, 2, 10, 9), (2, 2, 4, 4), 3, 1)],
)
def test_fast_conv_matches_torch_when_the_stride_does_not_tile(x_shape, w_shape, stride, pad):
    """conv_forward_fast drops the positions the stride cannot reach, as conv2d does."""
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    out, cache = conv_forward_fast(x, w, b, {"stride": stride, "pad": pad})
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    tout = F.conv2d(tx, tw, tb, stride=stride, padding=pad)
    assert out.shape == tuple(tout.shape)
    close(out, tout.detach().numpy(), what="out")
    dout = rng.standard_normal(out.shape)
    for name, mine, ref in zip(("dx", "dw", "db"), conv_backward_fast(dout, cache), torch_vjp(tout, (tx, tw, tb), dout)):
        close(mine, ref, what=name)


def test_fast_conv_matches_torch_across_chunks():
    """Big enough images that conv_fast works through the batch a few images at a time
    (here one per chunk, with a reused padding buffer)."""
    rng = np.random.default_rng(10)
    x, w, b = rng.standard_normal((5, 4, 32, 32)), rng.standard_normal((5, 4, 5, 5)), rng.standard_normal(5)
    out, cache = conv_forward_fast(x, w, b, {"stride": 1, "pad": 2})
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    tout = F.conv2d(tx, tw, tb, padding=2)
    close(out, tout.detach().numpy(), what="out")
    dout = rng.standard_normal(out.shape)
    for name, mine, ref in zip(("dx", "dw", "db"), conv_backward_fast(dout, cache), torch_vjp(tout, (tx, tw, tb), dout)):
        close(mine, ref, rtol=1e-9, atol=1e-10, what=name)  # sums over up to 5 * 32 * 32 terms


@settings(max_examples=30, deadline=None)
@given(
    N=st.integers(1, 3),
    C=st.integers(1, 3),
    Fn=st.integers(1, 3),
    HH=st.integers(1, 4),
    WW=st.integers(1, 4),
    H=st.integers(1, 9),
    W=st.integers(1, 9),
    stride=st.integers(1, 3),
    pad=st.integers(0, 2),
)
def test_fast_conv_matches_torch_on_any_geometry(N, C, Fn, HH, WW, H, W, stride, pad):
    assume(HH <= H + 2 * pad and WW <= W + 2 * pad)
    rng = np.random.default_rng(N * 7 + H * 3 + W)
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((Fn, C, HH, WW)), rng.standard_normal(Fn)
    out, cache = conv_forward_fast(x, w, b, {"stride": stride, "pad": pad})
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    tout = F.conv2d(tx, tw, tb, stride=stride, padding=pad)
    close(out, tout.detach().numpy(), what="out")
    dout = rng.standard_normal(out.shape)
    for name, mine, ref in zip(("dx", "dw", "db"), conv_backward_fast(dout, cache), torch_vjp(tout, (tx, tw, tb), dout)):
        close(mine, ref, what=name)


# --- max pooling -----------------------------------------------------------------------------------

POOL_CASES = [
    # x shape, pool height, pool width, stride
    ((2, 3, 8, 8), 2, 2, 2),  # tiling
    ((2, 2, 7, 7), 3, 3, 2),  # overlapping
    ((1, 3, 6, 9), 2, 3, 1),  # overlapping, non-square
    ((2, 2, 9, 7), 2, 2, 2),  # leaves the last row/column uncovered
    ((1, 1, 5, 5), 5, 5, 1),  # one window
]
POOL_IMPLS = {
    "naive": (max_pool_forward_naive, max_pool_backward_naive),
    "fast": (max_pool_forward_fast, max_pool_backward_fast),
}


@pytest.mark.parametrize("impl", sorted(POOL_IMPLS))
@pytest.mark.parametrize("x_shape, ph, pw, stride", POOL_CASES)
def test_max_pool_matches_torch(impl, x_shape, ph, pw, stride):
    forward, backward = POOL_IMPLS[impl]
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape)
    out, cache = forward(x, {"pool_height": ph, "pool_width": pw, "stride": stride})
    tx = leaf(x)
    tout = F.max_pool2d(tx, kernel_size=(ph, pw), stride=stride)
    close(out, tout.detach().numpy(), rtol=0, atol=0, what="out")  # a max is exact
    dout = rng.standard_normal(out.shape)
    close(backward(dout, cache), torch_vjp(tout, (tx,), dout)[0], what="dx")


@pytest.mark.parametrize("impl", sorted(POOL_IMPLS))
@pytest.mark.parametrize("x_shape, ph, pw, stride", POOL_CASES[:3])
def test_max_pool_gives_ties_to_the_first_maximum_like_torch(impl, x_shape, ph, pw, stride):
    """Values in {0, 1, 2}: most windows hold several maxima; the derivative goes to the first
    one in row-major order, as torch's CPU max_pool2d does."""
    forward, backward = POOL_IMPLS[impl]
    rng = np.random.default_rng(11)
    x = rng.integers(0, 3, size=x_shape).astype(np.float64)
    out, cache = forward(x, {"pool_height": ph, "pool_width": pw, "stride": stride})
    tx = leaf(x)
    tout = F.max_pool2d(tx, kernel_size=(ph, pw), stride=stride)
    dout = rng.standard_normal(out.shape)
    close(backward(dout, cache), torch_vjp(tout, (tx,), dout)[0], what="dx")


@settings(max_examples=30, deadline=None)
@given(
    N=st.integers(1, 2),
    C=st.integers(1, 3),
    H=st.integers(1, 9),
    W=st.integers(1, 9),
    ph=st.integers(1, 4),
    pw=st.integers(1, 4),
    stride=st.integers(1, 3),
)
def test_fast_max_pool_matches_torch_on_any_geometry(N, C, H, W, ph, pw, stride):
    assume(ph <= H and pw <= W)
    rng = np.random.default_rng(H * 10 + W)
    x = rng.standard_normal((N, C, H, W))
    out, cache = max_pool_forward_fast(x, {"pool_height": ph, "pool_width": pw, "stride": stride})
    tx = leaf(x)
    tout = F.max_pool2d(tx, kernel_size=(ph, pw), stride=stride)
    close(out, tout.detach().numpy(), rtol=0, atol=0, what="out")
    dout = rng.standard_normal(out.shape)
    close(max_pool_backward_fast(dout, cache), torch_vjp(tout, (tx,), dout)[0], what="dx")


# --- normalization ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backward", [batchnorm_backward, batchnorm_backward_alt])
def test_batchnorm_train_matches_torch(backward):
    rng = np.random.default_rng(3)
    N, D = 8, 5
    x = rng.standard_normal((N, D)) * 3 + 2
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    running_mean = rng.standard_normal(D)
    bn_param = {"mode": "train", "running_mean": running_mean.copy(), "running_var": np.ones(D)}
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    tx, tg, tb = leaf(x), leaf(gamma), leaf(beta)
    t_running_mean, t_running_var = torch.tensor(running_mean), torch.ones(D, dtype=torch.float64)
    # torch's momentum is the weight of the NEW statistic: 0.1 is layerwise's momentum 0.9.
    tout = F.batch_norm(tx, t_running_mean, t_running_var, tg, tb, training=True, momentum=0.1, eps=1e-5)
    close(out, tout.detach().numpy(), what="out")
    close(bn_param["running_mean"], t_running_mean.numpy(), what="running_mean")
    # torch updates running_var with the UNBIASED batch variance; layerwise (like cs231n) with
    # the biased one, the variance it normalizes with. Undo torch's N / (N - 1) to compare.
    torch_var_term = (t_running_var.numpy() - 0.9 * 1.0) / 0.1
    close(bn_param["running_var"], 0.9 + 0.1 * torch_var_term * (N - 1) / N, what="running_var")
    dout = rng.standard_normal(out.shape)
    for name, mine, ref in zip(("dx", "dgamma", "dbeta"), backward(dout, cache), torch_vjp(tout, (tx, tg, tb), dout)):
        close(mine, ref, what=name)


def test_batchnorm_test_mode_matches_torch():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 4))
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    rm, rv = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    out, cache = batchnorm_forward(x, gamma, beta, {"mode": "test", "running_mean": rm, "running_var": rv})
    tx, tg, tb = leaf(x), leaf(gamma), leaf(beta)
    tout = F.batch_norm(tx, torch.tensor(rm), torch.tensor(rv), tg, tb, training=False, eps=1e-5)
    close(out, tout.detach().numpy(), what="out")
    dout = rng.standard_normal(out.shape)
    for name, mine, ref in zip(("dx", "dgamma", "dbeta"), batchnorm_backward(dout, cache), torch_vjp(tout, (tx, tg, tb), dout)):
        close(mine, ref, what=name)


def test_spatial_batchnorm_matches_torch_batch_norm_on_4d_input():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 5, 6)) * 2 - 1
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    bn_param = {"mode": "train"}
    out, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    tx, tg, tb = leaf(x), leaf(gamma), leaf(beta)
    t_running_mean = torch.zeros(4, dtype=torch.float64)
    tout = F.batch_norm(tx, t_running_mean, torch.ones(4, dtype=torch.float64), tg, tb, training=True, momentum=0.1, eps=1e-5)
    close(out, tout.detach().numpy(), what="out")
    close(bn_param["running_mean"], t_running_mean.numpy(), what="running_mean")
    dout = rng.standard_normal(out.shape)
    mine = spatial_batchnorm_backward(dout, cache)
    for name, a, ref in zip(("dx", "dgamma", "dbeta"), mine, torch_vjp(tout, (tx, tg, tb), dout)):
        close(a, ref, what=name)


def test_layernorm_matches_torch():
    rng = np.random.default_rng(6)
    N, D = 5, 7
    x = rng.standard_normal((N, D)) * 3 + 2
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    out, cache = layernorm_forward(x, gamma, beta, {})
    tx, tg, tb = leaf(x), leaf(gamma), leaf(beta)
    tout = F.layer_norm(tx, (D,), tg, tb, eps=1e-5)
    close(out, tout.detach().numpy(), what="out")
    dout = rng.standard_normal(out.shape)
    for name, mine, ref in zip(("dx", "dgamma", "dbeta"), layernorm_backward(dout, cache), torch_vjp(tout, (tx, tg, tb), dout)):
        close(mine, ref, what=name)


@pytest.mark.parametrize("G", [1, 2, 3, 6])
def test_groupnorm_matches_torch(G):
    rng = np.random.default_rng(7)
    N, C, H, W = 2, 6, 4, 5
    x = rng.standard_normal((N, C, H, W)) * 2 + 1
    gamma, beta = rng.standard_normal((1, C, 1, 1)), rng.standard_normal((1, C, 1, 1))
    out, cache = spatial_groupnorm_forward(x, gamma, beta, G, {})
    tx, tg, tb = leaf(x), leaf(gamma.reshape(C)), leaf(beta.reshape(C))
    tout = F.group_norm(tx, G, tg, tb, eps=1e-5)
    close(out, tout.detach().numpy(), what="out")
    dout = rng.standard_normal(out.shape)
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    ref_dx, ref_dgamma, ref_dbeta = torch_vjp(tout, (tx, tg, tb), dout)
    close(dx, ref_dx, what="dx")
    close(dgamma.reshape(C), ref_dgamma, what="dgamma")
    close(dbeta.reshape(C), ref_dbeta, what="dbeta")


# --- losses --------------------------------------------------------------------------------------


def test_softmax_loss_matches_cross_entropy_mean():
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((20, 7)) * 3, rng.integers(7, size=20)
    loss, dx = softmax_loss(x, y)
    tx = leaf(x)
    tloss = F.cross_entropy(tx, torch.tensor(y), reduction="mean")
    (ref_dx,) = torch.autograd.grad(tloss, tx)
    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    close(dx, ref_dx.numpy(), what="dx")


@pytest.mark.parametrize("label_smoothing", [0.05, 0.1, 0.5, 1.0])
def test_softmax_loss_with_label_smoothing_matches_cross_entropy(label_smoothing):
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((20, 7)) * 3, rng.integers(7, size=20)
    loss, dx = softmax_loss(x, y, label_smoothing=label_smoothing)
    tx = leaf(x)
    tloss = F.cross_entropy(tx, torch.tensor(y), reduction="mean", label_smoothing=label_smoothing)
    (ref_dx,) = torch.autograd.grad(tloss, tx)
    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    close(dx, ref_dx.numpy(), what="dx")


def test_svm_loss_matches_multi_margin_loss_times_c():
    rng = np.random.default_rng(9)
    N, C = 20, 6
    x, y = rng.standard_normal((N, C)), rng.integers(C, size=N)
    loss, dx = svm_loss(x, y)
    tx = leaf(x)
    # multi_margin_loss divides each example's hinge sum by the number of classes C;
    # svm_loss (cs231n) does not, so torch's mean is svm_loss / C.
    tloss = F.multi_margin_loss(tx, torch.tensor(y), p=1, margin=1.0, reduction="mean")
    (ref_dx,) = torch.autograd.grad(tloss, tx)
    assert loss == pytest.approx(C * tloss.item(), rel=1e-12)
    close(dx, C * ref_dx.numpy(), what="dx")


# --- global pooling ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "forward, backward, reference",
    [
        (global_avg_pool_forward, global_avg_pool_backward, F.adaptive_avg_pool2d),
        (global_max_pool_forward, global_max_pool_backward, F.adaptive_max_pool2d),
    ],
    ids=["avg", "max"],
)
def test_global_pools_match_adaptive_pools_to_one_by_one(forward, backward, reference):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 4, 5, 6))
    x[0, 0] = 0.0  # a channel of ties, as after a ReLU: both send the gradient to the first
    x[1, 2, 3, 4] = x[1, 2, 0, 1] = x[1, 2].max() + 1
    out, cache = forward(x)
    dout = rng.standard_normal(out.shape)
    dx = backward(dout, cache)
    tx = leaf(x)
    tout = reference(tx, 1).reshape(3, 4)
    (ref_dx,) = torch_vjp(tout, [tx], dout)
    close(out, tout.detach().numpy(), what="out")
    close(dx, ref_dx, what="dx")
