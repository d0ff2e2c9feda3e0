"""Layers written so that meta-learners can vectorize them over tasks compute what the
standard ones do: unrolled recurrences and `MatmulConv1D`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from metazoo import models
from metazoo.models.tcn import MatmulConv1D


def _gradients(model, x):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True)))
    return tape.gradient(loss, model.trainable_variables)


@pytest.mark.parametrize("name", ["lstm", "gru", "simple_rnn", "bi_lstm"])
def test_unrolled_and_looped_recurrences_agree(name):
    x = np.random.default_rng(0).normal(size=(4, 6, 2)).astype("float32")
    unrolled = models.build(name, (6, 2), 1, seed=0, unroll=True)
    looped = models.build(name, (6, 2), 1, seed=1, unroll=False)
    looped.set_weights(unrolled.get_weights())
    recurrent = [layer for layer in unrolled.layers if layer.name != "window"][0]
    assert (getattr(recurrent, "forward_layer", recurrent)).unroll
    np.testing.assert_allclose(unrolled(x), looped(x), rtol=1e-5, atol=1e-6)
    for a, b in zip(_gradients(unrolled, x), _gradients(looped, x), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_zoo_recurrences_keep_the_keras_loop_unless_asked_to_unroll():
    assert not models.build("lstm", (20, 3), 1).get_layer("lstm_0").unroll
    assert not models.build("gru", (20, 3), 1, unroll=False).get_layer("gru_0").unroll
    assert models.build("gru", (20, 3), 1, unroll=True).get_layer("gru_0").unroll
    assert models.hyperparameters("lstm")["unroll"] is None
    assert "unroll" in models.describe("gru")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 3, "padding": "causal", "dilation_rate": 2, "activation": "relu"},
        {"kernel_size": 1},
        {"kernel_size": 3},
        {"kernel_size": 4, "padding": "same", "dilation_rate": 2},
        {"kernel_size": 3, "strides": 2},
    ],
)
def test_matmul_conv1d_equals_conv1d(kwargs):
    x = np.random.default_rng(0).normal(size=(4, 11, 3)).astype("float32")
    ours, reference = MatmulConv1D(5, **kwargs), keras.layers.Conv1D(5, **kwargs)
    ours.build(x.shape)
    reference.build(x.shape)
    rng = np.random.default_rng(1)
    ours.set_weights([rng.normal(size=w.shape) for w in reference.get_weights()])
    reference.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(x), reference(x), rtol=1e-5, atol=1e-5)
    for a, b in zip(_gradients(ours, x), _gradients(reference, x), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    config = keras.saving.serialize_keras_object(ours)
    assert isinstance(keras.saving.deserialize_keras_object(config), MatmulConv1D)
