"""Seeded builds and fits leave the caller's random number generators as they were."""

import random

import keras
import numpy as np
import pytest
import tensorflow as tf

from metazoo import models
from metazoo.data import MetaBatch
from metazoo.seeding import process_seeded, weights_seeded
from metazoo.trainers import Scratch
from metazoo.trainers.trial import TrialSettings, fit_model


def _draws():
    """One draw from each of Python's, NumPy's and TensorFlow's global generators."""
    numpy_draw = float(np.random.rand())  # noqa: NPY002 (the legacy global generator)
    return random.random(), numpy_draw, float(tf.random.uniform([]))


def _draws_after(seed, work):
    keras.utils.set_random_seed(seed)
    _draws()
    work()
    return _draws()


def _weights(model):
    return [np.asarray(w) for w in model.get_weights()]


@pytest.mark.parametrize("name", ["mlp", "lstm", "tcn"])
def test_seeded_build_leaves_the_global_generators_untouched(name):
    def build():
        models.build(name, (6, 2), 1, seed=123)

    assert _draws_after(7, build) == _draws_after(7, lambda: None)


def test_the_same_seed_builds_the_same_weights_whatever_was_drawn_before():
    keras.utils.set_random_seed(1)
    first = _weights(models.build("gru", (6, 2), 1, seed=5, units=(3,)))
    keras.utils.set_random_seed(2)
    _draws()
    second = _weights(models.build("gru", (6, 2), 1, seed=5, units=(3,)))
    other = _weights(models.build("gru", (6, 2), 1, seed=6, units=(3,)))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_weights_seeded_restores_python_state_even_after_an_error():
    random.seed(3)
    expected = random.Random(3).random()
    with pytest.raises(RuntimeError), weights_seeded(9):
        raise RuntimeError("inside")
    assert random.random() == expected


def test_process_seeded_restores_numpy_and_python_and_the_tf_global_seed():
    tf.random.set_seed(11)
    random.seed(4)
    np.random.seed(4)  # noqa: NPY002 (the legacy global generator is under test)
    with process_seeded(8):
        inside = _draws()
    assert random.random() == random.Random(4).random()
    numpy_draw = float(np.random.rand())  # noqa: NPY002 (the legacy global generator)
    assert numpy_draw == float(np.random.RandomState(4).rand())
    assert tf.compat.v1.get_seed(None)[0] == 11
    with process_seeded(8):
        assert _draws() == inside
    with pytest.raises(ValueError, match="seed expected an integer >= 0"):
        with process_seeded(-1):
            pass


def test_a_trial_fit_is_seeded_and_restores_the_callers_generators():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 5, 2)).astype("float32")
    y = rng.normal(size=(32, 1))
    settings = TrialSettings(epochs=2, batch_size=8, seed=3)

    def fit():
        return fit_model("mlp", {"units": (4,)}, X, y, settings)[0]

    keras.utils.set_random_seed(0)
    first = _weights(fit())
    keras.utils.set_random_seed(1)
    second = _weights(fit())
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert _draws_after(7, fit)[:2] == _draws_after(7, lambda: None)[:2]


def test_scratch_draws_the_same_fresh_weights_whatever_the_global_state():
    rng = np.random.default_rng(0)
    batch = MetaBatch(
        *(rng.normal(size=shape).astype("float32") for shape in [(2, 8, 5, 2), (2, 8, 1)] * 2)
    )
    scratch = Scratch(models.build("mlp", (5, 2), 1, seed=0, units=(4,)), fit_steps=3)
    keras.utils.set_random_seed(0)
    first = scratch.predict_tasks(batch)
    keras.utils.set_random_seed(1)
    _draws()
    np.testing.assert_array_equal(first, scratch.predict_tasks(batch))
    assert _draws_after(7, lambda: scratch.predict_tasks(batch)) == _draws_after(7, lambda: None)
