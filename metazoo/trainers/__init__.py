"""Trainers that combine zoo models; each is a `keras.Model` or follows scikit-learn.

Every few-shot learner (the references `Pooled`, `FineTuned`, `Scratch`, the gradient
meta-learners and the amortized ones) follows one contract: `fit` on meta-batches (or, for
the references trained on plain samples, on `(x, y)`), `adapt(support_x, support_y,
steps=None)` returning something with `predict(x)`, and `predict_tasks(batch, steps=None)`.
`metazoo.trainers.registry` lists them with their default arguments.

Layout: the bases (`episodic`, `gradient`, `amortized`, `ensemble`, `losses`) apart from
the algorithms, one per module. Classes load on first use (with TensorFlow), so the
registry's names are read without it.
"""

import importlib

_EXPORTS = {
    "ANIL": "anil",
    "MAML": "maml",
    "AdaptedPredictor": "amortized",
    "AmortizedEnsemble": "ensemble",
    "AmortizedMetaLearner": "amortized",
    "ContextMetaLearner": "model_based",
    "EpisodicModel": "episodic",
    "ExpertPrototypes": "metric_based",
    "FineTuned": "finetuned",
    "GradientMetaLearner": "gradient",
    "MetaLearnedAveraging": "meta_averaging",
    "MetaSGD": "meta_sgd",
    "ModelAveraging": "averaging",
    "ModelSelection": "selection",
    "Pooled": "pooled",
    "Reptile": "reptile",
    "Scratch": "scratch",
    "ZooRegressor": "sklearn",
    "fit_multi_worker": "distributed",
    "inverse_error_weights": "averaging",
    "run_trial": "trial",
    "stacking_weights": "averaging",
    "task_features": "meta_averaging",
}

__all__ = sorted([*_EXPORTS, "registry"])


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"metazoo.trainers.{_EXPORTS[name]}"), name)
    if name == "registry":
        return importlib.import_module("metazoo.trainers.registry")
    raise AttributeError(f"module 'metazoo.trainers' has no attribute {name!r}")


def __dir__():
    return __all__
