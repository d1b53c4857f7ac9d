"""Build the two notebooks, ``FullyConnectedNets.ipynb`` and ``ConvolutionalNetworks.ipynb``.

The notebooks are the cs231n assignment-2 notebooks of the specification, rewritten for layerwise:
the Colab/Drive and Cython-build cells are dropped, every check, plot, search and the filter grid
is kept, and every numeric check asserts the tolerance the notebook states. They are written here
as Python lists of cells so that they can be reviewed as code, and saved without outputs.

Run ``python notebooks/build_notebooks.py`` after editing this file; ``--check`` only verifies
that the saved notebooks are what this file builds (``tests/test_notebooks.py`` does the same).

Environment variables read by the notebooks:

- ``LAYERWISE_NOTEBOOK_QUICK=1``: train on the CIFAR-10 sample embedded in layerwise and shorten
  the long runs (CI executes both notebooks this way, in well under a minute each);
- ``LAYERWISE_DATA``: where the full CIFAR-10 archive is (see ``layerwise.data_utils``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def md(text: str) -> tuple[str, str]:
    return ("markdown", text)


def code(text: str) -> tuple[str, str]:
    return ("code", text)


# Cells shared by both notebooks ------------------------------------------------------------------

QUICK_NOTE = md(
    """## Quick mode

With the environment variable `LAYERWISE_NOTEBOOK_QUICK=1` set before Jupyter starts, this notebook
runs in well under a minute (CI executes it this way): the data are the small real CIFAR-10 sample
embedded in layerwise (1,800 training, 100 validation and 1,000 test images) instead of the full
data set, and the long training runs are shortened. Every numeric check runs unchanged in both
modes; the accuracy targets only mean something on the full data set and are printed, not checked.

The full data set is found through the environment variable `LAYERWISE_DATA` (the archive
`cifar-10-python.tar.gz` or its extracted folder) or the cache folder `~/.cache/layerwise`, and is
downloaded there if it is in neither."""
)

QUICK_CELL = code(
    """import os

QUICK = os.environ.get("LAYERWISE_NOTEBOOK_QUICK") == "1"
print('Quick mode: embedded sample, short runs' if QUICK else 'Full mode: all of CIFAR-10')"""
)

PLOT_SETUP = """%matplotlib inline
plt.rcParams['figure.figsize'] = (10.0, 8.0) # set default size of plots
plt.rcParams['image.interpolation'] = 'nearest'
plt.rcParams['image.cmap'] = 'gray'

# for auto-reloading external modules
# see http://stackoverflow.com/questions/1907993/autoreload-of-modules-in-ipython
%load_ext autoreload
%autoreload 2"""


# FullyConnectedNets -------------------------------------------------------------------------------

FULLY_CONNECTED_NETS = [
    md(
        r'''# Fully-Connected Neural Nets

In the previous homework you implemented a fully-connected two-layer neural network on CIFAR-10.
The implementation was simple but not very modular since the loss and gradient were computed in a
single monolithic function. This is manageable for a simple two-layer network, but would become
impractical as we move to bigger models. Ideally we want to build networks using a more modular
design so that we can implement different layer types in isolation and then snap them together
into models with different architectures.

In this exercise we will implement fully-connected networks using a more modular approach. For
each layer we will implement a `forward` and a `backward` function. The `forward` function will
receive inputs, weights, and other parameters and will return both an output and a `cache` object
storing data needed for the backward pass, like this:

```python
def layer_forward(x, w):
    """ Receive inputs x and weights w """
    # Do some computations ...
    z = # ... some intermediate value
    # Do some more computations ...
    out = # the output

    cache = (x, w, z, out) # Values we need to compute gradients

    return out, cache
```

The backward pass will receive upstream derivatives and the `cache` object, and will return
gradients with respect to the inputs and weights, like this:

```python
def layer_backward(dout, cache):
    """
    Receive dout (derivative of loss with respect to outputs) and cache,
    and compute derivative with respect to inputs.
    """
    # Unpack cache values
    x, w, z, out = cache

    # Use values in cache to compute derivatives
    dx = # Derivative of loss with respect to x
    dw = # Derivative of loss with respect to w

    return dx, dw
```

After implementing a bunch of layers this way, we will be able to easily combine them to build
classifiers with different architectures.

In addition to implementing fully-connected networks of arbitrary depth, (in the second part of
the assignment) we will explore different update rules for optimization, and introduce Dropout as
a regularizer and Batch/Layer Normalization as a tool to more efficiently optimize deep networks.

Here the layers come from `layerwise`: every layer of this notebook is in `layerwise.layers`, the
sandwich layers in `layerwise.layer_utils`, the models in `layerwise.classifiers.fc_net` and the
training loop in `layerwise.solver`.'''
    ),
    code(
        """# As usual, a bit of setup
import time

import numpy as np
import matplotlib.pyplot as plt
from layerwise.classifiers.fc_net import *
from layerwise.data_utils import get_CIFAR10_data, get_embedded_data
from layerwise.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error
from layerwise.solver import Solver

"""
        + PLOT_SETUP
    ),
    QUICK_NOTE,
    QUICK_CELL,
    code(
        """# Load the (preprocessed) CIFAR10 data.

data = get_embedded_data() if QUICK else get_CIFAR10_data()
for k, v in list(data.items()):
    print(('%s: ' % k, v.shape))"""
    ),
    md(
        """# Affine layer: forward

`affine_forward` is in `layerwise/layers.py`. Test it by running the following:"""
    ),
    code(
        """# Test the affine_forward function

num_inputs = 2
input_shape = (4, 5, 6)
output_dim = 3

input_size = num_inputs * np.prod(input_shape)
weight_size = output_dim * np.prod(input_shape)

x = np.linspace(-0.1, 0.5, num=input_size).reshape(num_inputs, *input_shape)
w = np.linspace(-0.2, 0.3, num=weight_size).reshape(np.prod(input_shape), output_dim)
b = np.linspace(-0.3, 0.1, num=output_dim)

out, _ = affine_forward(x, w, b)
correct_out = np.array([[ 1.49834967,  1.70660132,  1.91485297],
                        [ 3.25553199,  3.5141327,   3.77273342]])

