"""Variance losses, the positive variance head and the HAR zoo models."""

import math

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from metazoo import models
from metazoo.baselines import HARRV
from metazoo.data import load_prices, make_windows
from tests import common
from tests.conftest import make_prices

V = np.array([[2e-4, 1e-4], [5e-5, 0.0]])  # realized variances (one unchanged close)
M = np.log(np.array([[1e-4, 1e-4], [1e-4, 2e-4]]))  # log-variance forecasts
R = np.array([[0.01, -0.02], [0.0, 0.03]])  # returns


def _hand_qlike(v, h):
    ratio = np.maximum(v, 1e-12) / h
    return (ratio - np.log(ratio) - 1).mean(axis=-1)


def _hand_student(r, h, n):
    # Density of a t with n degrees of freedom scaled to variance h, by scipy.
    from scipy import stats

    scale = np.sqrt(h * (n - 2) / n)
    return (-stats.t.logpdf(r, n, scale=scale)).mean(axis=-1)


LOSSES = [
    (models.QLIKE(), V, M, _hand_qlike(V, np.exp(M))),
    (models.QLIKE(log_pred=False), V, np.exp(M), _hand_qlike(V, np.exp(M))),
    (
        models.QLIKE(log_true=True),
        np.log(np.maximum(V, 1e-12)),
        M,
        _hand_qlike(V, np.exp(M)),
    ),
    (
        models.GaussianVarianceNLL(),
        R,
        M,
        (0.5 * (np.log(2 * np.pi) + M + R**2 / np.exp(M))).mean(axis=-1),
    ),
    (models.StudentTVarianceNLL(dof=5), R, M, _hand_student(R, np.exp(M), 5)),
    (
        models.StudentTVarianceNLL(dof=3.5, log_pred=False),
        R,
        np.exp(M),
        _hand_student(R, np.exp(M), 3.5),
    ),
]


@pytest.fixture
def float64():
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx("float32")


@pytest.mark.parametrize("loss, y_true, y_pred, expected", LOSSES)
def test_variance_losses_equal_hand_computed_values(loss, y_true, y_pred, expected, float64):
    loss = type(loss).from_config({**loss.get_config(), "reduction": None})
    values = loss(tf.constant(y_true), tf.constant(y_pred))
    np.testing.assert_allclose(values, expected, rtol=1e-10)


@pytest.mark.parametrize("loss, y_true, y_pred, expected", LOSSES)
def test_variance_loss_gradients_equal_finite_differences(loss, y_true, y_pred, expected, float64):
    loss = type(loss).from_config(loss.get_config())  # float64 now
    y_true, y_pred = tf.constant(y_true), tf.constant(y_pred)
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        value = loss(y_true, y_pred)
    grad = tape.gradient(value, y_pred).numpy()
    assert np.abs(grad).max() > 0
    numeric = np.zeros_like(grad)
    for index in np.ndindex(*grad.shape):
        step = 1e-6 * max(1.0, abs(float(y_pred[index]))) if loss.log_pred else 1e-10
        delta = np.zeros(grad.shape)
        delta[index] = step
        plus = float(loss(y_true, y_pred + delta))
        minus = float(loss(y_true, y_pred - delta))
        numeric[index] = (plus - minus) / (2 * step)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_qlike_is_zero_at_the_truth_and_its_minimizer_is_the_mean():
    loss = models.QLIKE(log_true=False, reduction=None)
    v = np.array([[1e-4, 3e-4]], "float32")
    np.testing.assert_allclose(loss(v, np.log(v)), [0.0], atol=1e-6)
    # Over many draws of v around a forecast, the mean loss is lowest at exp(m) = mean(v).
    draws = np.random.default_rng(0).chisquare(1, size=(5000, 1)).astype("float32") * 1e-4
    grid = np.log(np.array([0.5, 0.8, 1.0, 1.25, 2.0]) * draws.mean())
    losses = [float(models.QLIKE()(draws, np.full_like(draws, m))) for m in grid]
    assert int(np.argmin(losses)) == 2


@pytest.mark.parametrize(
    "loss",
    [models.QLIKE(log_true=True), models.GaussianVarianceNLL(), models.StudentTVarianceNLL()],
)
def test_variance_losses_are_serializable_and_train(loss, tmp_path):
    clone = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(clone) is type(loss) and clone.get_config() == loss.get_config()
    x, y = common.tiny_data()
    y = np.log(y**2 + 1e-3) if getattr(loss, "log_true", False) else y
    model = common.build("mlp")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
    history = model.fit(x, y, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.loss) is type(loss)


def test_variance_losses_refuse_bad_arguments():
    with pytest.raises(ValueError, match="dof expected a finite number > 2. Received: dof=2"):
        models.StudentTVarianceNLL(dof=2)
    with pytest.raises(TypeError, match="`log_pred` expected True or False"):
        models.QLIKE(log_pred="yes")
    with pytest.raises(ValueError, match="`log_var_bounds` expected"):
        models.GaussianVarianceNLL(log_var_bounds=(1.0, -1.0))


