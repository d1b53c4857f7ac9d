"""One table of bad inputs and the exact message each must produce.

Every message names the function, the argument, what was expected and what came.
"""

import numpy as np
import pytest

from layerwise import optim
from layerwise.classifiers.cnn import ThreeLayerConvNet
from layerwise.classifiers.fc_net import FullyConnectedNet, TwoLayerNet
from layerwise.fast_layers import conv_forward_fast, max_pool_forward_fast
from layerwise.gradient_check import eval_numerical_gradient
from layerwise.layers import (
    affine_backward,
    affine_forward,
    batchnorm_forward,
    conv_forward_naive,
    dropout_forward,
    layernorm_forward,
    max_pool_forward_naive,
    relu_backward,
    relu_forward,
    softmax_loss,
    spatial_groupnorm_forward,
    svm_loss,
)
from layerwise.solver import Solver
from layerwise.vis_utils import visualize_grid

f64 = np.float64
x_img = np.zeros((2, 3, 8, 8))
w_img = np.zeros((5, 3, 3, 3))
b_img = np.zeros(5)
scores = np.zeros((5, 10))
labels = np.arange(5)
pool2 = {"pool_height": 2, "pool_width": 2, "stride": 2}


def _data(**changes):
    data = {"X_train": np.zeros((4, 6)), "y_train": np.zeros(4, dtype=int), "X_val": np.zeros((2, 6)), "y_val": np.zeros(2, dtype=int)}
    data.update(changes)
    return data


def _nan_data():
    X = np.zeros((4, 6))
    X[1, 2] = np.nan
    return _data(X_train=X)


def _bn_missing_mode():
    return batchnorm_forward(np.zeros((3, 4)), np.ones(4), np.zeros(4), {})