# Compare your output with ours. The error should be around e-9 or less.
print('Testing affine_forward function:')
print('difference: ', rel_error(out, correct_out))
assert rel_error(out, correct_out) < 1e-8, 'affine_forward: difference above 1e-8'"""
    ),
    md(
        """# Affine layer: backward

Now test `affine_backward` using numeric gradient checking."""
    ),
    code(
        """# Test the affine_backward function
np.random.seed(231)
x = np.random.randn(10, 2, 3)
w = np.random.randn(6, 5)
b = np.random.randn(5)
dout = np.random.randn(10, 5)

dx_num = eval_numerical_gradient_array(lambda x: affine_forward(x, w, b)[0], x, dout)
dw_num = eval_numerical_gradient_array(lambda w: affine_forward(x, w, b)[0], w, dout)
db_num = eval_numerical_gradient_array(lambda b: affine_forward(x, w, b)[0], b, dout)

_, cache = affine_forward(x, w, b)
dx, dw, db = affine_backward(dout, cache)

# The error should be around e-10 or less
print('Testing affine_backward function:')
print('dx error: ', rel_error(dx_num, dx))
print('dw error: ', rel_error(dw_num, dw))
print('db error: ', rel_error(db_num, db))
assert max(rel_error(dx_num, dx), rel_error(dw_num, dw), rel_error(db_num, db)) < 1e-9, 'affine_backward: error above 1e-9'"""
    ),
    md(
        """# ReLU activation: forward

Test the forward pass of the ReLU activation function, `relu_forward`, using the following:"""
    ),
    code(
        """# Test the relu_forward function

x = np.linspace(-0.5, 0.5, num=12).reshape(3, 4)

out, _ = relu_forward(x)
correct_out = np.array([[ 0.,          0.,          0.,          0.,        ],
                        [ 0.,          0.,          0.04545455,  0.13636364,],
                        [ 0.22727273,  0.31818182,  0.40909091,  0.5,       ]])

# Compare your output with ours. The error should be on the order of e-8
print('Testing relu_forward function:')
print('difference: ', rel_error(out, correct_out))
assert rel_error(out, correct_out) < 1e-7, 'relu_forward: difference above 1e-7'"""
    ),
    md(
        """# ReLU activation: backward

Now test the backward pass of the ReLU activation function, `relu_backward`, using numeric
gradient checking:"""
    ),
    code(
        """np.random.seed(231)
x = np.random.randn(10, 10)
dout = np.random.randn(*x.shape)

dx_num = eval_numerical_gradient_array(lambda x: relu_forward(x)[0], x, dout)

_, cache = relu_forward(x)
dx = relu_backward(dout, cache)

# The error should be on the order of e-12
print('Testing relu_backward function:')
print('dx error: ', rel_error(dx_num, dx))
assert rel_error(dx_num, dx) < 1e-11, 'relu_backward: error above 1e-11'"""
    ),
    md(
        """## Inline Question 1:

We've only asked you to implement ReLU, but there are a number of different activation functions
that one could use in neural networks, each with its pros and cons. In particular, an issue
commonly seen with activation functions is getting zero (or close to zero) gradient flow during
backpropagation. Which of the following activation functions have this problem? If you consider
these functions in the one dimensional case, what types of input would lead to this behaviour?
1. Sigmoid
2. ReLU
3. Leaky ReLU

## Answer:

The answer is the Sigmoid activation function. Sigmoid derivative is: S(x)(1-S(x)). Therefore,
getting input values far from 0 may result in gradients getting closer and closer to zero."""
    ),
    md(
        """# "Sandwich" layers

There are some common patterns of layers that are frequently used in neural nets. For example,
affine layers are frequently followed by a ReLU nonlinearity. To make these common patterns easy,
several convenience layers are defined in `layerwise/layer_utils.py`.

For now take a look at the `affine_relu_forward` and `affine_relu_backward` functions, and run the
following to numerically gradient check the backward pass:"""
    ),
    code(
        """from layerwise.layer_utils import affine_relu_forward, affine_relu_backward
np.random.seed(231)
x = np.random.randn(2, 3, 4)
w = np.random.randn(12, 10)
b = np.random.randn(10)
dout = np.random.randn(2, 10)

out, cache = affine_relu_forward(x, w, b)
dx, dw, db = affine_relu_backward(dout, cache)

dx_num = eval_numerical_gradient_array(lambda x: affine_relu_forward(x, w, b)[0], x, dout)
dw_num = eval_numerical_gradient_array(lambda w: affine_relu_forward(x, w, b)[0], w, dout)
db_num = eval_numerical_gradient_array(lambda b: affine_relu_forward(x, w, b)[0], b, dout)

# Relative error should be around e-10 or less
print('Testing affine_relu_forward and affine_relu_backward:')
print('dx error: ', rel_error(dx_num, dx))
print('dw error: ', rel_error(dw_num, dw))
print('db error: ', rel_error(db_num, db))
assert max(rel_error(dx_num, dx), rel_error(dw_num, dw), rel_error(db_num, db)) < 1e-9, 'affine_relu: error above 1e-9'"""
    ),
    md(
        """# Loss layers: Softmax and SVM

You implemented these loss functions in the last assignment, so we'll give them to you for free
here. You should still make sure you understand how they work by looking at the implementations
in `layerwise/layers.py` (`svm_loss` and `softmax_loss`).

You can make sure that the implementations are correct by running the following:"""
    ),
    code(
        """np.random.seed(231)
num_classes, num_inputs = 10, 50
x = 0.001 * np.random.randn(num_inputs, num_classes)
y = np.random.randint(num_classes, size=num_inputs)

dx_num = eval_numerical_gradient(lambda x: svm_loss(x, y)[0], x, verbose=False)
loss, dx = svm_loss(x, y)

# Test svm_loss function. Loss should be around 9 and dx error should be around the order of e-9
print('Testing svm_loss:')
print('loss: ', loss)
print('dx error: ', rel_error(dx_num, dx))
assert abs(loss - 9) < 1e-2, 'svm_loss: loss not around 9'
assert rel_error(dx_num, dx) < 1e-8, 'svm_loss: dx error above 1e-8'

dx_num = eval_numerical_gradient(lambda x: softmax_loss(x, y)[0], x, verbose=False)
loss, dx = softmax_loss(x, y)

