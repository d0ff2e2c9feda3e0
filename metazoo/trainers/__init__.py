"""Trainers that combine zoo models; each is a `keras.Model` or follows scikit-learn."""

from metazoo.trainers.anil import ANIL
from metazoo.trainers.averaging import ModelAveraging, inverse_error_weights, stacking_weights
from metazoo.trainers.maml import MAML
from metazoo.trainers.meta import GradientMetaLearner
from metazoo.trainers.meta_sgd import MetaSGD
from metazoo.trainers.reptile import Reptile
from metazoo.trainers.selection import ModelSelection
from metazoo.trainers.sklearn import ZooRegressor
from metazoo.trainers.trial import run_trial

__all__ = [
    "ANIL",
    "MAML",
    "GradientMetaLearner",
    "MetaSGD",
    "ModelAveraging",
    "ModelSelection",
    "Reptile",
    "ZooRegressor",
    "inverse_error_weights",
    "run_trial",
    "stacking_weights",
]
