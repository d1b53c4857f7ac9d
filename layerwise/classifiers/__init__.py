"""Ready-made classifiers: fully-connected nets (:mod:`.fc_net`), a small convnet (:mod:`.cnn`) and
a configurable one (:mod:`.convnet`)."""

from .cnn import ThreeLayerConvNet
from .convnet import ConvNet
from .fc_net import FullyConnectedNet, TwoLayerNet

MODELS = {cls.__name__: cls for cls in (TwoLayerNet, FullyConnectedNet, ThreeLayerConvNet, ConvNet)}

__all__ = ["TwoLayerNet", "FullyConnectedNet", "ThreeLayerConvNet", "ConvNet", "MODELS"]
