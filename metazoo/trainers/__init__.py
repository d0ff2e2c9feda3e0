"""Trainers that combine zoo models; each is a `keras.Model` or follows scikit-learn."""

from metazoo.trainers.anil import ANIL
from metazoo.trainers.averaging import ModelAveraging, inverse_error_weights, stacking_weights
from metazoo.trainers.maml import MAML
from metazoo.trainers.meta import GradientMetaLearner
from metazoo.trainers.meta_sgd import MetaSGD
from metazoo.trainers.reptile import Reptile

__all__ = [
    "ANIL",
    "MAML",
    "GradientMetaLearner",
    "MetaSGD",
    "ModelAveraging",
    "Reptile",
    "inverse_error_weights",
    "stacking_weights",
]
