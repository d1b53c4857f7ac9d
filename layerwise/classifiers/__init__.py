"""Ready-made classifiers: fully-connected nets (:mod:`.fc_net`) and a small convnet (:mod:`.cnn`)."""

from .cnn import ThreeLayerConvNet
from .fc_net import FullyConnectedNet, TwoLayerNet

MODELS = {cls.__name__: cls for cls in (TwoLayerNet, FullyConnectedNet, ThreeLayerConvNet)}

__all__ = ["TwoLayerNet", "FullyConnectedNet", "ThreeLayerConvNet", "MODELS"]