CASES = [
    # layers: arrays, shapes, dtypes
    ("affine x/w mismatch", lambda: affine_forward(np.zeros((2, 4, 6)), np.zeros((20, 3)), np.zeros(3)), ValueError,
     "affine_forward: x has 24 features per example but w expects 20 (x.shape=(2, 4, 6), w.shape=(20, 3))"),
    ("affine bias shape", lambda: affine_forward(np.zeros((2, 4)), np.zeros((4, 3)), np.zeros(4)), ValueError,
     "affine_forward: b must have shape (3,), got shape (4,)"),
    ("affine integer x", lambda: affine_forward(np.zeros((2, 4), dtype=int), np.zeros((4, 3)), np.zeros(3)), TypeError,
     "affine_forward: x must have a floating dtype (float32 or float64), got dtype int64"),
    ("affine list x", lambda: affine_forward([[1.0, 2.0]], np.zeros((2, 3)), np.zeros(3)), TypeError,
     "affine_forward: x must be a numpy.ndarray, got [[1.0, 2.0]] (list)"),
    ("affine backward bad cache", lambda: affine_backward(np.zeros((2, 3)), None), TypeError,
     "affine_backward: cache must be the 3-tuple returned by the matching forward function, got None (NoneType)"),
    ("relu dout shape", lambda: relu_backward(np.zeros((4, 3)), relu_forward(np.zeros((3, 4)))[1]), ValueError,
     "relu_backward: dout must have the shape of the forward output (3, 4), got shape (4, 3)"),
    ("conv channels", lambda: conv_forward_naive(np.zeros((2, 4, 8, 8)), w_img, b_img, {"stride": 1, "pad": 1}), ValueError,
     "conv_forward_naive: x has 4 channels but w expects 3 (x.shape=(2, 4, 8, 8), w.shape=(5, 3, 3, 3))"),
    ("fast conv channels", lambda: conv_forward_fast(np.zeros((2, 4, 8, 8)), w_img, b_img, {"stride": 1, "pad": 1}), ValueError,
     "conv_forward_fast: x has 4 channels but w expects 3 (x.shape=(2, 4, 8, 8), w.shape=(5, 3, 3, 3))"),
    ("conv stride does not tile", lambda: conv_forward_naive(x_img, w_img, b_img, {"stride": 2, "pad": 0}), ValueError,
     "conv_forward_naive: filters of size 3x3 with stride 2 must tile the padded input of size 8x8: "
     "(H + 2*pad - HH) and (W + 2*pad - WW) must be divisible by the stride, got 5 and 5"),
    ("conv filter larger than input", lambda: conv_forward_fast(np.zeros((1, 3, 2, 2)), w_img, b_img, {"stride": 1, "pad": 0}), ValueError,
     "conv_forward_fast: filter of size 3x3 does not fit the padded input of size 2x2"),
    ("conv missing stride", lambda: conv_forward_naive(x_img, w_img, b_img, {"pad": 1}), ValueError,
     "conv_forward_naive: conv_param must contain 'stride', got keys ['pad']"),
    ("conv zero stride", lambda: conv_forward_fast(x_img, w_img, b_img, {"stride": 0, "pad": 1}), ValueError,
     "conv_forward_fast: conv_param['stride'] must be >= 1, got 0"),
    ("conv float pad", lambda: conv_forward_naive(x_img, w_img, b_img, {"stride": 1, "pad": 1.5}), TypeError,
     "conv_forward_naive: conv_param['pad'] must be an int, got 1.5 (float)"),
    ("conv 3-d x", lambda: conv_forward_naive(np.zeros((3, 8, 8)), w_img, b_img, {"stride": 1, "pad": 1}), ValueError,
     "conv_forward_naive: x must be a 4-d array of shape (N, C, H, W), got shape (3, 8, 8)"),
    ("conv bias count", lambda: conv_forward_naive(x_img, w_img, np.zeros(4), {"stride": 1, "pad": 1}), ValueError,
     "conv_forward_naive: b must have shape (5,), one bias per filter of w, got shape (4,)"),
    ("pool too large", lambda: max_pool_forward_naive(np.zeros((1, 1, 4, 4)), {"pool_height": 5, "pool_width": 5, "stride": 1}), ValueError,
     "max_pool_forward_naive: pool window 5x5 must fit the input of size 4x4, got x.shape=(1, 1, 4, 4)"),
    ("fast pool missing width", lambda: max_pool_forward_fast(x_img, {"pool_height": 2, "stride": 2}), ValueError,
     "max_pool_forward_fast: pool_param must contain 'pool_width', got keys ['pool_height', 'stride']"),
    ("batchnorm missing mode", _bn_missing_mode, ValueError,
     "batchnorm_forward: bn_param must contain 'mode' ('train' or 'test'), got keys []"),
    ("batchnorm bad mode", lambda: batchnorm_forward(np.zeros((3, 4)), np.ones(4), np.zeros(4), {"mode": "eval"}), ValueError,
     "batchnorm_forward: bn_param['mode'] must be 'train' or 'test', got 'eval'"),
    ("batchnorm gamma shape", lambda: batchnorm_forward(np.zeros((3, 4)), np.ones(3), np.zeros(4), {"mode": "train"}), ValueError,
     "batchnorm_forward: gamma must have shape (4,), got shape (3,)"),
    ("batchnorm momentum", lambda: batchnorm_forward(np.zeros((3, 4)), np.ones(4), np.zeros(4), {"mode": "train", "momentum": 1.5}), ValueError,
     "batchnorm_forward: bn_param['momentum'] must be a finite number in [0, 1], got 1.5"),
    ("layernorm eps", lambda: layernorm_forward(np.zeros((3, 4)), np.ones(4), np.zeros(4), {"eps": 0}), ValueError,
     "layernorm_forward: ln_param['eps'] must be a finite number in (0, inf], got 0.0"),
    ("dropout p zero", lambda: dropout_forward(np.zeros(3), {"mode": "train", "p": 0}), ValueError,
     "dropout_forward: dropout_param['p'] must be a finite number in (0, 1], got 0.0"),
    ("dropout p above one", lambda: dropout_forward(np.zeros(3), {"mode": "train", "p": 1.5}), ValueError,
     "dropout_forward: dropout_param['p'] must be a finite number in (0, 1], got 1.5"),
    ("dropout missing mode", lambda: dropout_forward(np.zeros(3), {"p": 0.5}), ValueError,
     "dropout_forward: dropout_param must contain 'mode' ('train' or 'test'), got keys ['p']"),
    ("dropout seed above 32 bits", lambda: dropout_forward(np.zeros(3), {"mode": "train", "p": 0.5, "seed": 2**32}),
     ValueError, "dropout_forward: dropout_param['seed'] must be <= 4294967295, got 4294967296"),
    ("groupnorm G", lambda: spatial_groupnorm_forward(np.zeros((2, 6, 4, 4)), np.ones((1, 6, 1, 1)), np.zeros((1, 6, 1, 1)), 4, {}), ValueError,
     "spatial_groupnorm_forward: G must divide the number of channels C=6, got G=4"),
    ("groupnorm gamma shape", lambda: spatial_groupnorm_forward(np.zeros((2, 6, 4, 4)), np.ones(6), np.zeros(6), 3, {}), ValueError,
     "spatial_groupnorm_forward: gamma must have shape (1, 6, 1, 1), got shape (6,)"),
    ("softmax label range", lambda: softmax_loss(scores, np.array([0, 1, 2, 3, 10])), ValueError,
     "softmax_loss: y must hold labels in [0, 9], got values in [0, 10]"),
    ("svm label count", lambda: svm_loss(scores, np.arange(4)), ValueError,
     "svm_loss: y must have shape (5,) to match x, got shape (4,)"),
    ("softmax float labels", lambda: softmax_loss(scores, labels.astype(float)), TypeError,
     "softmax_loss: y must have an integer dtype, got dtype float64"),
    # models
    ("fc normalization", lambda: FullyConnectedNet([10], normalization="groupnorm"), ValueError,
     "FullyConnectedNet: normalization must be one of [None, 'batchnorm', 'layernorm'], got 'groupnorm'"),
    ("fc keep ratio", lambda: FullyConnectedNet([10], dropout_keep_ratio=0), ValueError,
     "FullyConnectedNet: dropout_keep_ratio must be a finite number in (0, 1], got 0.0"),
    ("fc keep ratio, 2018-2020 name", lambda: FullyConnectedNet([10], dropout=1.5), ValueError,
     "FullyConnectedNet: dropout must be a finite number in (0, 1], got 1.5"),
    ("fc keep ratio under both names", lambda: FullyConnectedNet([10], dropout_keep_ratio=0.5, dropout=0.5), TypeError,
     "FullyConnectedNet: give the keep probability once, as dropout_keep_ratio or as dropout (its name in the "
     "2018-2020 editions), got dropout_keep_ratio=0.5 and dropout=0.5"),
    ("fc seed above 32 bits", lambda: FullyConnectedNet([10], seed=2**32), ValueError,
     "FullyConnectedNet: seed must be <= 4294967295, got 4294967296"),
    ("fc hidden dims", lambda: FullyConnectedNet([10, 0]), ValueError,
     "FullyConnectedNet: hidden_dims[1] must be >= 1, got 0"),
    ("fc input size", lambda: FullyConnectedNet([10]).loss(np.zeros((2, 10))), ValueError,
     "FullyConnectedNet.loss: X must have 3072 values per example (input_dim), got shape (2, 10) (10 per example)"),
    ("fc label range", lambda: FullyConnectedNet([10], input_dim=6).loss(np.zeros((2, 6)), np.array([0, 12])), ValueError,
     "FullyConnectedNet.loss: y must hold labels in [0, 9], got values in [0, 12]"),
    ("two-layer dtype", lambda: TwoLayerNet(dtype=np.int64), TypeError,
     "TwoLayerNet: dtype must be np.float32 or np.float64, got int64"),
    ("two-layer negative reg", lambda: TwoLayerNet(reg=-1), ValueError,
     "TwoLayerNet: reg must be a finite number in [0, inf], got -1.0"),
    ("cnn input shape", lambda: ThreeLayerConvNet(input_dim=(3, 8, 8), filter_size=3).loss(np.zeros((2, 3, 9, 8))), ValueError,
     "ThreeLayerConvNet.loss: X must have shape (N, 3, 8, 8), got shape (2, 3, 9, 8)"),
    ("cnn input_dim", lambda: ThreeLayerConvNet(input_dim=(32, 32)), ValueError,
     "ThreeLayerConvNet: input_dim must be a tuple (C, H, W), got (32, 32) (tuple)"),
    # optim
    ("optim shapes", lambda: optim.sgd(np.zeros((2, 3)), np.zeros((3, 2))), ValueError,
     "sgd: dw must have the shape of w (2, 3), got shape (3, 2)"),
    ("optim learning rate", lambda: optim.adam(np.zeros(3), np.zeros(3), {"learning_rate": -1}), ValueError,
     "adam: config['learning_rate'] must be a finite number in [0, inf], got -1.0"),
    # solver
    ("solver NaN", lambda: Solver(TwoLayerNet(input_dim=6), _nan_data()), ValueError,
     "Solver: data['X_train'] must be finite, got 1 NaN or inf values"),
    ("solver unknown kwarg", lambda: Solver(TwoLayerNet(input_dim=6), _data(), learning_rate=1e-3), TypeError,
     "Solver: unrecognized arguments ['learning_rate']; valid ones are ['augment', 'batch_size', 'callbacks', 'checkpoint_name', "
     "'lr_decay', 'lr_schedule', 'num_epochs', 'num_train_samples', 'num_val_samples', 'optim_config', 'print_every', "
     "'update_rule', 'verbose']"),
    ("solver update rule", lambda: Solver(TwoLayerNet(input_dim=6), _data(), update_rule="sgdd"), ValueError,
     "update_rule must be one of ['adam', 'adamw', 'rmsprop', 'sgd', 'sgd_momentum', 'sgd_nesterov'], got 'sgdd'"),
    ("solver missing data", lambda: Solver(TwoLayerNet(input_dim=6), {"X_train": np.zeros((4, 6))}), ValueError,
     "Solver: data must contain ['X_train', 'y_train', 'X_val', 'y_val'], missing ['y_train', 'X_val', 'y_val']"),
    ("solver label count", lambda: Solver(TwoLayerNet(input_dim=6), _data(y_train=np.zeros(3, dtype=int))), ValueError,
     "Solver: data['y_train'] must have shape (4,) to match data['X_train'], got shape (3,)"),
    ("solver batch size", lambda: Solver(TwoLayerNet(input_dim=6), _data(), batch_size=0), ValueError,
     "Solver: batch_size must be >= 1, got 0"),
    ("solver lr decay", lambda: Solver(TwoLayerNet(input_dim=6), _data(), lr_decay=0), ValueError,
     "Solver: lr_decay must be a finite number in (0, 1], got 0.0"),
    ("solver optim config", lambda: Solver(TwoLayerNet(input_dim=6), _data(), update_rule="rmsprop", optim_config={"decay_rate": 1.0}), ValueError,
     "rmsprop: config['decay_rate'] must be a finite number in [0, 1), got 1.0"),
    # tools
    ("gradient check integer x", lambda: eval_numerical_gradient(lambda x: 0.0, np.zeros(3, dtype=int)), TypeError,
     "eval_numerical_gradient: x must have a floating dtype (float32 or float64), got dtype int64"),
    ("visualize_grid ndim", lambda: visualize_grid(np.zeros((3, 4, 4))), ValueError,
     "visualize_grid: Xs must be a 4-d array of shape (N, H, W, C), got shape (3, 4, 4)"),
]


@pytest.mark.parametrize("call, error, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_message(call, error, message):
    with pytest.raises(error) as raised:
        call()
    assert str(raised.value).startswith(message), str(raised.value)


def test_bad_batchnorm_call_leaves_bn_param_unchanged():
    bn_param = {"mode": "train", "momentum": 2.0, "running_mean": np.ones(4)}
    with pytest.raises(ValueError):
        batchnorm_forward(np.zeros((3, 4)), np.ones(4), np.zeros(4), bn_param)
    assert set(bn_param) == {"mode", "momentum", "running_mean"}
    np.testing.assert_array_equal(bn_param["running_mean"], np.ones(4))


def test_bad_model_input_leaves_dropout_and_bn_state_unchanged():
    model = FullyConnectedNet([5], input_dim=6, normalization="batchnorm", dropout_keep_ratio=0.5)
    before = ([dict(p) for p in model.bn_params], dict(model.dropout_param))
    with pytest.raises(ValueError):
        model.loss(np.zeros((2, 7)), np.zeros(2, dtype=int))
    assert ([dict(p) for p in model.bn_params], dict(model.dropout_param)) == before
