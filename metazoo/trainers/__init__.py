"""Trainers that combine zoo models; each is a `keras.Model` or follows scikit-learn."""

from metazoo.trainers.averaging import ModelAveraging, inverse_error_weights, stacking_weights

__all__ = ["ModelAveraging", "inverse_error_weights", "stacking_weights"]
