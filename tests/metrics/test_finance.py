"""Tests for the financial metrics in metazoo.metrics.finance, against hand-computed values."""

import math

import numpy as np
import pandas as pd
import pytest

from metazoo.metrics import (
    annualized_return,
    annualized_volatility,
    ic_by_period,
    icir,
    kupiec_pof,
    max_drawdown,
    qlike,
    sharpe_ratio,
    strategy_summary,
    turnover,
    var_breaches,
    var_report,
)


def test_qlike_is_zero_for_a_perfect_forecast():
    assert qlike([1.0, 2.0, 1e-4], [1.0, 2.0, 1e-4]) == pytest.approx(0.0, abs=1e-15)


def test_qlike_by_hand():
    # v/h = 2: 2 - ln 2 - 1 = 1 - ln 2
    assert qlike([2.0], [1.0]) == pytest.approx(1 - math.log(2))
    # (0.5 - ln 0.5 - 1) + (2 - ln 2 - 1) = 0.5, mean 0.25
    assert qlike([1.0, 4.0], [2.0, 2.0]) == pytest.approx(0.25)
    # under-forecasting by a factor 2 costs more than over-forecasting by 2
    assert qlike([2.0], [1.0]) > qlike([1.0], [2.0])


def test_qlike_floors_zero_realized_variance():
    # v = 0 -> floor 1e-12; ratio 1e-8: 1e-8 - ln(1e-8) - 1
    assert qlike([0.0], [1e-4]) == pytest.approx(1e-8 + 8 * math.log(10) - 1)
    # the gap between two forecasts is ln(h1 / h2), whatever the floor
    for floor in (1e-12, 1e-10):
        gap = qlike([0.0], [2e-4], floor=floor) - qlike([0.0], [1e-4], floor=floor)
        assert gap == pytest.approx(math.log(2), rel=1e-5)