# Test softmax_loss function. Loss should be close to 2.3 and dx error should be around e-8
print('\\nTesting softmax_loss:')
print('loss: ', loss)
print('dx error: ', rel_error(dx_num, dx))
assert abs(loss - np.log(num_classes)) < 1e-2, 'softmax_loss: loss not close to log(10) = 2.3026'
assert rel_error(dx_num, dx) < 1e-7, 'softmax_loss: dx error above 1e-7'"""
    ),
    md(
        """# Two-layer network

In the previous assignment you implemented a two-layer neural network in a single monolithic
class. Now that you have implemented modular versions of the necessary layers, you will
reimplement the two layer network using these modular implementations.

The `TwoLayerNet` class is in `layerwise/classifiers/fc_net.py`. This class will serve as a model
for the other networks in this assignment, so read through it to make sure you understand the API.
You can run the cell below to test the implementation."""
    ),
    code(
        """np.random.seed(231)
N, D, H, C = 3, 5, 50, 7
X = np.random.randn(N, D)
y = np.random.randint(C, size=N)

std = 1e-3
model = TwoLayerNet(input_dim=D, hidden_dim=H, num_classes=C, weight_scale=std)

print('Testing initialization ... ')
W1_std = abs(model.params['W1'].std() - std)
b1 = model.params['b1']
W2_std = abs(model.params['W2'].std() - std)
b2 = model.params['b2']
assert W1_std < std / 10, 'First layer weights do not seem right'
assert np.all(b1 == 0), 'First layer biases do not seem right'
assert W2_std < std / 10, 'Second layer weights do not seem right'
assert np.all(b2 == 0), 'Second layer biases do not seem right'

print('Testing test-time forward pass ... ')
model.params['W1'] = np.linspace(-0.7, 0.3, num=D*H).reshape(D, H)
model.params['b1'] = np.linspace(-0.1, 0.9, num=H)
model.params['W2'] = np.linspace(-0.3, 0.4, num=H*C).reshape(H, C)
model.params['b2'] = np.linspace(-0.9, 0.1, num=C)
X = np.linspace(-5.5, 4.5, num=N*D).reshape(D, N).T
scores = model.loss(X)
correct_scores = np.asarray(
  [[11.53165108,  12.2917344,   13.05181771,  13.81190102,  14.57198434, 15.33206765,  16.09215096],
   [12.05769098,  12.74614105,  13.43459113,  14.1230412,   14.81149128, 15.49994135,  16.18839143],
   [12.58373087,  13.20054771,  13.81736455,  14.43418138,  15.05099822, 15.66781506,  16.2846319 ]])
scores_diff = np.abs(scores - correct_scores).sum()
assert scores_diff < 1e-6, 'Problem with test-time forward pass'

print('Testing training loss (no regularization)')
y = np.asarray([0, 5, 1])
loss, grads = model.loss(X, y)
correct_loss = 3.4702243556
assert abs(loss - correct_loss) < 1e-10, 'Problem with training-time loss'

model.reg = 1.0
loss, grads = model.loss(X, y)
correct_loss = 26.5948426952
assert abs(loss - correct_loss) < 1e-10, 'Problem with regularization loss'

# Errors should be around e-7 or less
for reg in [0.0, 0.7]:
    print('Running numeric gradient check with reg = ', reg)
    model.reg = reg
    loss, grads = model.loss(X, y)

    for name in sorted(grads):
        f = lambda _: model.loss(X, y)[0]
        grad_num = eval_numerical_gradient(f, model.params[name], verbose=False)
        print('%s relative error: %.2e' % (name, rel_error(grad_num, grads[name])))
        assert rel_error(grad_num, grads[name]) < 1e-6, '%s: relative error above 1e-6' % name"""
    ),
    md(
        """# Solver

In the previous assignment, the logic for training models was coupled to the models themselves.
Following a more modular design, for this assignment the logic for training models is split into a
separate class, `Solver` in `layerwise/solver.py`. Read through it to familiarize yourself with the
API. After doing so, use a `Solver` instance to train a `TwoLayerNet` that achieves at least `45%`
accuracy on the validation set. This shouldn't take more than 5 epochs of training and more than
5 minutes using vanilla sgd.

In quick mode the run is one epoch on the embedded sample, and the accuracy is far below the target."""
    ),
    code(
        """model = TwoLayerNet()
solver = None
best_val = -1

##############################################################################
# TODO: Use a Solver instance to train a TwoLayerNet that achieves at least  #
# 50% accuracy on the validation set.                                        #
##############################################################################
# *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

solver_data = {
    'X_train': data['X_train'],
    'y_train': data['y_train'],
    'X_val': data['X_val'],
    'y_val': data['y_val'],
}
solver = Solver(model, solver_data,
                update_rule='sgd',
                optim_config={'learning_rate': 1e-3},
                lr_decay=0.85,
                num_epochs=1 if QUICK else 5,
                batch_size=32,
                print_every=100)
solver.train()

# *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
##############################################################################
#                             END OF YOUR CODE                               #
##############################################################################
print('Best validation accuracy: %.3f (target on the full data: at least 0.45)' % solver.best_val_acc)"""
    ),
    code(
        """# Run this cell to visualize training loss and train / val accuracy

plt.subplot(2, 1, 1)
plt.title('Training loss')
plt.plot(solver.loss_history, 'o')
plt.xlabel('Iteration')

plt.subplot(2, 1, 2)
plt.title('Accuracy')
plt.plot(solver.train_acc_history, '-o', label='train')
plt.plot(solver.val_acc_history, '-o', label='val')
plt.plot([0.5] * len(solver.val_acc_history), 'k--')
plt.xlabel('Epoch')
plt.legend(loc='lower right')
plt.gcf().set_size_inches(15, 12)
plt.show()"""
    ),
    md(
        """# Multilayer network

Next we use a fully-connected network with an arbitrary number of hidden layers: read through the
`FullyConnectedNet` class in `layerwise/classifiers/fc_net.py`. For the moment don't worry about
dropout or batch/layer normalization.

## Initial loss and gradient check

As a sanity check, run the following to check the initial loss and to gradient check the network
both with and without regularization. Do the initial losses seem reasonable?

For gradient checking, you should expect to see errors around 1e-7 or less."""
    ),
    code(
        """np.random.seed(231)
N, D, H1, H2, C = 2, 15, 20, 30, 10
X = np.random.randn(N, D)
y = np.random.randint(C, size=(N,))

