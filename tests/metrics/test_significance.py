import numpy as np
import pandas as pd
import pytest
from scipy import stats

from metazoo.metrics import (
    diebold_mariano,
    model_confidence_set,
    newey_west_bandwidth,
    qlike,
    qlike_losses,
)

LOSS_A = np.array([1.0, 0.5, 2.0, 0.3, 0.0, 1.5, 0.2, 0.8])
LOSS_B = np.array([1.5, 1.0, 1.0, 1.3, 0.5, 1.0, 1.2, 1.8])


def _hand_dm(d, lags):
    n = len(d)
    c = d - d.mean()
    gammas = [sum(c[t] * c[t - j] for t in range(j, n)) / n for j in range(lags + 1)]
    lrv = gammas[0] + 2 * sum((1 - j / (lags + 1)) * gammas[j] for j in range(1, lags + 1))
    return d.mean() / np.sqrt(lrv / n), lrv


@pytest.mark.parametrize("horizon", [1, 2, 3])
def test_diebold_mariano_matches_a_hand_computation(horizon):
    d = LOSS_A - LOSS_B
    statistic, lrv = _hand_dm(d, horizon - 1)
    result = diebold_mariano(LOSS_A, LOSS_B, horizon=horizon)
    assert result["bandwidth"] == horizon - 1
    assert result["long_run_variance"] == pytest.approx(lrv, rel=1e-12)
    assert result["statistic"] == pytest.approx(statistic, rel=1e-12)
    assert result["mean_difference"] == pytest.approx(-0.375)  # (6.3 - 9.3) / 8
    assert result["p_value"] == pytest.approx(2 * stats.norm.sf(abs(statistic)), rel=1e-12)
    less = diebold_mariano(LOSS_A, LOSS_B, horizon=horizon, alternative="less")
    assert less["p_value"] == pytest.approx(stats.norm.cdf(statistic), rel=1e-12)
    assert less["p_value"] < 0.5 < diebold_mariano(LOSS_A, LOSS_B, horizon, "greater")["p_value"]
    # The one-sided p-values of the two orders add up to 1.
    swapped = diebold_mariano(LOSS_B, LOSS_A, horizon=horizon, alternative="less")
    assert swapped["p_value"] + less["p_value"] == pytest.approx(1.0)


def test_diebold_mariano_small_sample_correction_and_bandwidths():
    n, h = len(LOSS_A), 2
    statistic, _ = _hand_dm(LOSS_A - LOSS_B, 1)
    corrected = statistic * np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    result = diebold_mariano(LOSS_A, LOSS_B, horizon=h, alternative="less", small_sample=True)
    assert result["statistic"] == pytest.approx(corrected, rel=1e-12)
    assert result["p_value"] == pytest.approx(stats.t.cdf(corrected, n - 1), rel=1e-12)
    assert newey_west_bandwidth(100) == 4 and newey_west_bandwidth(1000) == 6
    rule = diebold_mariano(LOSS_A, LOSS_B, bandwidth="newey-west")
    assert rule["bandwidth"] == newey_west_bandwidth(8) == 2
    assert diebold_mariano(LOSS_A, LOSS_A)["statistic"] == 0.0
    assert diebold_mariano(LOSS_A, LOSS_A)["p_value"] == 1.0


def test_diebold_mariano_detects_a_real_difference_and_not_noise():
    rng = np.random.default_rng(0)
    base = rng.exponential(size=2000)
    better = base * 0.9 + rng.normal(0, 0.05, 2000)
    assert diebold_mariano(better, base, alternative="less")["p_value"] < 1e-6
    rejections = sum(
        diebold_mariano(rng.exponential(size=300), rng.exponential(size=300), alternative="less")[
            "p_value"
        ]
        < 0.05
        for _ in range(200)
    )
    assert rejections < 25  # about 5% of 200 under the null


def test_diebold_mariano_refuses_bad_input():
    with pytest.raises(ValueError, match="`loss_b` expected the shape"):
        diebold_mariano(LOSS_A, LOSS_B[:-1])
    with pytest.raises(ValueError, match="`loss_a` expected a 1-D array"):
        diebold_mariano(np.r_[LOSS_A[:-1], np.nan], LOSS_B)
    with pytest.raises(
        ValueError, match="alternative expected one of .* Received: alternative='lower'"
    ):
        diebold_mariano(LOSS_A, LOSS_B, alternative="lower")
    with pytest.raises(ValueError, match="`bandwidth` expected"):
        diebold_mariano(LOSS_A, LOSS_B, bandwidth=-1)
    with pytest.raises(ValueError, match="horizon expected an integer >= 1. Received: horizon=0"):
        diebold_mariano(LOSS_A, LOSS_B, horizon=0)


def test_model_confidence_set_keeps_the_best_and_drops_the_clearly_worse():
    rng = np.random.default_rng(1)
    n = 500
    common = rng.exponential(size=n)
    losses = pd.DataFrame(
        {
            "good": common + rng.normal(0, 0.1, n),
            "as_good": common + rng.normal(0, 0.1, n),
            "bad": common + 0.5 + rng.normal(0, 0.1, n),
        }
    )
    result = model_confidence_set(losses, size=0.1, reps=200, seed=3)
    assert list(result.index) == ["good", "as_good", "bad"]
    assert result.loc["good", "included"] and result.loc["as_good", "included"]
    assert not result.loc["bad", "included"]
    assert result.loc["bad", "p_value"] < 0.1
    again = model_confidence_set(losses, size=0.1, reps=200, seed=3)
    pd.testing.assert_frame_equal(result, again)
    with pytest.raises(TypeError, match="`losses` expected a DataFrame"):
        model_confidence_set(losses.to_numpy())
    with pytest.raises(
        ValueError, match=r"size expected a finite number in \(0, 1\). Received: size=90"
    ):
        model_confidence_set(losses, size=90)


def test_qlike_losses_average_to_qlike():
    v = np.array([1e-4, 0.0, 4e-4])
    h = np.array([2e-4, 1e-4, 4e-4])
    np.testing.assert_allclose(qlike_losses(v, h).mean(), qlike(v, h), rtol=1e-12)
    assert qlike_losses(v, h)[2] == 0.0
    with pytest.raises(ValueError, match="`var_pred` expected forecasts > 0"):
        qlike_losses(v, -h)
