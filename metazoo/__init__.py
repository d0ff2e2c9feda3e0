"""metazoo: a Keras 3 model zoo with meta-learning trainers for financial time series.

Subpackages load on first use: `metazoo.data`, `metazoo.metrics`, `metazoo.baselines` and
`metazoo.backtest` without TensorFlow; `metazoo.models`, `metazoo.trainers`,
`metazoo.callbacks` and `metazoo.experiment` (the protocol of `metazoo run`) with it.
"""

import importlib

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

__all__ = ["__version__", *_SUBPACKAGES]


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"metazoo.{name}")
    raise AttributeError(f"module 'metazoo' has no attribute {name!r}")
