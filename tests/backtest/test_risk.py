"""VaR, expected shortfall and their tests from variance forecasts; volatility targeting."""

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from metazoo.backtest import (
    christoffersen_test,
    expected_shortfall,
    inverse_vol_positions,
    value_at_risk,
    var_from_variance,
    var_tests,
    vol_target_backtest,
    vol_target_positions,
    vol_tracking,
)
from metazoo.metrics import kupiec_pof


def test_var_and_expected_shortfall_from_a_variance_forecast():
    assert var_from_variance(4e-4, 0.05) == pytest.approx(0.02 * 1.6448536, rel=1e-6)
    assert var_from_variance(4e-4, 0.01, "t", 5) == pytest.approx(
        value_at_risk(0.02, 0.01, "t", 5), rel=1e-12
    )
    # Normal ES: sigma * pdf(z) / alpha.
    assert expected_shortfall(4e-4, 0.05) == pytest.approx(0.02 * 0.1031356 / 0.05, rel=1e-5)
    # t ES against a numerical integral of the unit-variance t's lower tail.
    n, alpha, sigma = 5, 0.01, 0.02
    scale = sigma * np.sqrt((n - 2) / n)
    q = stats.t.ppf(alpha, n) * scale
    tail, _ = integrate.quad(lambda x: x * stats.t.pdf(x / scale, n) / scale, -np.inf, q)
    assert expected_shortfall(sigma**2, alpha, "t", n) == pytest.approx(-tail / alpha, rel=1e-6)
    es = expected_shortfall(np.array([1e-4, 4e-4, np.nan]), 0.01)
    assert (es[:2] > var_from_variance(np.array([1e-4, 4e-4]), 0.01)).all() and np.isnan(es[2])
    with pytest.raises(ValueError, match="`variance_forecast` expected variances >= 0"):
        var_from_variance(-1e-4)


