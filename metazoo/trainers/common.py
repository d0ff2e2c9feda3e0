"""Pieces shared by the trainers."""

from __future__ import annotations

import keras
from keras import ops


def resolve_loss(loss):
    """The compiled loss as a function `loss(y_true, y_pred) -> per-sample values` or a
    `keras.losses.Loss` instance."""
    if loss is None:
        raise ValueError("Compile the trainer with a loss, e.g. compile(optimizer, loss='mse').")
    return keras.losses.get(loss) if isinstance(loss, str) else loss


def mean_loss(loss_fn, y_true, y_pred, sample_weight=None):
    """Scalar loss: the (weighted) mean of `loss_fn` over samples."""
    if isinstance(loss_fn, keras.losses.Loss):
        return loss_fn(y_true, y_pred, sample_weight=sample_weight)
    values = loss_fn(y_true, y_pred)
    if sample_weight is None:
        return ops.mean(values)
    weight = ops.cast(ops.reshape(sample_weight, ops.shape(values)), values.dtype)
    return ops.sum(values * weight) / ops.maximum(ops.sum(weight), 1e-12)


def update_loss_tracker(model: keras.Model, loss, batch_size) -> None:
    """Update the `loss` metric Keras creates in `compile`."""
    tracker = next(m for m in model.metrics if m.name == "loss")
    tracker.update_state(loss, sample_weight=batch_size)
