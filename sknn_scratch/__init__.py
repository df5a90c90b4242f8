"""sknn_scratch: a multi-layer perceptron from scratch, as scikit-learn estimators."""

from . import activations, initializers, parallel
from ._base import DeadOutputWarning, ZeroInitializationWarning
from .estimators import MLPScratchClassifier, MLPScratchRegressor

__version__ = "0.1.0"

__all__ = [
    "DeadOutputWarning", "MLPScratchClassifier", "MLPScratchRegressor",
    "ZeroInitializationWarning",
    "activations", "initializers", "parallel",
]