@pytest.mark.parametrize("activation", ["exp", "softplus"])
def test_variance_head_is_positive_and_finite_on_extreme_inputs(activation):
    model = models.build("mlp", (4, 3), 2, head="variance", seed=0, units=(8,))
    layer = model.get_layer("head_variance")
    layer.activation = activation
    x = np.concatenate(
        [np.full((1, 4, 3), 1e6), np.full((1, 4, 3), -1e6), np.zeros((1, 4, 3))]
    ).astype("float32")
    for scale in (1.0, 1e10, 1e30):  # huge weights push the pre-activation to +-inf
        weights = [w * scale for w in model.get_weights()]
        model.set_weights(weights)
        out = model.predict(x, verbose=0)
        assert np.isfinite(out).all() and (out > 0).all(), (scale, out)
        model.set_weights([w / scale for w in weights])
    z = tf.constant([[-np.inf, -1e6, 0.0, 1e6, np.inf, np.nan]], tf.float32)
    out = layer(z).numpy()
    assert (out > 0).all() and np.isfinite(out).all()
    assert out[0, -1] == out.max()  # an overflow inside the network gives the cautious bound
    low, high = np.exp(layer.log_var_bounds)
    assert out.min() == pytest.approx(low, rel=1e-5) and out.max() == pytest.approx(high, rel=1e-5)


def test_variance_head_round_trips_and_is_part_of_the_head(tmp_path):
    x, _ = common.tiny_data()
    model = common.build("gru", head="variance")
    assert [layer.name for layer in models.head_layers(model)] == ["head", "head_variance"]
    assert sum(models.head_mask(model)) == 2
    model.save(tmp_path / "v.keras")
    loaded = keras.saving.load_model(tmp_path / "v.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    with pytest.raises(ValueError, match="`head` expected one of"):
        common.build("mlp", head="softmax")
    with pytest.raises(ValueError, match="`head` expected 'linear' with probabilistic"):
        common.build("mlp", head="variance", probabilistic=True)


def clustered_prices(n_days, seed=1, symbols=("AAA", "BBB")):
    """Prices whose log volatility is a persistent AR(1): HAR has something to find."""
    prices = make_prices(n_days, symbols, seed=seed)
    rng = np.random.default_rng(seed)
    for symbol in symbols:
        rows = prices.symbol == symbol
        log_vol = np.zeros(n_days)
        for t in range(1, n_days):
            log_vol[t] = 0.95 * log_vol[t - 1] + 0.3 * rng.normal()
        r = 0.01 * np.exp(log_vol) * rng.normal(size=n_days)
        close = 100 * np.exp(np.cumsum(r))
        scale = close / prices.loc[rows, "close"].to_numpy()
        for column in ("open", "high", "low", "close"):
            prices.loc[rows, column] *= scale
    return load_prices(prices)


def _har_windows(n_days=260):
    prices = clustered_prices(n_days)
    windows = make_windows(
        prices, 1, 1, models.HAR_FEATURES, "log_rv:squared_return", cumulative=True
    )
    return prices, windows


def test_har_trained_with_mse_matches_ols_of_the_log_har_regression():
    prices, windows = _har_windows()
    X, y = windows.X[:, 0].astype("float64"), windows.y.astype("float64")
    design = np.column_stack([np.ones(len(X)), X])
    ols, *_ = np.linalg.lstsq(design, y, rcond=None)
    # The HAR baseline in logs is the same regression on the same rows.
    baseline = HARRV(log=True).fit(prices, "variance", 1)
    assert baseline.n_samples_ == len(X)
    np.testing.assert_allclose(baseline.intercept_, ols[0], atol=1e-5)  # X, y are float32
    np.testing.assert_allclose(baseline.coef_, ols[1:].T, atol=1e-5)
    assert ols[1:].sum() > 0.3  # persistent volatility: a real regression
    # Keras, full batch, on standardized inputs (an affine map of the same regression).
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scaled = (X - mean) / scale
    scaled_ols, *_ = np.linalg.lstsq(np.column_stack([np.ones(len(X)), scaled]), y, rcond=None)
    model = models.build("har", (1, 3), 1, seed=0)
    # Full-batch gradient descent on a convex quadratic: converges geometrically.
    model.compile(optimizer=keras.optimizers.SGD(0.25), loss="mse")
    full_batch = tf.data.Dataset.from_tensors((scaled[:, None].astype("float32"), windows.y))
    model.fit(full_batch.repeat(1500), epochs=1, shuffle=False, verbose=0)  # 1500 full-batch steps
    kernel, bias = model.get_layer("head").get_weights()
    np.testing.assert_allclose(kernel[:, 0], scaled_ols[1:, 0], atol=1e-4)
    np.testing.assert_allclose(bias, scaled_ols[0], atol=1e-4)
    np.testing.assert_allclose(kernel[:, 0] / scale, ols[1:, 0], atol=1e-4)  # raw-unit slopes
    np.testing.assert_allclose(bias - kernel[:, 0] / scale @ mean, ols[0], atol=1e-3)
    fitted = model.predict(scaled[:, None].astype("float32"), verbose=0)
    np.testing.assert_allclose(fitted, design @ ols, atol=1e-4)


def test_harnet_starts_equal_to_har_and_learns_a_correction():
    _, windows = _har_windows(120)
    har = models.build("har", (1, 3), 1, seed=0)
    net = models.build("harnet", (1, 3), 1, seed=0, units=(8,))
    models.set_har_coefficients(net, [-1.0], [[0.2, 0.3, 0.4]])
    models.set_har_coefficients(har, [-1.0], [[0.2, 0.3, 0.4]])
    x = windows.X
    expected = -1.0 + x[:, 0] @ np.array([0.2, 0.3, 0.4], "float32")
    np.testing.assert_allclose(har.predict(x, verbose=0)[:, 0], expected, rtol=1e-5)
    np.testing.assert_allclose(net.predict(x, verbose=0), har.predict(x, verbose=0), rtol=1e-6)
    net.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    net.fit(x, windows.y, epochs=3, verbose=0)
    residual_kernel = net.get_layer("residual").get_weights()[0]
    assert np.abs(residual_kernel).max() > 0
    with pytest.raises(ValueError, match="`coef` expected shape \\(1, 3\\)"):
        models.set_har_coefficients(net, [0.0], [[1.0, 2.0]])


def test_har_reads_named_components_from_a_wider_window():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4, 6)).astype("float32")
    model = models.build("har", (4, 6), 1, feature_indices=[4, 1], seed=0)
    kernel, bias = model.get_layer("head").get_weights()
    np.testing.assert_allclose(
        model.predict(x, verbose=0), x[:, -1][:, [4, 1]] @ kernel + bias, rtol=1e-5
    )
    for bad in ([6], [1, 1], (), "x", [True]):
        with pytest.raises(ValueError, match="`feature_indices` expected distinct"):
            models.build("har", (4, 6), feature_indices=bad)


