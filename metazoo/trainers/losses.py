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


def per_sample_loss(loss_fn, y_true, y_pred):
    """Unreduced values of a compiled loss (a function or a `keras.losses.Loss`)."""
    if isinstance(loss_fn, keras.losses.Loss):
        return loss_fn.call(y_true, y_pred)
    return loss_fn(y_true, y_pred)


def member_task_losses(loss_fn, outputs, y_true):
    """Each member's mean loss on each task, `(M, n_tasks)`, from member predictions
    `(M, n_tasks, n, *target_shape)` and targets `(n_tasks, n, *target_shape)`."""
    m, n_tasks = ops.shape(outputs)[0], ops.shape(outputs)[1]
    y_true = ops.broadcast_to(y_true[None], ops.shape(outputs))
    flat = (-1, *outputs.shape[3:])
    values = per_sample_loss(loss_fn, ops.reshape(y_true, flat), ops.reshape(outputs, flat))
    return ops.mean(ops.reshape(values, (m, n_tasks, -1)), axis=-1)


def softmax_entropy(weights):
    """Mean entropy (nats) of rows of probabilities `(n, k)`: 0 for one-hot, log k uniform."""
    return ops.mean(-ops.sum(weights * ops.log(ops.maximum(weights, 1e-12)), axis=-1))
