"""The from-scratch reference: a fresh network per task, trained on its support set alone."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from metazoo.seeding import weights_seeded
from metazoo.trainers.episodic import EpisodicModel, flatten_tasks
from metazoo.trainers.losses import mean_loss, resolve_loss, update_loss_tracker
from metazoo.validation import (
    check_built_model,
    check_count,
    check_finite_array,
    check_meta_batch_arrays,
    check_positive,
    check_seed,
)


@keras.saving.register_keras_serializable(package="metazoo")
class Scratch(EpisodicModel):
    """A new network for every task, initialized afresh (seeded by `seed` and the task's
    index) and trained with `fit_steps` full-batch Adam steps on that task's support set:
    the reference that says what any prior knowledge adds.

    There is nothing to meta-train: `fit` and `evaluate` report the query loss of the
    untrained network and change no weight. `adapt` and `predict_tasks` do the work.

    Args:
        model: the architecture (a built Keras model); its own weights are never used.
        fit_steps: Adam steps on each support set.
        learning_rate: Adam's learning rate.
        seed: base seed of the fresh initializations.
    """

    def __init__(self, model, fit_steps=100, learning_rate=1e-2, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.model = check_built_model("model", model)
        self.fit_steps = check_count("fit_steps", fit_steps, 0)
        self.learning_rate = check_positive("learning_rate", learning_rate)
        self.seed = check_seed("seed", seed)
        self.built = True

    def episode_shapes(self) -> tuple:
        return tuple(self.model.input_shape[1:]), tuple(self.model.output_shape[1:])

    def call(self, x, training=False):
        return self.model(x, training=training)

    def meta_train_step(self, batch):
        return self.meta_test_step(batch)

    def meta_test_step(self, batch):
        """The query loss of the untrained network (nothing is meta-trained)."""
        _, _, query_x, query_y = batch
        query_pred = self.model(flatten_tasks(query_x)[0], training=False)
        query_y = flatten_tasks(query_y)[0]
        update_loss_tracker(self, mean_loss(resolve_loss(self.loss), query_y, query_pred), 1)
        return self.compute_metrics(None, query_y, query_pred)

    # -- adaptation ------------------------------------------------------------------------
    def adapt(self, support_x, support_y, steps=None, task_index=0) -> keras.Model:
        """A fresh network trained on one support set.

        Args:
            support_x: `(n_support, *input_shape)`; support_y: `(n_support, *output_shape)`.
            steps: Adam steps (default `fit_steps`).
            task_index: which fresh initialization (as the task's index in `predict_tasks`).

        Returns:
            A new Keras model with the trained weights.
        """
        x = check_finite_array("support_x", support_x, self.compute_dtype)
        y = check_finite_array("support_y", support_y, self.compute_dtype)
        steps = self.fit_steps if steps is None else check_count("steps", steps, 0)
        fresh = self._fresh(task_index)
        weights = self._trainer(steps)(
            _weights(fresh), ops.convert_to_tensor(x), ops.convert_to_tensor(y)
        )
        for variable, value in zip(fresh.trainable_variables, weights, strict=True):
            variable.assign(value)
        return fresh

    def predict_tasks(self, batch, steps=None) -> np.ndarray:
        """Query predictions of a fresh network per task trained on its support set.

        Args:
            batch: a `MetaBatch` (or 4-tuple) with a leading task axis.
            steps: Adam steps per task (default `fit_steps`).

        Returns:
            `(n_tasks, query_size, *output_shape)` NumPy predictions.
        """
        support_x, support_y, query_x, _ = check_meta_batch_arrays(batch)
        steps = self.fit_steps if steps is None else check_count("steps", steps, 0)
        train = self._trainer(steps)
        predictions = []
        for index in range(len(support_x)):
            fresh = self._fresh(index)
            predictions.append(
                train(_weights(fresh), support_x[index], support_y[index], query_x[index])
            )
        return np.stack([ops.convert_to_numpy(p) for p in predictions])

    def _fresh(self, index) -> keras.Model:
        """The network with its `index`-th fresh draw of initial weights."""
        with weights_seeded(self.seed * 100_003 + int(index)):
            return keras.models.clone_model(self.model)

    def _forward(self, weights, x):
        non_trainable = [tf.convert_to_tensor(v.value) for v in self.model.non_trainable_variables]
        return self.model.stateless_call(weights, non_trainable, x, training=False)[0]

    def _trainer(self, steps):
        """A compiled function: initial weights, support set -> weights after `steps` Adam
        steps (Adam written out, so no optimizer state outlives a task), or with `query_x`
        the forecasts of those weights."""
        cache = self.__dict__.setdefault("_metazoo_trainers", {})
        if steps in cache:
            return cache[steps]
        loss_fn = resolve_loss(self.loss if self.compiled else "mse")
        rate = self.learning_rate

        @tf.function
        def train(weights, support_x, support_y, query_x=None):
            beta1, beta2, eps = 0.9, 0.999, 1e-7
            moments = [tf.zeros_like(w) for w in weights] * 2

            def step(t, weights, moments):
                with tf.GradientTape() as tape:
                    tape.watch(weights)
                    value = mean_loss(loss_fn, support_y, self._forward(weights, support_x))
                grads = tape.gradient(value, weights)
                m, v = moments[: len(weights)], moments[len(weights) :]
                m = [beta1 * a + (1 - beta1) * g for a, g in zip(m, grads, strict=True)]
                v = [beta2 * a + (1 - beta2) * g * g for a, g in zip(v, grads, strict=True)]
                t = t + 1.0
                scale = rate * tf.sqrt(1 - beta2**t) / (1 - beta1**t)
                weights = [
                    w - scale * a / (tf.sqrt(b) + eps)
                    for w, a, b in zip(weights, m, v, strict=True)
                ]
                return t, weights, m + v

            _, weights, _ = tf.while_loop(
                lambda t, *_: t < steps, step, (tf.constant(0.0), weights, moments)
            )
            return weights if query_x is None else self._forward(weights, query_x)

        cache[steps] = train
        return train

    def get_config(self):
        return {
            **super().get_config(),
            "model": keras.saving.serialize_keras_object(self.model),
            "fit_steps": self.fit_steps,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        model = keras.saving.deserialize_keras_object(config.pop("model"))
        return cls(model, **config)


def _weights(model) -> list:
    return [tf.convert_to_tensor(v.value) for v in model.trainable_variables]
