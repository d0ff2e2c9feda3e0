"""The pooled reference: one network trained on every sample of the training tasks, used
without adaptation. It measures what adapting to a task adds."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from metazoo.models import compiled_call
from metazoo.trainers.episodic import EpisodicModel, merge_tasks
from metazoo.validation import (
    check_built_model,
    check_count,
    check_finite_array,
    check_meta_batch_arrays,
)


class PooledTraining:
    """Supervised training of one base network (`self.model`) for `Pooled` and
    `FineTuned`: `fit` takes plain samples `(x, y)` (windows, shuffled by default as in
    Keras) or meta-batches, whose support and query samples are pooled into one batch.
    Either way the step is Keras' own supervised step on the base network."""

    jit_refused = False

    def fit(self, x=None, y=None, *args, shuffle=None, **kwargs):
        """Keras `fit` on samples `(x, y)` or on meta-batches (`y` None); `shuffle`
        defaults to True for samples and False for meta-batches."""
        shuffle = y is not None if shuffle is None else shuffle
        return EpisodicModel.fit(self, x, y, *args, shuffle=shuffle, **kwargs)

    def train_step(self, data):
        samples = _samples(data)
        if samples is None:
            return EpisodicModel.train_step(self, data)
        return self._guarded(lambda parts: keras.Model.train_step(self, parts), samples)

    def test_step(self, data):
        samples = _samples(data)
        if samples is None:
            return EpisodicModel.test_step(self, data)
        return self._guarded(lambda parts: keras.Model.test_step(self, parts), samples)

    def meta_train_step(self, batch):
        """One supervised step on every support and query sample of the meta-batch."""
        support_x, support_y, query_x, query_y = batch
        x = ops.concatenate([merge_tasks(support_x), merge_tasks(query_x)], axis=0)
        y = ops.concatenate([merge_tasks(support_y), merge_tasks(query_y)], axis=0)
        return keras.Model.train_step(self, (x, y))


def _samples(data):
    """`(x, y)` (or `(x, y, sample_weight)`) of plain samples, or None for a meta-batch."""
    if isinstance(data, tuple | list) and len(data) in (2, 3) and data[1] is not None:
        if len(data) == 2 or data[2] is None:
            return tuple(data[:2])
        return tuple(data)
    return None


def copy_model(model: keras.Model) -> keras.Model:
    """A new Keras model with the architecture and weights of `model`."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


@keras.saving.register_keras_serializable(package="metazoo")
class Pooled(PooledTraining, EpisodicModel):
    """One network trained on every training sample, support and query alike, and used
    without adaptation: the reference that says what adapting to a task adds.

    `fit(x, y)` trains it on plain samples (e.g. every training window) exactly as
    `model.fit` would; `fit(meta_batches)` pools each meta-batch's samples into one step.
    `evaluate` on meta-batches reports the query loss without adaptation.

    Example:
        ```python
        pooled = Pooled(models.build("mlp", (20, 7), 1, seed=0))
        pooled.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        pooled.fit(train.X, train.y, epochs=8, batch_size=256)
        pooled.predict_tasks(episodes)   # (n_tasks, query_size, 1), no adaptation
        ```

    Args:
        model: the base network (a built Keras model, e.g. from `metazoo.models.build`).
    """

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.model = check_built_model("model", model)
        self.built = True

    def episode_shapes(self) -> tuple:
        return tuple(self.model.input_shape[1:]), tuple(self.model.output_shape[1:])

    def call(self, x, training=False):
        return self.model(x, training=training)

    def meta_test_step(self, batch):
        """The query loss of the network as it is (no adaptation)."""
        _, _, query_x, query_y = batch
        return keras.Model.test_step(self, (merge_tasks(query_x), merge_tasks(query_y)))

    def adapt(self, support_x, support_y, steps=None) -> keras.Model:
        """A copy of the network: the pooled reference does not adapt (`steps` must be None
        or 0); the support set is only checked."""
        if steps not in (None, 0):
            raise ValueError(
                f"steps expected None or 0: Pooled does not adapt. Received: {steps!r}"
            )
        sample, target = self.episode_shapes()
        x = check_finite_array("support_x", support_x, self.compute_dtype)
        y = check_finite_array("support_y", support_y, self.compute_dtype)
        if x.shape[1:] != sample or y.shape[1:] != target or len(x) != len(y):
            raise ValueError(
                f"support_x and support_y expected shapes (n, *{sample}) and (n, *{target}). "
                f"Received: {x.shape} and {y.shape}"
            )
        return copy_model(self.model)

    def predict_tasks(self, batch, steps=None, batch_size=1024) -> np.ndarray:
        """Forecasts of every query sample, without adaptation.

        Args:
            batch: a `MetaBatch` (or 4-tuple) with a leading task axis.
            steps: must be None or 0.
            batch_size: samples per forward pass.

        Returns:
            `(n_tasks, query_size, *output_shape)` NumPy predictions.
        """
        if steps not in (None, 0):
            raise ValueError(
                f"steps expected None or 0: Pooled does not adapt. Received: {steps!r}"
            )
        query_x = check_meta_batch_arrays(batch)[2]
        flat = compiled_call(
            self.model,
            query_x.reshape(-1, *query_x.shape[2:]),
            batch_size=check_count("batch_size", batch_size),
        )
        return flat.reshape(*query_x.shape[:2], *flat.shape[1:])

    def get_config(self):
        return {**super().get_config(), "model": keras.saving.serialize_keras_object(self.model)}

    @classmethod
    def from_config(cls, config):
        model = keras.saving.deserialize_keras_object(config.pop("model"))
        return cls(model, **config)
