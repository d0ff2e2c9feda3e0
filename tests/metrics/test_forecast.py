"""Tests for the forecast metrics in metazoo.metrics.forecast."""

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import r2_score

from metazoo.metrics import SCORERS, get_scorer, hit_rate, ic, mae, mse, rank_ic

TRUE = np.array([1.0, -2.0, 3.0, 0.0])
PRED = np.array([2.0, -1.0, -1.0, 0.0])  # errors 1, 1, -4, 0


def test_mse_and_mae_by_hand():
    assert mse(TRUE, PRED) == pytest.approx(4.5)  # (1 + 1 + 16 + 0) / 4
    assert mae(TRUE, PRED) == pytest.approx(1.5)  # (1 + 1 + 4 + 0) / 4


def test_metrics_flatten_any_shape():
    assert mse(TRUE.reshape(2, 2), PRED.reshape(2, 2)) == pytest.approx(4.5)
    assert mae(TRUE.reshape(2, 1, 2), PRED.reshape(2, 1, 2)) == pytest.approx(1.5)
    assert mse([[0.5]], [[1.0]]) == pytest.approx(0.25)


def test_hit_rate_by_hand():
    # signs: true (+, -, +, 0), pred (+, -, -, 0): hit, hit, miss, and no call (not counted)
    assert hit_rate(TRUE, PRED) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "expected"),
    [
        ([1.0, -1.0, 2.0], [0.0, 0.0, 1.0], 1.0),  # a zero forecast calls no direction
        ([0.0, 0.0], [0.1, -0.1], 0.0),  # no move to call
        ([0.0, 2.0], [0.0, 3.0], 1.0),  # only called directions count
        ([0.5, -0.5, 0.2, 0.1], [1.0, 1.0, 1.0, -1.0], 0.5),
    ],
)
def test_hit_rate_zero_rule(y_true, y_pred, expected):
    assert hit_rate(y_true, y_pred) == pytest.approx(expected)


def test_hit_rate_of_a_forecast_that_calls_no_direction_is_undefined():
    assert np.isnan(hit_rate([0.01, -0.02, 0.0], [0.0, 0.0, 0.0]))


def test_ic_by_hand():
    # centered: (-1.5, -.5, .5, 1.5) and (-1.5, .5, -.5, 1.5): 4 / sqrt(5 * 5)
    assert ic([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # centered: (-1, 0, 1) and (-7/3, -1/3, 8/3): 5 / sqrt(2 * 114 / 9) = 15 / sqrt(228)
    assert ic([1, 2, 3], [2, 4, 7]) == pytest.approx(0.9933992677987828)
    assert ic([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_rank_ic_by_hand():
    assert rank_ic([1, 2, 3, 4], [1, 8, 27, 64]) == pytest.approx(1.0)
    assert ic([1, 2, 3, 4], [1, 8, 27, 64]) < 0.99
    assert rank_ic([4, 3, 2, 1], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(-1.0)


def test_rank_ic_ties_get_average_ranks():
    # ranks (1, 2.5, 2.5, 4) and (1, 2, 3, 4): 4.5 / sqrt(4.5 * 5) = 3 / sqrt(10)
    assert rank_ic([1, 2, 2, 3], [10, 20, 30, 40]) == pytest.approx(0.9486832980505138)
    # ranks (1.5, 1.5, 3.5, 3.5) and (2, 2, 2, 4): 2 / sqrt(4 * 3) = 1 / sqrt(3)
    assert rank_ic([1, 1, 2, 2], [5, 5, 5, 6]) == pytest.approx(0.5773502691896258)


def test_rank_ic_matches_spearman_with_many_ties():
    rng = np.random.default_rng(0)
    y_true = np.round(rng.normal(size=(40, 3)), 1)
    y_pred = np.round(y_true + rng.normal(size=(40, 3)), 0)
    expected = stats.spearmanr(y_true.ravel(), y_pred.ravel()).statistic
    assert rank_ic(y_true, y_pred) == pytest.approx(expected)


@pytest.mark.parametrize("metric", [ic, rank_ic])
def test_constant_input_gives_nan(metric):
    assert np.isnan(metric([1.0, 2.0, 3.0], [0.1, 0.1, 0.1]))
    assert np.isnan(metric([0.3, 0.3], [1.0, 2.0]))
    assert np.isnan(metric([1.0], [2.0]))


@pytest.mark.parametrize("metric", [mse, mae, hit_rate, ic, rank_ic])
def test_shape_mismatch_is_refused(metric):
    with pytest.raises(ValueError, match=r"same shape. Received: y_true.shape=\(4,\), y_pred"):
        metric(np.zeros(4), np.zeros((4, 1)))


@pytest.mark.parametrize("metric", [mse, mae, hit_rate, ic, rank_ic])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_is_refused(metric, bad):
    with pytest.raises(ValueError, match=r"finite values. Received: 1 NaN or infinite.*y_pred"):
        metric([1.0, 2.0, 3.0], [1.0, bad, 2.0])
    with pytest.raises(ValueError, match=r"Received: 1 NaN or infinite value\(s\) in y_true"):
        metric([bad, 2.0, 3.0], [1.0, 0.0, 2.0])


def test_empty_input_is_refused():
    with pytest.raises(ValueError, match=r"at least one value. Received: shape=\(0,\)"):
        mse([], [])


def test_scorers_and_directions():
    assert {name: direction for name, (_, direction) in SCORERS.items()} == {
        "mse": False,
        "mae": False,
        "hit_rate": True,
        "directional_accuracy": True,
        "ic": True,
        "rank_ic": True,
    }
    assert SCORERS["directional_accuracy"][0] is hit_rate
    with pytest.raises(TypeError):
        SCORERS["new"] = (mse, False)


def test_get_scorer_by_name():
    assert get_scorer("mse") == (mse, False, "mse")
    assert get_scorer("rank_ic", greater_is_better=True) == (rank_ic, True, "rank_ic")
    assert get_scorer("directional_accuracy") == (hit_rate, True, "directional_accuracy")


def test_get_scorer_for_a_callable():
    assert get_scorer(r2_score) == (r2_score, True, "r2_score")
    assert get_scorer(mse, greater_is_better=False) == (mse, False, "mse")


def test_get_scorer_errors():
    with pytest.raises(ValueError, match=r"Unknown scoring; use one of .*'mse'.*scoring='r2'"):
        get_scorer("r2")
    with pytest.raises(ValueError, match=r"greater_is_better is False. Received: greater_"):
        get_scorer("mse", greater_is_better=True)
    with pytest.raises(ValueError, match=r"a name in .* or a callable.*Received: scoring=3"):
        get_scorer(3)