for reg in [0, 3.14]:
    print('Running check with reg = ', reg)
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C,
                              reg=reg, weight_scale=5e-2, dtype=np.float64)

    loss, grads = model.loss(X, y)
    print('Initial loss: ', loss)

    # Most of the errors should be on the order of e-7 or smaller.
    # NOTE: It is fine however to see an error for W2 on the order of e-5
    # for the check when reg = 0.0
    for name in sorted(grads):
        f = lambda _: model.loss(X, y)[0]
        grad_num = eval_numerical_gradient(f, model.params[name], verbose=False, h=1e-5)
        print('%s relative error: %.2e' % (name, rel_error(grad_num, grads[name])))
        bound = 1e-4 if (reg == 0 and name == 'W2') else 1e-6
        assert rel_error(grad_num, grads[name]) < bound, '%s: relative error above %g' % (name, bound)"""
    ),
    md(
        """As another sanity check, make sure you can overfit a small dataset of 50 images. First we will
try a three-layer network with 100 units in each hidden layer. In the following cell, tweak the
**learning rate** and **weight initialization scale** to overfit and achieve 100% training accuracy
within 20 epochs."""
    ),
    code(
        """# TODO: Use a three-layer Net to overfit 50 training examples by
# tweaking just the learning rate and initialization scale.
np.random.seed(231)  # the same weights and minibatches at every run

num_train = 50
small_data = {
    'X_train': data['X_train'][:num_train],
    'y_train': data['y_train'][:num_train],
    'X_val': data['X_val'],
    'y_val': data['y_val'],
}

##### TODO: find the best lr and weight scale #########
params = {}
learning_rate = [1e-3, 3e-4]  # Experiment with this!
weight_scale = [5e-2, 1e-3]   # Experiment with this!
for lr in learning_rate:
    for ws in weight_scale:
        model = FullyConnectedNet([100, 100],
                                  weight_scale=ws, dtype=np.float64)
        solver = Solver(model, small_data,
                        print_every=10, num_epochs=20, batch_size=25,
                        update_rule='sgd',
                        optim_config={
                            'learning_rate': lr,
                        })
        solver.train()
        final_acc = solver.train_acc_history[-1]
        params["lr: " + str(lr) + " , ws: " + str(ws)] = final_acc

# Find the best params:
best_acc = 0.0
best_params = None
for k, v in params.items():
    if v > best_acc:
        best_acc = v
        best_params = k
print(params)
print("The best parameters for the Fully Connected network are: " + best_params + " with final accuracy of: {}".format(best_acc))
assert best_acc == 1.0, 'no setting reached 100% training accuracy within 20 epochs'

plt.plot(solver.loss_history, 'o')
plt.title('Training loss history')
plt.xlabel('Iteration')
plt.ylabel('Training loss')
plt.show()"""
    ),
    md(
        """Now try to use a five-layer network with 100 units on each layer to overfit 50 training
examples. Again, you will have to adjust the learning rate and weight initialization scale, but
you should be able to achieve 100% training accuracy within 20 epochs."""
    ),
    code(
        """# TODO: Use a five-layer Net to overfit 50 training examples by
# tweaking just the learning rate and initialization scale.
np.random.seed(231)  # the same weights and minibatches at every run

num_train = 50
small_data = {
    'X_train': data['X_train'][:num_train],
    'y_train': data['y_train'][:num_train],
    'X_val': data['X_val'],
    'y_val': data['y_val'],
}

##### TODO: find the best lr and weight scale ########
params = {}  # only the five-layer results (the three-layer ones are printed above)
learning_rate = [2e-3, 1e-3, 3e-4]  # Experiment with this!
weight_scale = [9e-2, 5e-2]  # Experiment with this!
for lr in learning_rate:
    for ws in weight_scale:
        model = FullyConnectedNet([100, 100, 100, 100],
                                  weight_scale=ws, dtype=np.float64)
        solver = Solver(model, small_data,
                        print_every=10, num_epochs=20, batch_size=25,
                        update_rule='sgd',
                        optim_config={
                            'learning_rate': lr,
                        })
        solver.train()
        final_acc = solver.train_acc_history[-1]
        params["lr: " + str(lr) + " , ws: " + str(ws)] = final_acc

# Find the best params:
best_acc = 0.0
best_params = None
for k, v in params.items():
    if v > best_acc:
        best_acc = v
        best_params = k
print(params)
print("The best parameters for the Fully Connected network are: " + best_params + " with final accuracy of: {}".format(best_acc))
assert best_acc == 1.0, 'no setting reached 100% training accuracy within 20 epochs'

plt.plot(solver.loss_history, 'o')
plt.title('Training loss history')
plt.xlabel('Iteration')
plt.ylabel('Training loss')
plt.show()"""
    ),
    md(
        """## Inline Question 2:

Did you notice anything about the comparative difficulty of training the three-layer net vs
training the five layer net? In particular, based on your experience, which network seemed more
sensitive to the initialization scale? Why do you think that is the case?

## Answer:

Based on our experience and knowledge, the five-layer network is more sensitive to the
initialization scale. The deeper the network, the lower the impact of the gradients upon the first
layers as the gradients are getting smaller and smaller during the back-propagation process (close
to 0 numbers when reaching the first layers). Therefore, the init values of the weights have a high
impact on the first layers when the network is deeper."""
    ),
    md(
        """# Train a good model!

Train the best fully-connected model that you can on CIFAR-10, storing your best model in the
`best_model` variable. We require you to get at least 40% accuracy on the validation set using a
fully-connected net. Using sgd this shouldn't take more than 5 minutes per training over 10 epochs.

If you are careful it should be possible to get accuracies above 55%, but we don't require it for
this part and won't assign extra credit for doing so. Later in the assignment we will ask you to
train the best convolutional network that you can on CIFAR-10, and we would prefer that you spend
your effort working on convolutional nets rather than fully-connected nets.

In quick mode the search tries one learning rate for one epoch."""
    ),
    code(
        """best_model = None
best_val = 0.0
################################################################################
# TODO: Train the best FullyConnectedNet that you can on CIFAR-10. You might   #
# find batch/layer normalization and dropout useful. Store your best model in  #
# the best_model variable.                                                     #
################################################################################
# *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

