"""Reference learners that measure what meta-learning adds: each task's model trained from
scratch on its support set, and one model pooled over all training tasks (no adaptation)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from metazoo.data.episodes import MetaBatch, check_meta_batch
from metazoo.trainers.common import mean_loss, resolve_loss


def predict_tasks(learner, batch: MetaBatch, steps: int | None = None) -> np.ndarray:
    """Query predictions of a gradient meta-learner after adapting to each task's support set.

    Args:
        learner: a compiled `GradientMetaLearner` (MAML, Reptile, Meta-SGD, ANIL), or an
            amortized learner (`ContextMetaLearner`, `ExpertPrototypes`,
            `MetaLearnedAveraging`), which adapts in one forward pass (`steps` must be None).
        batch: a `MetaBatch` (or 4-tuple) with a leading task axis.
        steps: inner steps (default `learner.eval_inner_steps`); 0 predicts without adapting.

    Returns:
        `(n_tasks, query_size, output_dim)` predictions.
    """
    if not hasattr(learner, "adapt_weights"):
        if steps is not None:
            raise ValueError(
                f"{type(learner).__name__} adapts in one forward pass, without gradient "
                f"steps. Received: steps={steps}"
            )
        return learner.predict_tasks(batch)
    batch = check_meta_batch(batch)
    steps = learner.eval_inner_steps if steps is None else int(steps)
    return ops.convert_to_numpy(_adapted_predictor(learner, steps)(tuple(batch)))


def _adapted_predictor(learner, steps):
    """The learner's compiled "adapt on each support set, predict each query set" function,
    made once per number of steps and kept on the learner (so repeated calls do not
    retrace). It reads the meta-parameters when called, so later training is seen."""
    cache = learner.__dict__.setdefault("_metazoo_predictors", {})
    if steps not in cache:

        @tf.function(reduce_retracing=True)
        def run(parts):
            weights = learner.meta_parameters()

            def per_task(task):
                support_x, support_y, query_x, _ = task
                fast, _ = learner.adapt_weights(weights, support_x, support_y, steps, False)
                return learner.forward(fast, query_x, training=False)

            return learner.map_tasks(per_task, parts)

        cache[steps] = run
    return cache[steps]


def scratch_predictions(
    build, batch: MetaBatch, steps=200, learning_rate=1e-2, loss="mse", seed=0
) -> np.ndarray:
    """Query predictions of a fresh model per task, trained only on that task's support set.

    Each task gets a new initialization (seeded by `seed` and the task index) and `steps`
    full-batch Adam steps on its support set.

    Args:
        build: `build(seed) -> keras.Model`, e.g. `lambda s: models.build("mlp", shape, 1, seed=s)`.
        batch: a `MetaBatch` with a leading task axis.
        steps: Adam steps per task.
        learning_rate: Adam learning rate.
        loss: a Keras loss name or object.
        seed: base seed.

    Returns:
        `(n_tasks, query_size, output_dim)` predictions.
    """
    batch = check_meta_batch(batch)
    model = build(seed)
    loss_fn = resolve_loss(loss)
    non_trainable = [tf.convert_to_tensor(v.value) for v in model.non_trainable_variables]

    def forward(weights, x):
        return model.stateless_call(weights, non_trainable, x, training=False)[0]

    @tf.function
    def train_and_predict(weights, support_x, support_y, query_x):
        beta1, beta2, eps = 0.9, 0.999, 1e-7
        moments = [tf.zeros_like(w) for w in weights] * 2

        def step(t, weights, moments):
            with tf.GradientTape() as tape:
                tape.watch(weights)
                value = mean_loss(loss_fn, support_y, forward(weights, support_x))
            grads = tape.gradient(value, weights)
            m, v = moments[: len(weights)], moments[len(weights) :]
            m = [beta1 * a + (1 - beta1) * g for a, g in zip(m, grads, strict=True)]
            v = [beta2 * a + (1 - beta2) * g * g for a, g in zip(v, grads, strict=True)]
            t = t + 1.0
            scale = learning_rate * tf.sqrt(1 - beta2**t) / (1 - beta1**t)
            weights = [
                w - scale * a / (tf.sqrt(b) + eps) for w, a, b in zip(weights, m, v, strict=True)
            ]
            return t, weights, m + v

        _, weights, _ = tf.while_loop(
            lambda t, *_: t < steps, step, (tf.constant(0.0), weights, moments)
        )
        return forward(weights, query_x)

    predictions = []
    for index in range(batch.n_tasks):
        keras.utils.set_random_seed(int(seed) * 100_003 + index)
        fresh = keras.models.clone_model(model)  # a new draw of the initial weights
        weights = [tf.convert_to_tensor(v.value) for v in fresh.trainable_variables]
        predictions.append(
            train_and_predict(
                weights, batch.support_x[index], batch.support_y[index], batch.query_x[index]
            )
        )
    return np.stack([ops.convert_to_numpy(p) for p in predictions])


def fit_pooled(build, batches, epochs=5, batch_size=256, learning_rate=1e-2, loss="mse", seed=0):
    """One model trained on every sample of the given meta-batches, support and query
    alike, as if they were one data set (no adaptation). The samples are those of the
    episodes passed (random episodes may repeat samples); to pool a `TaskSet`'s windows
    exactly, fit a zoo model on the windows themselves.

    Args:
        build: `build(seed) -> keras.Model`.
        batches: an iterable of `MetaBatch`es (or 4-tuples) of training tasks.
        epochs: passes over the pooled samples.
        batch_size: samples per gradient step.
        learning_rate: Adam learning rate (1e-2 suits the small synthetic families).
        loss: a Keras loss name or object.
        seed: seed of the initialization.

    Returns:
        The trained Keras model.
    """
    xs, ys = [], []
    for batch in batches:
        sx, sy, qx, qy = (np.asarray(part) for part in batch)
        xs += [sx.reshape(-1, *sx.shape[2:]), qx.reshape(-1, *qx.shape[2:])]
        ys += [sy.reshape(-1, *sy.shape[2:]), qy.reshape(-1, *qy.shape[2:])]
    if not xs:
        raise ValueError("fit_pooled needs at least one meta-batch.")
    model = build(seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
    model.fit(
        np.concatenate(xs), np.concatenate(ys), epochs=epochs, batch_size=batch_size, verbose=0
    )
    return model
