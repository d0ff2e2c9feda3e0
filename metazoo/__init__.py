"""metazoo: a Keras 3 model zoo with meta-learning trainers for financial time series.

Subpackages load on first use (`metazoo.data` without TensorFlow, `metazoo.models`,
`metazoo.trainers`, `metazoo.metrics`, `metazoo.callbacks`).
"""

import importlib

__version__ = "0.1.0"

_SUBPACKAGES = ("callbacks", "data", "metrics", "models", "trainers")

__all__ = ["__version__", *_SUBPACKAGES]


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"metazoo.{name}")
    raise AttributeError(f"module 'metazoo' has no attribute {name!r}")