params = {}  # validation accuracies only (the overfitting searches left training accuracies here)
learning_rate = [8e-3] if QUICK else [8e-3, 2e-3, 3e-4]  # Experiment with this!
weight_scale = [1e-3]  # Experiment with this!
for lr in learning_rate:
    for ws in weight_scale:
        model = FullyConnectedNet([128, 64],
                                  reg=2e-4, weight_scale=ws, dtype=np.float64)
        solver = Solver(model, data,
                        print_every=100, num_epochs=1 if QUICK else 10, batch_size=128,
                        update_rule='sgd', lr_decay=0.95,
                        optim_config={
                            'learning_rate': lr,
                        })
        solver.train()
        final_acc = solver.best_val_acc
        if final_acc > best_val:
            best_model = model
            best_val = final_acc
        params["lr: " + str(lr) + " , ws: " + str(ws)] = final_acc

# Find the best params:
best_acc = 0.0
best_params = None
for k, v in params.items():
    if v > best_acc and v != 1.0:
        best_acc = v
        best_params = k
print(params)
print("The best parameters for the Fully Connected network are: " + best_params + " with final accuracy of: {}".format(best_acc))

# *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
################################################################################
#                              END OF YOUR CODE                                #
################################################################################"""
    ),
    md(
        """# Test your model!

Run your best model on the validation and test sets. You should achieve above 50% accuracy on the
validation set (on the full data set)."""
    ),
    code(
        """y_test_pred = np.argmax(best_model.loss(data['X_test']), axis=1)
y_val_pred = np.argmax(best_model.loss(data['X_val']), axis=1)
print('Validation set accuracy: ', (y_val_pred == data['y_val']).mean())
print('Test set accuracy: ', (y_test_pred == data['y_test']).mean())"""
    ),
]


# ConvolutionalNetworks ----------------------------------------------------------------------------

