"""metazoo: a Keras 3 model zoo with meta-learning trainers for financial time series."""

from metazoo import data

__version__ = "0.1.0"

__all__ = ["data", "__version__"]
