"""metazoo: a Keras 3 model zoo with meta-learning trainers for financial time series.

Subpackages load on first use: `metazoo.data`, `metazoo.metrics`, `metazoo.baselines` and
`metazoo.backtest` without TensorFlow; `metazoo.models`, `metazoo.trainers`,
`metazoo.callbacks` and `metazoo.experiment` (the protocol of `metazoo run`) with it.
`metazoo.load_forecaster(path)` reads a forecaster saved by `metazoo run` or
`Forecaster.save` (see `metazoo.forecasting`).

After `import metazoo`, `keras.models.load_model` loads every `.keras` file metazoo writes
(see `metazoo.keras_objects`).
"""

import importlib

from metazoo import keras_objects as _keras_objects

__version__ = "0.1.0"

_SUBPACKAGES = (
    "backtest",
    "baselines",
    "callbacks",
    "data",
    "experiment",
    "metrics",
    "models",
    "trainers",
)

__all__ = ["__version__", "load_forecaster", *_SUBPACKAGES]

_keras_objects.install()


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"metazoo.{name}")
    if name == "load_forecaster":
        return importlib.import_module("metazoo.forecasting").load_forecaster
    raise AttributeError(f"module 'metazoo' has no attribute {name!r}")