def test_qlike_refuses_bad_input():
    with pytest.raises(ValueError, match=r"positive variance forecasts.*Received: 1 value"):
        qlike([1.0, 1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match=r"variances >= 0. Received: 1 negative"):
        qlike([-1.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"floor expected a finite number > 0. Received: floor=0"):
        qlike([1.0], [1.0], floor=0)
    with pytest.raises(ValueError, match=r"same shape"):
        qlike([1.0], [1.0, 2.0])


def test_ic_by_period_by_hand():
    y_true = [1, 2, 3, 1, 2, 3, 1, 2, 5, 5, 5]
    y_pred = [1, 2, 3, 3, 2, 1, 2, 1, 1, 2, 3]
    periods = ["a", "a", "a", "b", "b", "b", "c", "c", "d", "d", "d"]
    # a: perfect, b: reversed, c: only 2 samples (dropped), d: constant target (dropped)
    result = ic_by_period(y_true, y_pred, periods)
    pd.testing.assert_series_equal(
        result,
        pd.Series([1.0, -1.0], index=pd.Index(["a", "b"], name="period"), name="ic"),
    )


def test_ic_by_period_spearman_and_dates():
    dates = np.repeat(pd.to_datetime(["2020-01-02", "2020-01-01"]), 4)
    y_true = [1, 2, 3, 4, 1, 2, 3, 4]
    y_pred = [1, 8, 27, 64, 4, 3, 2, 1]
    spearman = ic_by_period(y_true, y_pred, dates, method="spearman")
    assert list(spearman.index) == list(pd.to_datetime(["2020-01-01", "2020-01-02"]))
    assert spearman.tolist() == pytest.approx([-1.0, 1.0])
    assert ic_by_period(y_true, y_pred, dates).iloc[1] < 0.99  # Pearson sees the curvature


def test_ic_by_period_errors():
    with pytest.raises(ValueError, match=r"method expected one of .*Received: method='kendall'"):
        ic_by_period([1, 2, 3], [1, 2, 3], [0, 0, 0], method="kendall")
    with pytest.raises(ValueError, match=r"one entry per sample. Received: .*periods.shape=\(2,\)"):
        ic_by_period([1, 2, 3], [1, 2, 3], [0, 0])


def test_icir_by_hand():
    # mean 0.2, std (ddof=1) sqrt((0.01 + 0.01) / 1) = 0.1 * sqrt(2): ratio sqrt(2)
    assert icir([0.1, 0.3]) == pytest.approx(math.sqrt(2))
    assert icir(pd.Series([0.1, np.nan, 0.3])) == pytest.approx(math.sqrt(2))
    assert np.isnan(icir([0.2, 0.2, 0.2]))
    with pytest.raises(ValueError, match=r"at least 2 non-NaN ICs. Received: 1"):
        icir([0.1, np.nan])


def test_annualized_return_and_volatility_by_hand():
    # mean 0.01 * 252
    assert annualized_return([0.01, -0.02, 0.04]) == pytest.approx(2.52)
    # std (ddof=1) = sqrt(0.0001 + 0.0001) = 0.01 sqrt(2); times sqrt(4) = 2
    assert annualized_volatility([0.01, -0.01], periods_per_year=4) == pytest.approx(
        0.02 * math.sqrt(2)
    )


def test_sharpe_ratio_by_hand():
    # mean 0.02, std 0.01 sqrt(2): sqrt(2) per period, times sqrt(4)
    assert sharpe_ratio([0.01, 0.03], periods_per_year=4) == pytest.approx(2 * math.sqrt(2))
    # daily risk-free 0.04 / 4 = 0.01: excess (0, 0.02), mean 0.01, std 0.01 sqrt(2)
    assert sharpe_ratio([0.01, 0.03], risk_free=0.04, periods_per_year=4) == pytest.approx(
        math.sqrt(2)
    )
    assert np.isnan(sharpe_ratio([0.01, 0.01, 0.01]))


@pytest.mark.parametrize(
    ("returns", "expected"),
    [
        ([0.1, -0.5, 0.2], -0.5),  # equity 1.1, 0.55, 0.66: 0.55 / 1.1 - 1
        ([0.1, -0.1, -0.1, 0.5], -0.19),  # 1.1, 0.99, 0.891, 1.3365: 0.891 / 1.1 - 1
        ([-0.1, 0.2], -0.1),  # a loss on the first day counts (equity starts at 1)
        ([0.1, 0.2], 0.0),
        ([0.5, -1.0], -1.0),
        ([0.1, -1.5, 0.2], -1.0),  # more than the capital lost: equity ends at 0
    ],
)
def test_max_drawdown_by_hand(returns, expected):
    assert max_drawdown(returns) == pytest.approx(expected)


def test_turnover_by_hand():
    positions = pd.DataFrame({"A": [1.0, 1.0, -1.0], "B": [0.0, 1.0, 1.0]})
    # day 0 from flat: 1 + 0; day 1: 0 + 1; day 2: 2 + 0 -> mean 4 / 3
    assert turnover(positions) == pytest.approx(4 / 3)
    assert turnover(positions, periods_per_year=252) == pytest.approx(336.0)
    # a Series; NaN is flat: changes 0.5, 0.5, 1
    assert turnover(pd.Series([0.5, np.nan, 1.0])) == pytest.approx(2 / 3)


def test_strategy_summary():
    summary = strategy_summary([0.1, -0.5, 0.2], positions=[1.0, 1.0, 1.0])
    assert summary["n_periods"] == 3
    assert summary["total_return"] == pytest.approx(1.1 * 0.5 * 1.2 - 1)
    assert summary["max_drawdown"] == pytest.approx(-0.5)
    assert summary["annualized_return"] == pytest.approx(-0.2 / 3 * 252)
    assert summary["hit_rate"] == pytest.approx(2 / 3)
    assert summary["turnover"] == pytest.approx(1 / 3)
    assert set(summary) >= {"annualized_volatility", "sharpe_ratio"}
    assert "turnover" not in strategy_summary([0.1, -0.5])


def test_strategy_statistics_refuse_bad_returns():
    with pytest.raises(ValueError, match=r"finite values. Received: 1 NaN"):
        annualized_return([0.1, np.nan])
    with pytest.raises(ValueError, match=r"at least 2 value\(s\). Received: 1"):
        sharpe_ratio([0.1])
    with pytest.raises(ValueError, match=r"must be 1-D.*Received: shape=\(2, 2\)"):
        annualized_return(np.zeros((2, 2)))
    with pytest.raises(
        ValueError,
        match=r"periods_per_year expected a finite number > 0. Received: periods_per_year=0",
    ):
        annualized_return([0.1], periods_per_year=0)


def test_var_breaches_by_hand():
    returns = [-0.03, -0.01, 0.02, -0.05, -0.02]
    # a breach is a loss larger than the VaR: return < -0.02 (a loss of exactly 0.02 is not)
    assert var_breaches(returns, 0.02).tolist() == [True, False, False, True, False]
    var = [0.04, 0.005, 0.01, 0.06, 0.01]
    assert var_breaches(returns, var).tolist() == [False, True, False, False, True]
    with pytest.raises(ValueError, match=r"positive loss fraction.*Received: min\(var\)=-0.02"):
        var_breaches(returns, -0.02)


def _kupiec_by_hand(x, n, alpha):
    p = x / n
    lr = -2 * ((n - x) * math.log(1 - alpha) + x * math.log(alpha))
    lr += 2 * ((n - x) * math.log(1 - p) + x * math.log(p))
    return lr, math.erfc(math.sqrt(lr / 2))  # chi-square(1) survival function


def test_kupiec_by_hand():
    lr, p_value = kupiec_pof(5, 100, 0.01)
    # -2 [95 ln 0.99 + 5 ln 0.01 - 95 ln 0.95 - 5 ln 0.05]
    assert (lr, p_value) == pytest.approx(_kupiec_by_hand(5, 100, 0.01))
    assert lr == pytest.approx(8.2582, abs=1e-4)
    assert kupiec_pof(1, 100, 0.01) == pytest.approx((0.0, 1.0), abs=1e-12)


def test_kupiec_edges_are_finite():
    # no breach: -2 * 100 ln 0.99; all breaches: -2 * 100 ln 0.01
    lr, p_value = kupiec_pof(0, 100, 0.01)
    assert lr == pytest.approx(-200 * math.log(0.99))
    assert p_value == pytest.approx(math.erfc(math.sqrt(lr / 2)))
    lr, p_value = kupiec_pof(100, 100, 0.01)
    assert lr == pytest.approx(-200 * math.log(0.01))
    assert 0 <= p_value < 1e-100


def test_kupiec_errors():
    with pytest.raises(ValueError, match=r"cannot exceed n_obs. Received: n_breaches=5, n_obs=4"):
        kupiec_pof(5, 4, 0.01)
    with pytest.raises(
        ValueError, match=r"alpha expected a finite number in \(0, 1\). Received: alpha=1"
    ):
        kupiec_pof(1, 4, 1)
    with pytest.raises(ValueError, match=r"n_obs expected an integer >= 1. Received: n_obs=0"):
        kupiec_pof(0, 0, 0.01)


def test_var_report():
    returns = np.full(100, 0.001)
    returns[:5] = -0.05  # 5 breaches of a 2% VaR
    report = var_report(returns, 0.02, alpha=0.01)
    lr, p_value = _kupiec_by_hand(5, 100, 0.01)
    assert report == pytest.approx(
        {
            "n_obs": 100,
            "n_breaches": 5,
            "breach_rate": 0.05,
            "expected_rate": 0.01,
            "lr": lr,
            "p_value": p_value,
        }
    )


def test_strategy_summary_of_a_ruined_strategy():
    dates = pd.bdate_range("2020-01-01", periods=4)
    returns = pd.Series([0.01, -2.0, 0.5, 0.0], index=dates)
    summary = strategy_summary(returns)
    assert summary["ruined"] is True
    assert summary["ruin_date"] == dates[1]
    assert summary["max_drawdown"] == -1.0
    assert summary["total_return"] == -1.0
    # after ruin there is no capital left: the ruin day loses all of it, later days earn 0
    assert summary["annualized_return"] == pytest.approx((0.01 - 1.0) / 4 * 252)
    assert summary["hit_rate"] == pytest.approx(1 / 4)
    assert np.isfinite(summary["sharpe_ratio"]) and np.isfinite(summary["annualized_volatility"])
    # arrays have no dates: the ruin is located by position
    assert strategy_summary(returns.to_numpy())["ruin_date"] == 1


def test_strategy_summary_says_when_it_is_not_ruined():
    summary = strategy_summary(pd.Series([0.1, -0.5, 0.2]))
    assert summary["ruined"] is False and summary["ruin_date"] is None
    # a loss of exactly the capital is ruin too
    assert strategy_summary([0.1, -1.0, 0.3])["ruined"] is True