CONVOLUTIONAL_NETWORKS = [
    md(
        """# Convolutional Networks

So far we have worked with deep fully-connected networks, using them to explore different
optimization strategies and network architectures. Fully-connected networks are a good testbed for
experimentation because they are very computationally efficient, but in practice all
state-of-the-art results use convolutional networks instead.

First we look at several layer types that are used in convolutional networks. We will then use
these layers to train a convolutional network on the CIFAR-10 dataset."""
    ),
    code(
        """# As usual, a bit of setup
import numpy as np
import matplotlib.pyplot as plt
from layerwise.classifiers.cnn import *
from layerwise.data_utils import get_CIFAR10_data, get_embedded_data
from layerwise.gradient_check import eval_numerical_gradient_array, eval_numerical_gradient, rel_error
from layerwise.layers import *
from layerwise.fast_layers import *
from layerwise.solver import Solver

"""
        + PLOT_SETUP
    ),
    QUICK_NOTE,
    QUICK_CELL,
    code(
        """# Load the (preprocessed) CIFAR10 data.

data = get_embedded_data() if QUICK else get_CIFAR10_data()
for k, v in data.items():
    print('%s: ' % k, v.shape)"""
    ),
    md(
        """# Convolution: Naive forward pass

The core of a convolutional network is the convolution operation. The forward pass of the
convolution layer is `conv_forward_naive` in `layerwise/layers.py`: written for clarity, not
efficiency.

You can test the implementation by running the following:"""
    ),
    code(
        """x_shape = (2, 3, 4, 4)
w_shape = (3, 3, 4, 4)
x = np.linspace(-0.1, 0.5, num=np.prod(x_shape)).reshape(x_shape)
w = np.linspace(-0.2, 0.3, num=np.prod(w_shape)).reshape(w_shape)
b = np.linspace(-0.1, 0.2, num=3)

conv_param = {'stride': 2, 'pad': 1}
out, _ = conv_forward_naive(x, w, b, conv_param)
correct_out = np.array([[[[-0.08759809, -0.10987781],
                           [-0.18387192, -0.2109216 ]],
                          [[ 0.21027089,  0.21661097],
                           [ 0.22847626,  0.23004637]],
                          [[ 0.50813986,  0.54309974],
                           [ 0.64082444,  0.67101435]]],
                         [[[-0.98053589, -1.03143541],
                           [-1.19128892, -1.24695841]],
                          [[ 0.69108355,  0.66880383],
                           [ 0.59480972,  0.56776003]],
                          [[ 2.36270298,  2.36904306],
                           [ 2.38090835,  2.38247847]]]])

# Compare your output to ours; difference should be around e-8
print('Testing conv_forward_naive')
print('difference: ', rel_error(out, correct_out))
assert rel_error(out, correct_out) < 1e-7, 'conv_forward_naive: difference above 1e-7'"""
    ),
    md(
        """# Aside: Image processing via convolutions

As fun way to both check the implementation and gain a better understanding of the type of
operation that convolutional layers can perform, we will set up an input containing two images and
manually set up filters that perform common image processing operations (grayscale conversion and
edge detection). The convolution forward pass will apply these operations to each of the input
images. We can then visualize the results as a sanity check.

The two images are the first cat and the first dog among the test images of the CIFAR-10 sample
embedded in layerwise (32x32 pixels, so no cropping or resizing is needed)."""
    ),
    code(
        """from layerwise.data_utils import load_embedded_sample, CLASS_NAMES

_, _, x_test, y_test = load_embedded_sample()  # uint8, (1000, 32, 32, 3)
kitten = x_test[np.flatnonzero(y_test == CLASS_NAMES.index('cat'))[0]]
puppy = x_test[np.flatnonzero(y_test == CLASS_NAMES.index('dog'))[0]]

# Both images are already square and small: no cropping or resizing
kitten_cropped = kitten
img_size = 32
resized_puppy = puppy
resized_kitten = kitten_cropped
x = np.zeros((2, 3, img_size, img_size))
x[0, :, :, :] = resized_puppy.transpose((2, 0, 1))
x[1, :, :, :] = resized_kitten.transpose((2, 0, 1))

# Set up a convolutional weights holding 2 filters, each 3x3
w = np.zeros((2, 3, 3, 3))

# The first filter converts the image to grayscale.
# Set up the red, green, and blue channels of the filter.
w[0, 0, :, :] = [[0, 0, 0], [0, 0.3, 0], [0, 0, 0]]
w[0, 1, :, :] = [[0, 0, 0], [0, 0.6, 0], [0, 0, 0]]
w[0, 2, :, :] = [[0, 0, 0], [0, 0.1, 0], [0, 0, 0]]

# Second filter detects horizontal edges in the blue channel.
w[1, 2, :, :] = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]

# Vector of biases. We don't need any bias for the grayscale
# filter, but for the edge detection filter we want to add 128
# to each output so that nothing is negative.
b = np.array([0, 128])

# Compute the result of convolving each input in x with each filter in w,
# offsetting by b, and storing the results in out.
out, _ = conv_forward_naive(x, w, b, {'stride': 1, 'pad': 1})

def imshow_no_ax(img, normalize=True):
    \"\"\" Tiny helper to show images as uint8 and remove axis labels \"\"\"
    if normalize:
        img_max, img_min = np.max(img), np.min(img)
        img = 255.0 * (img - img_min) / (img_max - img_min)
    plt.imshow(img.astype('uint8'))
    plt.gca().axis('off')

# Show the original images and the results of the conv operation
plt.subplot(2, 3, 1)
imshow_no_ax(puppy, normalize=False)
plt.title('Original image')
plt.subplot(2, 3, 2)
imshow_no_ax(out[0, 0])
plt.title('Grayscale')
plt.subplot(2, 3, 3)
imshow_no_ax(out[0, 1])
plt.title('Edges')
plt.subplot(2, 3, 4)
imshow_no_ax(kitten_cropped, normalize=False)
plt.subplot(2, 3, 5)
imshow_no_ax(out[1, 0])
plt.subplot(2, 3, 6)
imshow_no_ax(out[1, 1])
plt.show()"""
    ),
    md(
        """# Convolution: Naive backward pass

The backward pass of the convolution is `conv_backward_naive` in `layerwise/layers.py`, again
written for clarity rather than efficiency. Run the following to check it with a numeric gradient
check."""
    ),
    code(
        """np.random.seed(231)
x = np.random.randn(4, 3, 5, 5)
w = np.random.randn(2, 3, 3, 3)
b = np.random.randn(2,)
dout = np.random.randn(4, 2, 5, 5)
conv_param = {'stride': 1, 'pad': 1}

dx_num = eval_numerical_gradient_array(lambda x: conv_forward_naive(x, w, b, conv_param)[0], x, dout)
dw_num = eval_numerical_gradient_array(lambda w: conv_forward_naive(x, w, b, conv_param)[0], w, dout)
db_num = eval_numerical_gradient_array(lambda b: conv_forward_naive(x, w, b, conv_param)[0], b, dout)

out, cache = conv_forward_naive(x, w, b, conv_param)
dx, dw, db = conv_backward_naive(dout, cache)

# Your errors should be around e-8 or less.
print('Testing conv_backward_naive function')
print('dx error: ', rel_error(dx, dx_num))
print('dw error: ', rel_error(dw, dw_num))
print('db error: ', rel_error(db, db_num))
assert max(rel_error(dx, dx_num), rel_error(dw, dw_num), rel_error(db, db_num)) < 1e-7, 'conv_backward_naive: error above 1e-7'"""
    ),
    md(
        """# Max-Pooling: Naive forward

The forward pass of max-pooling is `max_pool_forward_naive` in `layerwise/layers.py`. Check it by
running the following:"""
    ),
    code(
        """x_shape = (2, 3, 4, 4)
x = np.linspace(-0.3, 0.4, num=np.prod(x_shape)).reshape(x_shape)
pool_param = {'pool_width': 2, 'pool_height': 2, 'stride': 2}

out, _ = max_pool_forward_naive(x, pool_param)

correct_out = np.array([[[[-0.26315789, -0.24842105],
                          [-0.20421053, -0.18947368]],
                         [[-0.14526316, -0.13052632],
                          [-0.08631579, -0.07157895]],
                         [[-0.02736842, -0.01263158],
                          [ 0.03157895,  0.04631579]]],
                        [[[ 0.09052632,  0.10526316],
                          [ 0.14947368,  0.16421053]],
                         [[ 0.20842105,  0.22315789],
                          [ 0.26736842,  0.28210526]],
                         [[ 0.32631579,  0.34105263],
                          [ 0.38526316,  0.4       ]]]])

# Compare your output with ours. Difference should be on the order of e-8.
print('Testing max_pool_forward_naive function:')
print('difference: ', rel_error(out, correct_out))
assert rel_error(out, correct_out) < 1e-7, 'max_pool_forward_naive: difference above 1e-7'"""
    ),
    md(
        """# Max-Pooling: Naive backward

The backward pass of max-pooling is `max_pool_backward_naive` in `layerwise/layers.py`. Check it
with numeric gradient checking by running the following:"""
    ),
    code(
        """np.random.seed(231)
x = np.random.randn(3, 2, 8, 8)
dout = np.random.randn(3, 2, 4, 4)
pool_param = {'pool_height': 2, 'pool_width': 2, 'stride': 2}

dx_num = eval_numerical_gradient_array(lambda x: max_pool_forward_naive(x, pool_param)[0], x, dout)

out, cache = max_pool_forward_naive(x, pool_param)
dx = max_pool_backward_naive(dout, cache)

# Your error should be on the order of e-12
print('Testing max_pool_backward_naive function:')
print('dx error: ', rel_error(dx, dx_num))
assert rel_error(dx, dx_num) < 1e-11, 'max_pool_backward_naive: error above 1e-11'"""
    ),
    md(
        """# Fast layers

Making convolution and pooling layers fast can be challenging. To spare you the pain, fast
implementations of the forward and backward passes for convolution and pooling layers are in
`layerwise/fast_layers.py`. They are pure NumPy: there is no extension to compile.

The API for the fast versions of the convolution and pooling layers is exactly the same as the
naive versions above: the forward pass receives data, weights, and parameters and produces outputs
and a cache object; the backward pass receives upstream derivatives and the cache object and
produces gradients with respect to the data and weights.

**NOTE:** The fast implementation for pooling will only perform optimally if the pooling regions
are non-overlapping and tile the input. If these conditions are not met then the fast pooling
implementation will not be much faster than the naive implementation.

You can compare the performance of the naive and fast versions of these layers by running the
following:"""
    ),
    code(
        """# Rel errors should be around e-9 or less
from layerwise.fast_layers import conv_forward_fast, conv_backward_fast
from time import time
np.random.seed(231)
x = np.random.randn(100, 3, 31, 31)
w = np.random.randn(25, 3, 3, 3)
b = np.random.randn(25,)
dout = np.random.randn(100, 25, 16, 16)
conv_param = {'stride': 2, 'pad': 1}

t0 = time()
out_naive, cache_naive = conv_forward_naive(x, w, b, conv_param)
t1 = time()
out_fast, cache_fast = conv_forward_fast(x, w, b, conv_param)
t2 = time()

print('Testing conv_forward_fast:')
print('Naive: %fs' % (t1 - t0))
print('Fast: %fs' % (t2 - t1))
print('Speedup: %fx' % ((t1 - t0) / (t2 - t1)))
print('Difference: ', rel_error(out_naive, out_fast))
assert rel_error(out_naive, out_fast) < 1e-8, 'conv_forward_fast: difference above 1e-8'

t0 = time()
dx_naive, dw_naive, db_naive = conv_backward_naive(dout, cache_naive)
t1 = time()
dx_fast, dw_fast, db_fast = conv_backward_fast(dout, cache_fast)
t2 = time()

print('\\nTesting conv_backward_fast:')
print('Naive: %fs' % (t1 - t0))
print('Fast: %fs' % (t2 - t1))
print('Speedup: %fx' % ((t1 - t0) / (t2 - t1)))
print('dx difference: ', rel_error(dx_naive, dx_fast))
print('dw difference: ', rel_error(dw_naive, dw_fast))
print('db difference: ', rel_error(db_naive, db_fast))
assert max(rel_error(dx_naive, dx_fast), rel_error(dw_naive, dw_fast), rel_error(db_naive, db_fast)) < 1e-8, 'conv_backward_fast: difference above 1e-8'"""
    ),
    code(
        """# Relative errors should be close to 0.0
from layerwise.fast_layers import max_pool_forward_fast, max_pool_backward_fast
np.random.seed(231)
x = np.random.randn(100, 3, 32, 32)
dout = np.random.randn(100, 3, 16, 16)
pool_param = {'pool_height': 2, 'pool_width': 2, 'stride': 2}

t0 = time()
out_naive, cache_naive = max_pool_forward_naive(x, pool_param)
t1 = time()
out_fast, cache_fast = max_pool_forward_fast(x, pool_param)
t2 = time()

print('Testing pool_forward_fast:')
print('Naive: %fs' % (t1 - t0))
print('fast: %fs' % (t2 - t1))
print('speedup: %fx' % ((t1 - t0) / (t2 - t1)))
print('difference: ', rel_error(out_naive, out_fast))
assert rel_error(out_naive, out_fast) < 1e-12, 'max_pool_forward_fast: difference not close to 0'

t0 = time()
dx_naive = max_pool_backward_naive(dout, cache_naive)
t1 = time()
dx_fast = max_pool_backward_fast(dout, cache_fast)
t2 = time()

print('\\nTesting pool_backward_fast:')
print('Naive: %fs' % (t1 - t0))
print('fast: %fs' % (t2 - t1))
print('speedup: %fx' % ((t1 - t0) / (t2 - t1)))
print('dx difference: ', rel_error(dx_naive, dx_fast))
assert rel_error(dx_naive, dx_fast) < 1e-12, 'max_pool_backward_fast: difference not close to 0'"""
    ),
    md(
        """# Convolutional "sandwich" layers

Previously we introduced the concept of "sandwich" layers that combine multiple operations into
commonly used patterns. In `layerwise/layer_utils.py` you will find sandwich layers that implement
a few commonly used patterns for convolutional networks. Run the cells below to sanity check
they're working."""
    ),
    code(
        """from layerwise.layer_utils import conv_relu_pool_forward, conv_relu_pool_backward
np.random.seed(231)
x = np.random.randn(2, 3, 16, 16)
w = np.random.randn(3, 3, 3, 3)
b = np.random.randn(3,)
dout = np.random.randn(2, 3, 8, 8)
conv_param = {'stride': 1, 'pad': 1}
pool_param = {'pool_height': 2, 'pool_width': 2, 'stride': 2}

out, cache = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
dx, dw, db = conv_relu_pool_backward(dout, cache)

dx_num = eval_numerical_gradient_array(lambda x: conv_relu_pool_forward(x, w, b, conv_param, pool_param)[0], x, dout)
dw_num = eval_numerical_gradient_array(lambda w: conv_relu_pool_forward(x, w, b, conv_param, pool_param)[0], w, dout)
db_num = eval_numerical_gradient_array(lambda b: conv_relu_pool_forward(x, w, b, conv_param, pool_param)[0], b, dout)

# Relative errors should be around e-8 or less
print('Testing conv_relu_pool')
print('dx error: ', rel_error(dx_num, dx))
print('dw error: ', rel_error(dw_num, dw))
print('db error: ', rel_error(db_num, db))
assert max(rel_error(dx_num, dx), rel_error(dw_num, dw), rel_error(db_num, db)) < 1e-7, 'conv_relu_pool: error above 1e-7'"""
    ),
    code(
        """from layerwise.layer_utils import conv_relu_forward, conv_relu_backward
np.random.seed(231)
x = np.random.randn(2, 3, 8, 8)
w = np.random.randn(3, 3, 3, 3)
b = np.random.randn(3,)
dout = np.random.randn(2, 3, 8, 8)
conv_param = {'stride': 1, 'pad': 1}

out, cache = conv_relu_forward(x, w, b, conv_param)
dx, dw, db = conv_relu_backward(dout, cache)

dx_num = eval_numerical_gradient_array(lambda x: conv_relu_forward(x, w, b, conv_param)[0], x, dout)
dw_num = eval_numerical_gradient_array(lambda w: conv_relu_forward(x, w, b, conv_param)[0], w, dout)
db_num = eval_numerical_gradient_array(lambda b: conv_relu_forward(x, w, b, conv_param)[0], b, dout)

# Relative errors should be around e-8 or less
print('Testing conv_relu:')
print('dx error: ', rel_error(dx_num, dx))
print('dw error: ', rel_error(dw_num, dw))
print('db error: ', rel_error(db_num, db))
assert max(rel_error(dx_num, dx), rel_error(dw_num, dw), rel_error(db_num, db)) < 1e-7, 'conv_relu: error above 1e-7'"""
    ),
    md(
        """# Three-layer ConvNet

Now that we have all the necessary layers, we can put them together into a simple convolutional
network: the `ThreeLayerConvNet` class in `layerwise/classifiers/cnn.py`, built from the fast and
sandwich layers. Run the following cells to check it:

## Sanity check loss

After you build a new network, one of the first things you should do is sanity check the loss.
When we use the softmax loss, we expect the loss for random weights (and no regularization) to be
about `log(C)` for `C` classes. When we add regularization the loss should go up slightly."""
    ),
    code(
        """model = ThreeLayerConvNet()

N = 50
X = np.random.randn(N, 3, 32, 32)
y = np.random.randint(10, size=N)

loss, grads = model.loss(X, y)
print('Initial loss (no regularization): ', loss)
assert abs(loss - np.log(10)) < 1e-2, 'initial loss not about log(10) = 2.3026'

model.reg = 0.5
loss_reg, grads = model.loss(X, y)
print('Initial loss (with regularization): ', loss_reg)
assert loss_reg > loss, 'regularization did not increase the loss'"""
    ),
    md(
        """## Gradient check

After the loss looks reasonable, use numeric gradient checking to make sure that your backward
pass is correct. When you use numeric gradient checking you should use a small amount of
artificial data and a small number of neurons at each layer. Note: correct implementations may
still have relative errors up to the order of e-2."""
    ),
    code(
        """num_inputs = 2
input_dim = (3, 16, 16)
reg = 0.0
num_classes = 10
np.random.seed(231)
X = np.random.randn(num_inputs, *input_dim)
y = np.random.randint(num_classes, size=num_inputs)

model = ThreeLayerConvNet(num_filters=3, filter_size=3,
                          input_dim=input_dim, hidden_dim=7,
                          dtype=np.float64)
loss, grads = model.loss(X, y)
# Errors should be small, but correct implementations may have
# relative errors up to the order of e-2
for param_name in sorted(grads):
    f = lambda _: model.loss(X, y)[0]
    param_grad_num = eval_numerical_gradient(f, model.params[param_name], verbose=False, h=1e-6)
    e = rel_error(param_grad_num, grads[param_name])
    print('%s max relative error: %e' % (param_name, rel_error(param_grad_num, grads[param_name])))
    assert e < 1e-1, '%s: relative error above 1e-1' % param_name"""
    ),
    md(
        """## Overfit small data

A nice trick is to train your model with just a few training samples. You should be able to
overfit small datasets, which will result in very high training accuracy and comparatively low
validation accuracy."""
    ),
    code(
        """np.random.seed(231)

num_train = 100
small_data = {
    'X_train': data['X_train'][:num_train],
    'y_train': data['y_train'][:num_train],
    'X_val': data['X_val'],
    'y_val': data['y_val'],
}

model = ThreeLayerConvNet(weight_scale=1e-2)

solver = Solver(model, small_data,
                num_epochs=35, batch_size=50,
                update_rule='sgd',
                optim_config={
                    'learning_rate': 1e-3,
                },
                verbose=True, print_every=1)
solver.train()"""
    ),
    code(
        """# Print final training accuracy
print(
    "Small data training accuracy:",
    solver.check_accuracy(small_data['X_train'], small_data['y_train'])
)"""
    ),
    code(
        """# Print final validation accuracy
print(
    "Small data validation accuracy:",
    solver.check_accuracy(small_data['X_val'], small_data['y_val'])
)"""
    ),
    md("""Plotting the loss, training accuracy, and validation accuracy should show clear overfitting:"""),
    code(
        """plt.subplot(2, 1, 1)
plt.plot(solver.loss_history, 'o')
plt.xlabel('iteration')
plt.ylabel('loss')

plt.subplot(2, 1, 2)
plt.plot(solver.train_acc_history, '-o')
plt.plot(solver.val_acc_history, '-o')
plt.legend(['train', 'val'], loc='upper left')
plt.xlabel('epoch')
plt.ylabel('accuracy')
plt.show()"""
    ),
    md(
        """## Train the net

By training the three-layer convolutional network for one epoch, you should achieve greater than
30% accuracy on the training set with sgd; it should take about 6 minutes. In the next part, where we
learn other optimization techniques, we will get better accuracy in the same amount of time.

In quick mode the epoch is over the 1,800 training images of the embedded sample (36 iterations
instead of 980), far too few to reach the target."""
    ),
    code(
        """model = ThreeLayerConvNet(weight_scale=0.001, hidden_dim=500, reg=0.001)

solver = Solver(model, data,
                num_epochs=1, batch_size=50,
                update_rule='sgd',
                optim_config={
                    'learning_rate': 1e-3,
                },
                verbose=True, print_every=20)
solver.train()"""
    ),
    code(
        """# Print final training accuracy
print(
    "Full data training accuracy:",
    solver.check_accuracy(small_data['X_train'], small_data['y_train'])
)"""
    ),
    code(
        """# Print final validation accuracy
print(
    "Full data validation accuracy:",
    solver.check_accuracy(data['X_val'], data['y_val'])
)"""
    ),
    md(
        """## Visualize Filters

You can visualize the first-layer convolutional filters from the trained network by running the
following:"""
    ),
    code(
        """from layerwise.vis_utils import visualize_grid

grid = visualize_grid(model.params['W1'].transpose(0, 2, 3, 1))
plt.imshow(grid.astype('uint8'))
plt.axis('off')
plt.gcf().set_size_inches(5, 5)
plt.show()"""
    ),
]


NOTEBOOKS = {
    "FullyConnectedNets.ipynb": FULLY_CONNECTED_NETS,
    "ConvolutionalNetworks.ipynb": CONVOLUTIONAL_NETWORKS,
}


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """A notebook (nbformat 4, no outputs) of ``cells``, with stable cell ids so rebuilds are byte-identical."""
    nb = new_notebook()
    for index, (kind, source) in enumerate(cells):
        cell = new_markdown_cell(source) if kind == "markdown" else new_code_cell(source)
        cell["id"] = f"cell-{index:02d}"
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.validate(nb)
    return nb


def render(cells: list[tuple[str, str]]) -> str:
    return nbformat.writes(build(cells)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only verify that the saved notebooks are up to date")
    args = parser.parse_args(argv)
    stale = []
    for name, cells in NOTEBOOKS.items():
        path = HERE / name
        text = render(cells)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"out of date (run python notebooks/build_notebooks.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
