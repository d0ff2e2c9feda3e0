"""Trainers that combine zoo models; each is a `keras.Model` or follows scikit-learn."""

from metazoo.trainers.amortized import AdaptedPredictor, AmortizedMetaLearner
from metazoo.trainers.anil import ANIL
from metazoo.trainers.averaging import ModelAveraging, inverse_error_weights, stacking_weights
from metazoo.trainers.distributed import fit_multi_worker
from metazoo.trainers.maml import MAML
from metazoo.trainers.meta import GradientMetaLearner
from metazoo.trainers.meta_averaging import MetaLearnedAveraging, task_features
from metazoo.trainers.meta_sgd import MetaSGD
from metazoo.trainers.metric_based import ExpertPrototypes
from metazoo.trainers.model_based import ContextMetaLearner
from metazoo.trainers.reptile import Reptile
from metazoo.trainers.selection import ModelSelection
from metazoo.trainers.sklearn import ZooRegressor
from metazoo.trainers.trial import run_trial

__all__ = [
    "ANIL",
    "MAML",
    "AdaptedPredictor",
    "AmortizedMetaLearner",
    "ContextMetaLearner",
    "ExpertPrototypes",
    "GradientMetaLearner",
    "MetaLearnedAveraging",
    "MetaSGD",
    "ModelAveraging",
    "ModelSelection",
    "Reptile",
    "ZooRegressor",
    "fit_multi_worker",
    "inverse_error_weights",
    "run_trial",
    "stacking_weights",
    "task_features",
]
