"""Tests of the synthetic task families: shapes, reproducibility, and their known ground truth."""

import numpy as np
import pytest
import tensorflow as tf

from metazoo.data import episodes
from metazoo.data.episodes import MetaBatch, check_meta_batch
from metazoo.data.synthetic import (
    ARTasks,
    RegimeSwitchingTasks,
    SinusoidTasks,
    pacf_to_ar,
    series_episodes,
)

FAMILIES = [
    pytest.param(SinusoidTasks, {}, (1,), id="sinusoid"),
    pytest.param(ARTasks, {"order": 3, "lookback": 5, "burn_in": 20}, (5, 1), id="ar"),
    pytest.param(RegimeSwitchingTasks, {"lookback": 7}, (7, 1), id="regime"),
]


@pytest.mark.parametrize(("family", "kwargs", "x_shape"), FAMILIES)
def test_shapes_and_dtypes(family, kwargs, x_shape):
    batch, params = family(**kwargs).sample(3, 4, 6, seed=0, return_params=True)

    assert isinstance(batch, MetaBatch)
    assert batch.support_x.shape == (3, 4, *x_shape)
    assert batch.support_y.shape == (3, 4, 1)
    assert batch.query_x.shape == (3, 6, *x_shape)
    assert batch.query_y.shape == (3, 6, 1)
    assert all(part.dtype == np.float32 for part in batch)
    for part, checked in zip(batch, check_meta_batch(batch), strict=True):
        np.testing.assert_array_equal(part, checked)
    assert params and all(np.shape(value)[0] == 3 for value in params.values())


@pytest.mark.parametrize(("family", "kwargs", "x_shape"), FAMILIES)
def test_same_seed_same_batch_and_other_seed_differs(family, kwargs, x_shape):
    tasks = family(**kwargs)
    first = tasks.sample(2, 5, 5, seed=7)
    again = tasks.sample(2, 5, 5, rng=np.random.default_rng(7))
    other = tasks.sample(2, 5, 5, seed=8)

    for part, repeated, different in zip(first, again, other, strict=True):
        np.testing.assert_array_equal(part, repeated)
        assert not np.array_equal(part, different)


@pytest.mark.parametrize(("family", "kwargs", "x_shape"), FAMILIES)
def test_dataset_is_reproducible(family, kwargs, x_shape):
    tasks = family(**kwargs)
    dataset = tasks.dataset(2, 3, 4, n_batches=2, seed=1)

    shapes = [tuple(spec.shape) for spec in dataset.element_spec]
    assert shapes == [(2, 3, *x_shape), (2, 3, 1), (2, 4, *x_shape), (2, 4, 1)]
    first = list(dataset.as_numpy_iterator())
    again = list(tasks.dataset(2, 3, 4, n_batches=2, seed=1).as_numpy_iterator())
    other = list(tasks.dataset(2, 3, 4, n_batches=2, seed=2).as_numpy_iterator())
    assert len(first) == 2
    for batch, repeated, different in zip(first, again, other, strict=True):
        for part, part_again, part_other in zip(batch, repeated, different, strict=True):
            np.testing.assert_array_equal(part, part_again)
            assert not np.array_equal(part, part_other)


@pytest.mark.parametrize(("family", "kwargs", "x_shape"), FAMILIES)
def test_dataset_draws_what_sample_draws_across_chunks(family, kwargs, x_shape, monkeypatch):
    # Batches are drawn a chunk at a time; each pass must still yield exactly the batches
    # that successive `sample` calls on the generator of (seed, pass) give, whatever the chunk.
    monkeypatch.setattr(episodes, "_CHUNK_BATCHES", 3)
    tasks = family(**kwargs)
    dataset = tasks.dataset(2, 3, 4, n_batches=7, seed=5)
    for pass_ in range(2):
        rng = np.random.default_rng([5, pass_])
        expected = [tasks.sample(2, 3, 4, rng=rng) for _ in range(7)]
        received = list(dataset.as_numpy_iterator())
        assert len(received) == 7
        for batch, reference in zip(received, expected, strict=True):
            for part, want in zip(batch, reference, strict=True):
                assert part.dtype == np.float32
                np.testing.assert_array_equal(part, want)


