"""What every trainer fitted on meta-batches shares: Keras `compile`, `fit` and saving of
the compiled state, the meta-batch check, and loss scaling across replicas.

Meta-batches are `(support_x, support_y, query_x, query_y)` with a leading task axis, as
yielded by `TaskSet.meta_batches` or the synthetic task families.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


class EpisodicModel(keras.Model):
    """Base of the gradient (`GradientMetaLearner`) and amortized (`AmortizedMetaLearner`)
    meta-learners. Subclasses say what one target looks like (`episode_target_shape`)."""

    def episode_target_shape(self) -> tuple:
        """The shape of one sample's target, e.g. `(horizon,)`."""
        raise NotImplementedError

    def compile(self, optimizer="adam", loss="mse", metrics=None, **kwargs):
        """Keras `compile`; `loss` is the query loss (and drives any inner loop) and
        `metrics` are computed on the adapted query predictions."""
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)
        # Build the compiled loss and metrics now, on one dummy target: Keras would otherwise
        # build them by tracing the model with an (x, y) batch, which a meta-batch is not.
        example = ops.zeros((1, *self.episode_target_shape()), dtype=self.compute_dtype)
        self.compute_loss(y=example, y_pred=example)
        self.compute_metrics(None, example, example)
        for metric in self.metrics:
            metric.reset_state()

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.optimizer is not None:
            self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, *args, shuffle=False, **kwargs):
        """Keras `fit` on meta-batches; `shuffle` defaults to False because meta-batch
        datasets are already sampled at random."""
        return super().fit(x, *args, shuffle=shuffle, **kwargs)


def replica_scale():
    """`1 / replicas`: optimizers sum gradients across replicas, and each replica's loss is
    the mean over its own share of the meta-batch's tasks."""
    return 1.0 / tf.distribute.get_strategy().num_replicas_in_sync


def check_batch(data) -> tuple:
    """A meta-batch as a 4-tuple, unwrapping what `train_on_batch` and friends pass."""
    if isinstance(data, (tuple, list)) and 1 <= len(data) <= 3 and all(d is None for d in data[1:]):
        data = data[0]  # train_on_batch(batch) and friends wrap the batch as (x, None, None)
    if not isinstance(data, (tuple, list)) or len(data) != 4:
        raise ValueError(
            "Meta-learners train on meta-batches (support_x, support_y, query_x, query_y). "
            f"Received: {type(data).__name__} of length {len(data) if hasattr(data, '__len__') else '?'}"
        )
    return tuple(data)


def check_episodes(data, sample_shape, target_shape):
    """Check a meta-batch's structure and static shapes; return it as a 4-tuple.

    Args:
        data: `(support_x, support_y, query_x, query_y)` (or as `train_on_batch` wraps it).
        sample_shape: the inputs' shape per sample, e.g. `(lookback, n_features)`.
        target_shape: the targets' shape per sample, e.g. `(horizon,)`.
    """
    batch = check_batch(data)
    shapes = [tuple(part.shape) for part in batch]
    received = ", ".join(
        f"{name}={shape}"
        for name, shape in zip(
            ("support_x", "support_y", "query_x", "query_y"), shapes, strict=True
        )
    )
    expected = [sample_shape, target_shape, sample_shape, target_shape]
    for shape, trailing in zip(shapes, expected, strict=True):
        if len(shape) != 2 + len(trailing) or tuple(shape[2:]) != tuple(trailing):
            raise ValueError(
                "Meta-batches need (n_tasks, n_samples, ...) parts with samples "
                f"x {sample_shape} and y {target_shape}. Received: {received}"
            )
    for axis, what in ((0, "number of tasks"), (1, "number of samples")):
        pairs = ((0, 1), (2, 3)) if axis else ((0, 1), (0, 2), (0, 3))
        for a, b in pairs:
            if (
                None not in (shapes[a][axis], shapes[b][axis])
                and shapes[a][axis] != shapes[b][axis]
            ):
                raise ValueError(f"Meta-batch parts disagree in their {what}. Received: {received}")
    if shapes[0][0] == 0:
        raise ValueError(f"A meta-batch needs at least one task. Received: {received}")
    for index, name in ((0, "support"), (2, "query")):
        if shapes[index][1] == 0:
            raise ValueError(
                f"Every {name} set needs at least one sample (K >= 1). Received: {received}"
            )
    return batch