def test_log_har_baseline_forecasts_positive_bias_corrected_variances():
    prices, _ = _har_windows()
    smeared = HARRV(log=True).fit(prices, "variance", 1)
    plain = HARRV(log=True, bias_correction="none").fit(prices, "variance", 1)
    lognormal = HARRV(log=True, bias_correction="lognormal").fit(prices, "variance", 1)
    a, b, c = (m.predict(prices).iloc[:, 2].to_numpy() for m in (smeared, plain, lognormal))
    known = ~np.isnan(a)
    assert known.sum() == len(prices) - 2 * 22  # each symbol's first 22 rows lack history
    assert (a[known] > 0).all()
    np.testing.assert_allclose(a[known] / b[known], smeared.bias_factor_[0], rtol=1e-10)
    # Squared returns: the median forecast is far below the mean, lognormal over-corrects.
    assert 2.0 < smeared.bias_factor_[0] < lognormal.bias_factor_[0]
    truth = prices.groupby("symbol")["close"].transform(lambda c: np.log(c).diff().shift(-1) ** 2)
    rows = known & truth.notna().to_numpy()
    assert abs(np.mean(a[rows]) / truth[rows].mean() - 1) < 0.2
    assert smeared.feature_names_ == ("log_rv_d", "log_rv_w", "log_rv_m")
    with pytest.raises(
        ValueError, match="bias_correction expected one of .* Received: bias_correction='half'"
    ):
        HARRV(log=True, bias_correction="half").fit(prices, "variance", 1)
    assert pd.isna(a[0])
    assert math.isfinite(smeared.bias_factor_[0])


@pytest.mark.parametrize("trainer", ["MAML", "ANIL"])
def test_har_bases_meta_train_with_qlike(trainer):
    from metazoo import trainers
    from metazoo.data import TaskSet

    prices = clustered_prices(300, symbols=("AAA", "BBB", "CCC"))
    windows = make_windows(prices, 1, 1, models.HAR_FEATURES, "log_rv:squared_return")
    tasks = TaskSet.from_windows(windows, period="Q")
    base = models.build("harnet", (1, 3), 1, seed=0, units=(4,))
    models.set_har_coefficients(base, [-2.0], [[0.1, 0.3, 0.4]])
    learner = getattr(trainers, trainer)(base, inner_lr=1e-3, inner_steps=1)
    learner.compile(optimizer=keras.optimizers.Adam(1e-3), loss=models.QLIKE(log_true=True))
    batches = tasks.meta_batches(meta_batch_size=4, support_size=20, query_size=20, n_batches=3)
    history = learner.fit(batches, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    task, support, query = next(tasks.episodes(support_size=20))
    adapted = learner.adapt(support.X, support.y, steps=3)
    loss = models.QLIKE(log_true=True)
    assert float(loss(support.y, adapted.predict(support.X, verbose=0))) <= float(
        loss(support.y, learner.model.predict(support.X, verbose=0))
    )