def test_stream_refuses_a_batch_whose_shapes_change():
    calls = [0]

    def sample(rng):
        calls[0] += 1
        size = 3 if calls[0] < 4 else 2  # the example and two batches, then a shorter one
        return SinusoidTasks().sample(2, size, 3, rng=rng)

    dataset = episodes.meta_batch_dataset(sample, n_batches=5, seed=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected the shapes of its first"):
        list(dataset)


def test_repr_shows_parameters():
    assert repr(ARTasks(order=3)) == (
        "ARTasks(order=3, lookback=3, noise_std=1.0, max_pacf=0.9, burn_in=100, unit_variance=False)"
    )
    assert "amplitude_range=(0.1, 5.0)" in repr(SinusoidTasks())
    assert "target='return'" in repr(RegimeSwitchingTasks(target="return"))


def test_sinusoid_follows_its_formula_within_ranges():
    tasks = SinusoidTasks(amplitude_range=(1.0, 2.0), phase_range=(0.5, 1.0), x_range=(-1.0, 3.0))
    batch, params = tasks.sample(50, 10, 20, seed=0, return_params=True)

    amplitude, phase = params["amplitude"], params["phase"]
    assert amplitude.shape == phase.shape == (50,)
    assert np.all((amplitude >= 1.0) & (amplitude <= 2.0))
    assert np.all((phase >= 0.5) & (phase <= 1.0))
    for x, y in [(batch.support_x, batch.support_y), (batch.query_x, batch.query_y)]:
        assert np.all((x >= -1.0) & (x <= 3.0))
        expected = amplitude[:, None, None] * np.sin(x - phase[:, None, None])
        np.testing.assert_allclose(y, expected, atol=1e-5)


def test_sinusoid_noise_has_the_given_scale():
    batch, params = SinusoidTasks(noise_std=0.1).sample(20, 500, 1, seed=0, return_params=True)

    clean = params["amplitude"][:, None, None] * np.sin(
        batch.support_x - params["phase"][:, None, None]
    )
    assert np.std(batch.support_y - clean) == pytest.approx(0.1, rel=0.05)


def test_pacf_to_ar_matches_known_low_orders():
    np.testing.assert_allclose(pacf_to_ar([[0.5]]), [[0.5]])
    np.testing.assert_allclose(pacf_to_ar([[0.5, -0.4]]), [[0.5 * 1.4, -0.4]])


def test_ar_processes_are_stationary():
    _, params = ARTasks(order=4, max_pacf=0.99).sample(200, 1, 1, seed=0, return_params=True)

    coefficients = params["coefficients"]
    assert coefficients.shape == (200, 4)
    for phi in coefficients:
        # Roots of 1 - phi_1 z - ... - phi_p z^p, highest power first for numpy.roots.
        roots = np.roots(np.concatenate([-phi[::-1], [1.0]]))
        assert np.all(np.abs(roots) > 1.0)


def test_ar_bayes_predictor_reaches_the_noise_variance():
    tasks = ARTasks(order=3, lookback=6, noise_std=0.5)
    batch, params = tasks.sample(16, 2000, 2000, seed=0, return_params=True)

    np.testing.assert_allclose(params["bayes_mse"], np.full(16, 0.25))
    for x, y in [(batch.support_x, batch.support_y), (batch.query_x, batch.query_y)]:
        forecast = ARTasks.bayes_predict(x, params["coefficients"])
        assert forecast.shape == y.shape
        assert np.mean((forecast - y) ** 2) == pytest.approx(0.25, rel=0.1)


@pytest.mark.parametrize(
    "tasks", [ARTasks(order=2, lookback=4), RegimeSwitchingTasks(lookback=4, target="return")]
)
def test_windows_of_consecutive_origins_agree_with_targets(tasks):
    batch = tasks.sample(3, 6, 5, seed=0)

    for x, y in [(batch.support_x, batch.support_y), (batch.query_x, batch.query_y)]:
        np.testing.assert_array_equal(x[:, 1:, -1, 0], y[:, :-1, 0])
        np.testing.assert_array_equal(x[:, 1:, :-1], x[:, :-1, 1:])


def test_series_episodes_puts_query_after_support_targets():
    series = np.arange(30)[None, :]

    support_x, support_y, query_x, query_y = series_episodes(series, 3, 4, 2)

    np.testing.assert_array_equal(
        support_x[0, :, :, 0], [[18, 19, 20], [19, 20, 21], [20, 21, 22], [21, 22, 23]]
    )
    np.testing.assert_array_equal(support_y[0, :, 0], [21, 22, 23, 24])
    np.testing.assert_array_equal(query_x[0, :, :, 0], [[25, 26, 27], [26, 27, 28]])
    np.testing.assert_array_equal(query_y[0, :, 0], [28, 29])
    assert query_x.min() > support_y.max()


def test_regime_parameters_bound_the_true_variance():
    tasks = RegimeSwitchingTasks(stay_prob=(0.9, 0.95))
    batch, params = tasks.sample(8, 20, 50, seed=0, return_params=True)

    low, high = params["sigma_low"][:, None] ** 2, params["sigma_high"][:, None] ** 2
    assert np.all(low > 0) and np.all(high > 0)
    assert np.all((params["sigma_low"] >= 0.008) & (params["sigma_low"] <= 0.0125))
    for stay in (params["stay_low"], params["stay_high"]):
        assert np.all((stay >= 0.9) & (stay <= 0.95))
    assert params["true_variance"].shape == (8, 50)
    assert np.all(params["true_variance"] >= np.minimum(low, high))
    assert np.all(params["true_variance"] <= np.maximum(low, high))
    assert np.all(batch.support_y >= 0) and np.all(batch.query_y >= 0)


def test_regime_targets_average_to_the_true_variance_in_each_regime():
    tasks = RegimeSwitchingTasks(lookback=5)
    batch, params = tasks.sample(64, 1, 2000, seed=0, return_params=True)

    y, truth, regime = batch.query_y[..., 0], params["true_variance"], params["query_regime"]
    assert np.mean(y) == pytest.approx(np.mean(truth), rel=0.05)
    for state in (0, 1):
        chosen = regime == state
        assert np.mean(y[chosen]) == pytest.approx(np.mean(truth[chosen]), rel=0.05)


def test_regime_return_target_squares_to_variance_target():
    variance = RegimeSwitchingTasks(target="variance").sample(4, 6, 8, seed=3)
    returns = RegimeSwitchingTasks(target="return").sample(4, 6, 8, seed=3)

    np.testing.assert_array_equal(variance.support_x, returns.support_x)
    np.testing.assert_array_equal(variance.query_x, returns.query_x)
    np.testing.assert_allclose(returns.support_y**2, variance.support_y, rtol=1e-5)
    np.testing.assert_allclose(returns.query_y**2, variance.query_y, rtol=1e-5)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: SinusoidTasks(amplitude_range=(5.0, 0.1)),
            r"amplitude_range expected a pair \(low, high\) of finite numbers with 0 <= low <= high\. "
            r"Received: amplitude_range=\(5\.0, 0\.1\)",
        ),
        (
            lambda: SinusoidTasks(amplitude_range=(-1.0, 1.0)),
            "amplitude_range expected .* with 0 <= low <= high",
        ),
        (lambda: SinusoidTasks(x_range=(1.0, 2.0, 3.0)), r"x_range expected a pair \(low, high\)"),
        (
            lambda: SinusoidTasks(phase_range=(0.0, np.inf)),
            r"phase_range expected a pair \(low, high\) of finite",
        ),
        (
            lambda: SinusoidTasks(noise_std=-0.1),
            "noise_std expected a finite number >= 0. Received: noise_std=-0.1",
        ),
        (lambda: ARTasks(order=0), r"order expected an integer >= 1. Received: order=0"),
        (lambda: ARTasks(order=2.0), r"order expected an integer >= 1. Received: order=2\.0"),
        (lambda: ARTasks(order=3, lookback=2), "lookback expected an integer >= order"),
        (lambda: ARTasks(max_pacf=1.0), r"max_pacf expected a finite number in \(0, 1\)"),
        (lambda: ARTasks(max_pacf=0.0), r"max_pacf expected a finite number in \(0, 1\)"),
        (lambda: ARTasks(noise_std=0.0), "noise_std expected a finite number > 0"),
        (lambda: ARTasks(burn_in=-1), "burn_in expected an integer >= 0"),
        (lambda: RegimeSwitchingTasks(vol_low=0.0), "vol_low expected a finite number > 0"),
        (
            lambda: RegimeSwitchingTasks(vol_low=0.03, vol_high=0.01),
            "vol_high expected a finite number >= vol_low",
        ),
        (lambda: RegimeSwitchingTasks(stay_prob=(0.9, 1.0)), r"stay_prob expected bounds strictly"),
        (lambda: RegimeSwitchingTasks(stay_prob=(0.0, 0.5)), r"stay_prob expected bounds strictly"),
        (
            lambda: RegimeSwitchingTasks(stay_prob=(0.99, 0.95)),
            "stay_prob expected a pair .* with low <= high",
        ),
        (lambda: RegimeSwitchingTasks(lookback=0), "lookback expected an integer >= 1"),
        (lambda: RegimeSwitchingTasks(target="vol"), "target expected one of"),
    ],
)
def test_bad_parameters_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda t: t.sample(0, 4, 4), "n_tasks expected an integer >= 1. Received: n_tasks=0"),
        (lambda t: t.sample(2, 0, 4), "support_size expected an integer >= 1"),
        (lambda t: t.sample(2, 4, 0), "query_size expected an integer >= 1"),
        (lambda t: t.sample(2, 4, 4, seed=1, rng=np.random.default_rng(1)), "at most one"),
        (lambda t: t.dataset(0, 4, 4), "meta_batch_size expected an integer >= 1"),
    ],
)
def test_bad_sample_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call(ARTasks())


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="lookback >= order"):
        ARTasks.bayes_predict(np.zeros((2, 3, 2, 1)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="n_steps >= 12"):
        series_episodes(np.zeros((2, 11)), 3, 4, 2)


def test_ar_unit_variance_scales_to_the_stationary_variance_and_keeps_bayes_error_exact():
    family = ARTasks(order=2, noise_std=2.0, max_pacf=0.9, unit_variance=True)
    batch, params = family.sample(40, 10, 2000, seed=0, return_params=True)
    expected = np.prod(1 - params["pacf"] ** 2, axis=1)
    np.testing.assert_allclose(params["bayes_mse"], expected)
    variance = batch.query_y[..., 0].var(axis=1)
    assert np.abs(variance.mean() - 1.0) < 0.05
    errors = (ARTasks.bayes_predict(batch.query_x, params["coefficients"]) - batch.query_y) ** 2
    ratio = errors[..., 0].mean(axis=1) / params["bayes_mse"]
    assert np.abs(ratio.mean() - 1.0) < 0.05
