"""Same inputs, same settings, same thread count: the same bits, whatever ran before in the process."""

import subprocess
import sys


SCRIPT = r"""
import hashlib, numpy as np, layerwise
from layerwise.classifiers import FullyConnectedNet, ThreeLayerConvNet
from layerwise.fast_layers import conv_backward_fast, conv_forward_fast, max_pool_backward_fast, max_pool_forward_fast
from layerwise.layers import affine_backward, affine_forward

layerwise.set_num_threads(2)
rng = np.random.default_rng(0)

def digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]

def everything():
    out = {}
    for dtype in (np.float32, np.float64):
        r = np.random.default_rng(1)
        x, w, b = r.standard_normal((128, 3072)).astype(dtype), r.standard_normal((3072, 100)).astype(dtype), r.standard_normal(100).astype(dtype)
        y, cache = affine_forward(x, w, b)  # 39 M multiply-adds: large enough to be split
        out[f"affine {dtype.__name__}"] = digest(y, *affine_backward(np.cos(y), cache))
        xc, wc = r.standard_normal((8, 3, 31, 31)).astype(dtype), r.standard_normal((25, 3, 3, 3)).astype(dtype)
        y, cache = conv_forward_fast(xc, wc, np.zeros(25, dtype), {"stride": 2, "pad": 1})
        out[f"conv s2 {dtype.__name__}"] = digest(y, *conv_backward_fast(np.cos(y), cache))
        xp = r.standard_normal((10, 3, 32, 32)).astype(dtype)
        y, cache = max_pool_forward_fast(xp, {"pool_height": 2, "pool_width": 2, "stride": 2})
        out[f"pool {dtype.__name__}"] = digest(y, max_pool_backward_fast(np.cos(y), cache))
        np.random.seed(2)
        fc = FullyConnectedNet([100, 100], normalization="batchnorm", dtype=dtype)
        X, labels = r.standard_normal((128, 3, 32, 32)).astype(dtype), r.integers(10, size=128)
        loss, grads = fc.loss(X, labels)
        out[f"fc loss {dtype.__name__}"] = digest(np.array(loss), *grads.values(), fc.loss(X))
        np.random.seed(3)
        cnn = ThreeLayerConvNet(dtype=dtype)
        loss, grads = cnn.loss(X[:50], labels[:50])
        out[f"cnn loss {dtype.__name__}"] = digest(np.array(loss), *grads.values(), cnn.loss(X[:50]))
    return out

first = everything()
# Other layers run in between: float32 convolutions on two threads (Numba loaded, chunks in parallel).
x = rng.standard_normal((64, 32, 16, 16)).astype(np.float32)
for ws in ((64, 32, 3, 3), (16, 32, 5, 5)):
    y, cache = conv_forward_fast(x, rng.standard_normal(ws).astype(np.float32), np.zeros(ws[0], np.float32), {"stride": 1, "pad": 1})
    conv_backward_fast(y, cache)
second = everything()
for key in first:
    print(key, first[key], second[key], "same" if first[key] == second[key] else "DIFFERENT")
"""


def test_results_do_not_depend_on_what_ran_before_in_the_process():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 10
    different = [line for line in lines if line.endswith("DIFFERENT")]
    assert not different, "\n".join(lines)
