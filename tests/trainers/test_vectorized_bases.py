"""Recurrent and convolutional bases vectorized over the tasks of a meta-batch: `tf.vectorized_map` runs them
without falling back to a loop, and gives the meta-loss and second-order meta-gradients of
the task-by-task loop."""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from metazoo import models
from metazoo.data import ARTasks
from metazoo.trainers import MAML

SHAPE = (3, 1)
VECTORIZED = {  # base: hyperparameters (tiny widths)
    "simple_rnn": {"units": (3,)},
    "lstm": {"units": (3,)},
    "gru": {"units": (3,)},
    "stacked_lstm": {"units": (3, 2)},
    "bi_gru": {"units": (2,)},
    "alstm": {"units": 3, "attention_units": 2},
    "tcn": {"filters": 2, "kernel_size": 2, "dilations": (1,)},
}


@pytest.fixture
def float64():
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture
def strict_vectorized_map(monkeypatch):
    """`tf.vectorized_map` that raises instead of falling back to a loop over tasks."""
    strict = functools.partial(tf.vectorized_map, fallback_to_while_loop=False)
    monkeypatch.setattr(tf, "vectorized_map", strict)


def _batch(dtype="float64"):
    batch = ARTasks(order=2, lookback=SHAPE[0], unit_variance=True).sample(3, 4, 5, seed=0)
    return tuple(tf.constant(part.astype(dtype)) for part in batch)


def _learner(name, task_parallel="auto", inner_steps=1, **hparams):
    model = models.build(name, SHAPE, 1, seed=0, **(VECTORIZED.get(name, {}) | hparams))
    learner = MAML(model, inner_lr=0.1, inner_steps=inner_steps, task_parallel=task_parallel)
    learner.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return learner


@pytest.mark.parametrize("name", sorted(VECTORIZED))
def test_vectorized_meta_step_equals_the_task_loop(name, float64, strict_vectorized_map):
    batch = _batch()
    vectorized, loop = _learner(name), _learner(name, "loop")
    assert vectorized._vectorize() and not loop._vectorize()
    loop.set_weights(vectorized.get_weights())
    loss_v, (support_v, _, pred_v), grads_v = vectorized.meta_gradients(batch)
    loss_l, (support_l, _, pred_l), grads_l = loop.meta_gradients(batch)
    np.testing.assert_allclose(loss_v, loss_l, rtol=1e-5)
    np.testing.assert_allclose(support_v, support_l, rtol=1e-5)
    np.testing.assert_allclose(pred_v, pred_l, rtol=1e-5, atol=1e-12)
    assert len(grads_v) == len(vectorized.trainable_variables) == len(grads_l)
    scale = max(float(tf.reduce_max(tf.abs(g))) for g in grads_l)
    assert scale > 0
    for a, b in zip(grads_v, grads_l, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9 * scale)


def test_vectorized_recurrent_meta_gradient_equals_finite_differences(
    float64, strict_vectorized_map
):
    batch = _batch()
    learner = _learner("gru", inner_steps=1)
    assert learner._vectorize()
    _, _, gradients = learner.meta_gradients(batch)
    weights = learner.meta_parameters()

    def meta_loss(shift, direction):
        moved = [w + shift * d for w, d in zip(weights, direction, strict=True)]
        after, *_ = learner.map_tasks(lambda task: learner.task_losses(moved, task, 1), batch)
        return float(tf.reduce_mean(after))

    rng = np.random.default_rng(1)
    direction = [tf.constant(rng.normal(size=w.shape)) for w in weights]
    eps = 1e-6
    numeric = (meta_loss(eps, direction) - meta_loss(-eps, direction)) / (2 * eps)
    analytic = sum(float(tf.reduce_sum(g * d)) for g, d in zip(gradients, direction, strict=True))
    assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-10)


def test_auto_vectorizes_short_recurrences_and_matmul_convolutions():
    limit = models.rnn.UNROLL_MAX_LOOKBACK
    short = models.build("lstm", (limit, 3), 1, seed=0)
    long = models.build("gru", (limit + 1, 3), 1, seed=0)
    assert MAML(short)._vectorize() and not MAML(long)._vectorize()
    assert MAML(models.build("bi_gru", (20, 3), 1))._vectorize()
    assert MAML(models.build("gru", (limit + 1, 3), 1, unroll=True))._vectorize()
    assert not MAML(short, task_parallel="loop")._vectorize()
    assert MAML(models.build("tcn", (20, 3), 1))._vectorize()
    inputs = keras.Input((20, 3))
    conv = keras.layers.Conv1D(2, 3)(inputs)
    plain = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(conv)))
    assert not MAML(plain)._vectorize()
    assert models.hyperparameters("alstm")["unroll"] is None
    with pytest.raises(TypeError, match="`unroll` expected True, False or None"):
        models.build("lstm", (20, 3), 1, unroll="yes")


def test_short_recurrences_unroll_only_inside_the_vectorized_steps():
    base = models.build("bi_gru", (5, 2), 1, seed=0, units=(3,))
    learner = MAML(base, inner_lr=0.1)
    layers = learner._unrolled_layers()
    assert len(layers) == 2 and not any(layer.unroll for layer in layers)
    seen = []
    original = type(layers[0]).call

    def spy(layer, *args, **kwargs):
        seen.append(layer.unroll)
        return original(layer, *args, **kwargs)

    x = np.random.default_rng(0).normal(size=(4, 5, 2)).astype("float32")
    weights = [tf.convert_to_tensor(w) for w in base.trainable_variables]
    try:
        type(layers[0]).call = spy
        unrolled = learner.forward(weights, x, training=False)
        looped = MAML(base, task_parallel="loop").forward(weights, x, training=False)
    finally:
        type(layers[0]).call = original
    assert seen == [True, True, False, False]
    assert not any(layer.unroll for layer in layers)  # the base is left as it was
    np.testing.assert_allclose(unrolled, looped, rtol=1e-5, atol=1e-6)
