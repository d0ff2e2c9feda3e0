import keras
import numpy as np
import pytest
import tensorflow as tf

from metazoo import models
from tests import common

ZOO = models.available()


def test_registry_lists_every_family():
    assert {
        "mlp",
        "simple_rnn",
        "lstm",
        "gru",
        "stacked_lstm",
        "bi_lstm",
        "alstm",
        "tcn",
        "transformer",
    } <= set(ZOO)
    for name in ZOO:
        assert models.describe(name).strip(), name
        assert isinstance(models.hyperparameters(name), dict)


@pytest.mark.parametrize("name", ZOO)
def test_shapes_and_seed(name):
    common.check_shapes_and_seed(name)


@pytest.mark.parametrize("name", ZOO)
def test_config_and_keras_file_round_trip(name, tmp_path):
    common.check_round_trips(name, tmp_path / f"{name}.keras")


@pytest.mark.parametrize("name", ZOO)
def test_plain_keras_fit_with_tensorboard(name, tmp_path):
    common.check_keras_fit(name, tmp_path / "logs")


@pytest.mark.parametrize("name", ZOO)
def test_second_order_gradient_through_stateless_call(name):
    common.check_second_order(name)


@pytest.mark.parametrize("name", ZOO)
def test_head_is_the_last_dense_layer(name):
    common.check_head(name)


@pytest.fixture
def float64():
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("name", ["mlp", "gru"])
def test_second_order_meta_gradient_equals_finite_differences(name, float64):
    x, y = (a.astype("float64") for a in common.tiny_data(n=8))
    model = models.build(name, common.INPUT_SHAPE, common.OUTPUT_DIM, seed=0, units=(4,))
    _, grads = common.meta_gradient(model, x, y)
    weights = [tf.convert_to_tensor(v.value) for v in model.trainable_variables]
    rng = np.random.default_rng(0)
    for _ in range(3):
        direction = [tf.constant(rng.normal(size=w.shape)) for w in weights]
        eps = 1e-5
        plus = common.inner_step_loss(
            model, [w + eps * d for w, d in zip(weights, direction, strict=True)], x, y
        )
        minus = common.inner_step_loss(
            model, [w - eps * d for w, d in zip(weights, direction, strict=True)], x, y
        )
        numeric = float(plus - minus) / (2 * eps)
        analytic = float(sum(tf.reduce_sum(g * d) for g, d in zip(grads, direction, strict=True)))
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_gaussian_nll_matches_the_formula_and_trains():
    y = np.array([[0.5], [-1.0]], dtype="float32")
    pred = np.array([[0.0, np.log(2.0)], [1.0, 0.0]], dtype="float32")
    expected = [
        0.5 * (np.log(2.0) + 0.25 / 2.0 + np.log(2 * np.pi)),
        0.5 * (0.0 + 4.0 + np.log(2 * np.pi)),
    ]
    loss = models.GaussianNLL(reduction=None)(y, pred)
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    x, targets = common.tiny_data()
    model = common.build("mlp", probabilistic=True)
    model.compile(optimizer="adam", loss=models.GaussianNLL())
    history = model.fit(x, targets, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="Unknown model"):
        models.build("xgboost", (8, 3))
    with pytest.raises(ValueError, match="Unknown hyperparameters for 'lstm'.*\\['width'\\]"):
        models.build("lstm", (8, 3), width=3)
    with pytest.raises(ValueError, match="input_shape must be \\(lookback, n_features\\)"):
        models.build("mlp", (8,))
    with pytest.raises(
        ValueError, match="output_dim expected an integer >= 1. Received: output_dim=0"
    ):
        models.build("mlp", (8, 3), 0)
    with pytest.raises(ValueError, match="units must be positive integers"):
        models.build("mlp", (8, 3), units=(0,))
    with pytest.raises(ValueError, match="d_model must be divisible by num_heads"):
        models.build("transformer", (8, 3), d_model=10, num_heads=4)
    with pytest.raises(ValueError, match="already registered"):
        models.register("mlp")(lambda inputs: inputs)