def test_christoffersen_by_hand():
    # Transitions of 0001110000: n00 = 5, n01 = 1, n10 = 1, n11 = 2.
    hits = np.array([0, 0, 0, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    result = christoffersen_test(hits, alpha=0.1)
    assert (result["n00"], result["n01"], result["n10"], result["n11"]) == (5, 1, 1, 2)
    p01, p11, p = 1 / 6, 2 / 3, 3 / 9
    best = 5 * np.log(1 - p01) + np.log(p01) + np.log(1 - p11) + 2 * np.log(p11)
    lr_ind = -2 * (6 * np.log(1 - p) + 3 * np.log(p) - best)
    lr_cc = -2 * (6 * np.log(0.9) + 3 * np.log(0.1) - best)
    assert result["lr_ind"] == pytest.approx(lr_ind, rel=1e-12)
    assert result["p_value_ind"] == pytest.approx(stats.chi2.sf(lr_ind, 1), rel=1e-12)
    assert result["lr_cc"] == pytest.approx(lr_cc, rel=1e-12)
    assert result["p_value_cc"] == pytest.approx(stats.chi2.sf(lr_cc, 2), rel=1e-12)
    # LR_cc is Kupiec's LR on hits[1:] plus LR_ind.
    kupiec, _ = kupiec_pof(int(hits[1:].sum()), len(hits) - 1, 0.1)
    assert result["lr_cc"] == pytest.approx(kupiec + result["lr_ind"], rel=1e-10)
    # Breaches that do not cluster: p01 = p11, LR_ind = 0.
    even = christoffersen_test(np.array([0, 0, 1, 1, 0, 0, 0, 1, 0, 0]), alpha=0.3)
    assert even["lr_ind"] == pytest.approx(0.0, abs=1e-12) and even["p_value_ind"] == 1.0
    # No breach at all: finite statistics (0 log 0 = 0).
    none = christoffersen_test(np.zeros(50, dtype=bool), alpha=0.01)
    assert none["lr_ind"] == 0.0 and np.isfinite(none["lr_cc"])
    with pytest.raises(ValueError, match="`breaches` expected"):
        christoffersen_test(np.array([0.5, 1.0]), 0.1)
    with pytest.raises(
        ValueError, match=r"alpha expected a finite number in \(0, 1\). Received: alpha=1.5"
    ):
        christoffersen_test(hits, 1.5)


def test_var_tests_reject_a_too_low_and_clustered_var():
    rng = np.random.default_rng(0)
    n = 2000
    sigma = np.where((np.arange(n) // 50) % 10 == 0, 0.05, 0.01)  # rare stormy stretches
    returns = pd.Series(rng.normal(size=n) * sigma, index=pd.bdate_range("2010-01-04", periods=n))
    good = var_tests(returns, pd.Series(var_from_variance(sigma**2, 0.05), returns.index), 0.05)
    flat = var_tests(
        returns, pd.Series(var_from_variance(np.mean(sigma**2), 0.05), returns.index), 0.05
    )
    assert good["p_value"] > 0.01 and good["p_value_cc"] > 0.01
    assert flat["p_value_ind"] < 1e-3  # a constant VaR breaches in the stormy stretches
    assert {"lr", "p_value", "lr_ind", "lr_cc", "n_obs"} <= set(good)


DATES = pd.bdate_range("2021-01-04", periods=4)


def test_vol_target_positions_by_hand():
    variance = pd.DataFrame({"A": [1e-4, 4e-4, np.nan, 0.0]}, index=DATES)
    positions = vol_target_positions(variance, target_vol=0.10, max_leverage=2.0)
    expected = [0.10 / (0.01 * np.sqrt(252)), 0.10 / (0.02 * np.sqrt(252)), 0.0, 2.0]
    np.testing.assert_allclose(positions["A"], expected, rtol=1e-12)
    with pytest.raises(ValueError, match="`variance_forecasts` expected finite variances"):
        vol_target_positions(-variance)
    with pytest.raises(
        ValueError, match="target_vol expected a finite number > 0. Received: target_vol=0"
    ):
        vol_target_positions(variance, target_vol=0)


def test_inverse_vol_positions_by_hand():
    variance = pd.DataFrame({"A": [1e-4, 1e-4], "B": [4e-4, np.nan]}, index=DATES[:2])
    positions = inverse_vol_positions(variance, target_vol=0.10, max_leverage=10.0)
    s_a, s_b = 0.01 * np.sqrt(252), 0.02 * np.sqrt(252)
    w = np.array([1 / s_a, 1 / s_b]) / (1 / s_a + 1 / s_b)  # 2/3, 1/3
    book = np.sqrt(w[0] ** 2 * s_a**2 + w[1] ** 2 * s_b**2)
    np.testing.assert_allclose(positions.iloc[0], w * 0.10 / book, rtol=1e-12)
    # Equal risk from each asset: position x sigma is the same.
    assert positions.iloc[0, 0] * s_a == pytest.approx(positions.iloc[0, 1] * s_b)
    np.testing.assert_allclose(positions.iloc[1], [0.10 / s_a, 0.0], rtol=1e-12)
    capped = inverse_vol_positions(variance, target_vol=0.10, max_leverage=0.5)
    assert capped.sum(axis=1).max() == pytest.approx(0.5)


def test_vol_tracking_by_hand_and_a_true_forecast_tracks_the_target():
    returns = np.tile([0.01, -0.01], 50)  # annualized vol 0.01 * sqrt(252)
    tracking = vol_tracking(returns, target_vol=0.01 * np.sqrt(252), window=10)
    assert tracking["vol_ratio"] == pytest.approx(1.0)
    assert tracking["mean_abs_log_ratio"] == pytest.approx(0.0, abs=1e-12)
    assert tracking["within_20pct"] == 1.0
    rng = np.random.default_rng(1)
    n = 1500
    dates = pd.bdate_range("2012-01-02", periods=n)
    sigma = 0.01 * np.exp(np.sin(np.arange(n) / 80))  # slowly moving volatility
    forward = pd.DataFrame({"A": rng.normal(size=n) * sigma}, index=dates)
    true = pd.DataFrame({"A": sigma**2}, index=dates)
    flat = pd.DataFrame({"A": np.full(n, np.mean(sigma**2))}, index=dates)
    _, good = vol_target_backtest(true, forward, target_vol=0.10, cost_bps=5)
    _, bad = vol_target_backtest(flat, forward, target_vol=0.10, cost_bps=5)
    assert good.loc["A", "vol_ratio"] == pytest.approx(1.0, abs=0.06)
    assert good.loc["A", "mean_abs_log_ratio"] < bad.loc["A", "mean_abs_log_ratio"]
    assert good.loc["A", "within_20pct"] > bad.loc["A", "within_20pct"]
    result, book = vol_target_backtest(
        pd.concat([true, true.rename(columns={"A": "B"})], axis=1),
        pd.concat([forward, forward.rename(columns={"A": "B"}) * -1], axis=1),
        target_vol=0.10,
        cost_bps=5,
        portfolio=True,
    )
    assert result.costs.sum() > 0  # net of costs
    assert book["realized_vol"] < 0.05  # perfectly anti-correlated assets cancel out
