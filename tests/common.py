"""Checks shared by every zoo model: shapes, seeds, config and `.keras` round trips, a Keras
training step, and second-order gradients through `stateless_call`."""

from __future__ import annotations

import json

import keras
import numpy as np
import tensorflow as tf

from metazoo import models
from metazoo.data import pool_samples
from metazoo.trainers import Pooled, Scratch

INPUT_SHAPE = (8, 3)
OUTPUT_DIM = 2


def tiny_data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *INPUT_SHAPE)).astype("float32")
    y = (x[:, -1, :OUTPUT_DIM] + 0.1 * rng.normal(size=(n, OUTPUT_DIM))).astype("float32")
    return x, y


def build(name, seed=0, **kwargs):
    return models.build(name, INPUT_SHAPE, OUTPUT_DIM, seed=seed, **kwargs)


def mse(pred, y):
    return tf.reduce_mean(tf.square(pred - y))


def inner_step_loss(model, trainable, x, y, lr=0.1, second_order=True):
    """Query loss after one functional gradient step on the support loss."""
    non_trainable = [v.value for v in model.non_trainable_variables]
    with tf.GradientTape() as inner:
        inner.watch(trainable)
        pred, _ = model.stateless_call(trainable, non_trainable, x, training=True)
        loss = mse(pred, y)
    grads = inner.gradient(loss, trainable)
    if not second_order:
        grads = [tf.stop_gradient(g) for g in grads]
    fast = [w - lr * g for w, g in zip(trainable, grads, strict=True)]
    pred, _ = model.stateless_call(fast, non_trainable, x, training=True)
    return mse(pred, y)


def meta_gradient(model, x, y, second_order=True):
    trainable = [tf.convert_to_tensor(v.value) for v in model.trainable_variables]
    with tf.GradientTape() as outer:
        outer.watch(trainable)
        loss = inner_step_loss(model, trainable, x, y, second_order=second_order)
    return loss, outer.gradient(loss, trainable)


def check_shapes_and_seed(name):
    x, _ = tiny_data()
    model = build(name)
    assert model.output_shape == (None, OUTPUT_DIM)
    assert model(x).shape == (len(x), OUTPUT_DIM)
    assert build(name, probabilistic=True)(x).shape == (len(x), 2 * OUTPUT_DIM)
    np.testing.assert_array_equal(build(name, seed=0)(x), model(x))
    assert not np.allclose(build(name, seed=1)(x), model(x))


def check_round_trips(name, path):
    x, _ = tiny_data()
    model = build(name)
    expected = model.predict(x, verbose=0)
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe mode: no lambdas, no pickles
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)
    assert _as_json(loaded.get_config()) == _as_json(model.get_config())


def _as_json(config):
    return json.dumps(config, sort_keys=True, default=str)


def check_keras_fit(name, log_dir):
    x, y = tiny_data()
    model = build(name)
    before = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    history = model.fit(
        x[:24],
        y[:24],
        validation_data=(x[24:], y[24:]),
        epochs=2,
        batch_size=8,
        verbose=0,
        callbacks=[keras.callbacks.TensorBoard(log_dir=str(log_dir))],
    )
    assert np.isfinite(history.history["loss"]).all()
    assert np.isfinite(history.history["val_loss"]).all()
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert any(log_dir.rglob("events.out.tfevents*"))


def check_second_order(name):
    x, y = tiny_data()
    model = build(name)
    before = [w.copy() for w in model.get_weights()]
    loss, grads = meta_gradient(model, x, y)
    assert np.isfinite(float(loss))
    assert all(g is not None for g in grads), "every variable must receive a meta-gradient"
    assert all(np.isfinite(g.numpy()).all() for g in grads)
    assert float(tf.linalg.global_norm(grads)) > 0
    _, first_order = meta_gradient(model, x, y, second_order=False)
    difference = tf.linalg.global_norm([a - b for a, b in zip(grads, first_order, strict=True)])
    assert float(difference) > 1e-7, "second-order terms must reach the meta-gradient"
    # The inner loop is functional: the model's own weights are untouched.
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def check_head(name):
    model = build(name)
    mask = models.head_mask(model)
    assert sum(mask) == 2  # the head's kernel and bias
    for variable, is_head in zip(model.trainable_variables, mask, strict=True):
        assert (variable.path.split("/")[0] == "head") == is_head, variable.path


def fit_pooled(build, batches, epochs=5, batch_size=256, learning_rate=1e-2, loss="mse", seed=0):
    """The pooled reference trained on every sample of some meta-batches."""
    pooled = Pooled(build(seed))
    pooled.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
    pooled.fit(*pool_samples(batches), epochs=epochs, batch_size=batch_size, verbose=0)
    return pooled


def scratch_predictions(build, batch, steps=200, learning_rate=1e-2, seed=0):
    """Query forecasts of a fresh network per task trained on its support set."""
    return Scratch(
        build(seed), fit_steps=steps, learning_rate=learning_rate, seed=seed
    ).predict_tasks(batch)


# -- the trainer harness: every few-shot learner of the registry --------------------------
EPISODE_SHAPE = (3, 2)


def few_shot_names():
    from metazoo.trainers import registry

    return registry.available(few_shot=True)


def make_trainer(name, nonfinite="raise", seed=0):
    """The registry entry `name` on tiny networks, compiled with SGD (every step moves).

    Seeded like an entry point: the learner's own layers (an encoder, a weighting) draw
    from the process's generators, which a seeded build leaves alone."""
    from metazoo.trainers import registry

    keras.utils.set_random_seed(seed)
    spec = registry.get(name)

    def network(s):
        return models.build("mlp", EPISODE_SHAPE, 1, seed=s, units=(4,))

    source = network(seed) if spec.needs == "base" else [network(seed + i) for i in range(3)]
    learner = spec.create(source, inner_lr=0.1, fit_steps=3, eval_inner_steps=2)
    learner.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", nonfinite=nonfinite)
    return learner


def episode_batch(n_tasks=3, support=5, query=4, seed=0):
    from metazoo.data import MetaBatch

    rng = np.random.default_rng(seed)
    sx = rng.normal(size=(n_tasks, support, *EPISODE_SHAPE)).astype("float32")
    qx = rng.normal(size=(n_tasks, query, *EPISODE_SHAPE)).astype("float32")

    def target(x):
        return (x[..., -1, :1] + 0.1 * rng.normal(size=(*x.shape[:2], 1))).astype("float32")

    return MetaBatch(sx, target(sx), qx, target(qx))


def episode_dataset(batches):
    parts = [np.stack(column) for column in zip(*batches, strict=True)]
    return tf.data.Dataset.from_tensor_slices(tuple(parts))


def with_nan(batch, part="support_x"):
    values = np.array(getattr(batch, part))
    values.flat[3] = np.nan
    return batch._replace(**{part: values})


def state_of(learner) -> list:
    """Every weight and optimizer variable, as NumPy arrays."""
    variables = [*learner.weights, *learner.optimizer.variables]
    return [keras.ops.convert_to_numpy(v) for v in variables]


def assert_same_state(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
