"""Losses for probabilistic heads."""

from __future__ import annotations

import math

import keras
from keras import ops


def split_gaussian(y_pred, log_var_bounds=(-20.0, 10.0)):
    """Split a probabilistic head's output `(batch, 2 * k)` into mean and log-variance `(batch, k)`.

    The log-variance is clipped to `log_var_bounds` for numerical safety.
    """
    mean, log_var = ops.split(y_pred, 2, axis=-1)
    return mean, ops.clip(log_var, *log_var_bounds)


@keras.saving.register_keras_serializable(package="metazoo")
class GaussianNLL(keras.losses.Loss):
    """Negative log-likelihood of targets under a Gaussian with predicted mean and variance.

    `y_pred` is `(batch, 2 * k)`: means, then log-variances; `y_true` is `(batch, k)`.
    Per sample: `0.5 * mean(log_var + (y - mean)^2 / exp(log_var) + log(2 pi))`.

    Args:
        log_var_bounds: clip range of the log-variance.
    """

    def __init__(self, log_var_bounds=(-20.0, 10.0), name="gaussian_nll", **kwargs):
        super().__init__(name=name, **kwargs)
        self.log_var_bounds = tuple(log_var_bounds)

    def call(self, y_true, y_pred):
        mean, log_var = split_gaussian(y_pred, self.log_var_bounds)
        y_true = ops.cast(y_true, mean.dtype)
        nll = log_var + ops.square(y_true - mean) * ops.exp(-log_var) + math.log(2 * math.pi)
        return 0.5 * ops.mean(nll, axis=-1)

    def get_config(self):
        return {**super().get_config(), "log_var_bounds": list(self.log_var_bounds)}
