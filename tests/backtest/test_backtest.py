"""Tests for metazoo.backtest: hand-computed P&L and costs, timing, weights and VaR."""

import math

import numpy as np
import pandas as pd
import pytest

from metazoo.backtest import (
    BacktestResult,
    backtest,
    buy_and_hold,
    forward_returns,
    portfolio_weights,
    positions_from_forecasts,
    value_at_risk,
    var_backtest,
)
from metazoo.metrics import var_report
from tests.conftest import make_prices

DATES = pd.bdate_range("2021-01-04", periods=4)
POSITIONS = pd.DataFrame({"A": [1.0, 1.0, -1.0, 0.0], "B": [0.0, -1.0, -1.0, 0.5]}, index=DATES)
RETURNS = pd.DataFrame(  # forward returns; the last date has no next price
    {"A": [0.01, -0.02, 0.03, np.nan], "B": [0.02, 0.01, -0.01, np.nan]}, index=DATES
)


def test_backtest_by_hand():
    result = backtest(POSITIONS, RETURNS, cost_bps=10)
    # traded: |1|+|0|, |0|+|-1|, |-2|+|0|, |1|+|1.5| -> 1, 1, 2, 2.5; times 10 bps
    np.testing.assert_allclose(result.turnover, [1.0, 1.0, 2.0, 2.5])
    np.testing.assert_allclose(result.costs, [0.001, 0.001, 0.002, 0.0025])
    # gross: 1*.01 + 0*.02; 1*-.02 + -1*.01; -1*.03 + -1*-.01; no return on the last day
    np.testing.assert_allclose(result.gross_returns, [0.01, -0.03, -0.02, 0.0], atol=1e-15)
    np.testing.assert_allclose(result.net_returns, [0.009, -0.031, -0.022, -0.0025])
    np.testing.assert_allclose(result.equity, np.cumprod([1.009, 0.969, 0.978, 0.9975]))
    # day 3: A earns -0.03 and pays 2 * 10 bps; B earns 0.01 and trades nothing
    np.testing.assert_allclose(result.asset_pnl.iloc[2], [-0.032, 0.01])
    pd.testing.assert_series_equal(
        result.asset_pnl.sum(axis=1), result.net_returns, check_names=False
    )
    assert result.equity.index.equals(DATES)


def test_backtest_summary_uses_net_returns():
    result = backtest(POSITIONS, RETURNS, cost_bps=10)
    summary = result.summary()
    assert summary["total_return"] == pytest.approx(1.009 * 0.969 * 0.978 * 0.9975 - 1)
    assert summary["annualized_return"] == pytest.approx(
        np.mean([0.009, -0.031, -0.022, -0.0025]) * 252
    )
    assert summary["gross_annualized_return"] == pytest.approx(-0.04 / 4 * 252)
    assert summary["annualized_cost"] == pytest.approx(0.0065 / 4 * 252)
    assert summary["turnover"] == pytest.approx(6.5 / 4)
    assert summary["cost_bps"] == 10.0


def test_a_short_through_a_doubling_is_ruined():
    index = pd.bdate_range("2020-01-01", periods=3)
    with pytest.warns(
        RuntimeWarning, match=r"ruined on 2020-01-02: its net return of -2 loses its whole capital"
    ):
        result = backtest(pd.Series(-1.0, index), pd.Series([0.01, 2.0, 0.0], index), cost_bps=5)
    # the net returns are what the positions earned; the equity stops at zero on the ruin day
    np.testing.assert_allclose(result.net_returns, [-0.0105, -2.0, 0.0])
    np.testing.assert_allclose(result.equity, [0.9895, 0.0, 0.0])
    assert result.ruin_date == index[1]
    summary = result.summary()
    assert summary["ruined"] is True and summary["ruin_date"] == index[1]
    assert summary["max_drawdown"] == -1.0 and summary["total_return"] == -1.0


def test_a_backtest_that_survives_is_not_ruined():
    result = backtest(POSITIONS, RETURNS, cost_bps=10)
    assert result.ruin_date is None
    assert result.summary()["ruined"] is False


def test_forward_returns_by_hand():
    prices = pd.DataFrame(
        {
            "date": pd.to_datetime(
                ["2021-01-04", "2021-01-05", "2021-01-06", "2021-01-04", "2021-01-06"]
            ),
            "symbol": ["A", "A", "A", "B", "B"],
            "close": [100.0, 110.0, 99.0, 50.0, 55.0],
        }
    )
    wide = forward_returns(prices)
    # A: 110/100 - 1, 99/110 - 1, none after the last; B skips 01-05: its next close is 01-06
    expected = pd.DataFrame(
        {"A": [0.1, -0.1, np.nan], "B": [0.1, np.nan, np.nan]},
        index=pd.to_datetime(["2021-01-04", "2021-01-05", "2021-01-06"]),
    )
    pd.testing.assert_frame_equal(wide, expected, check_names=False)


def test_backtest_has_no_look_ahead():
    prices = make_prices(40)
    close = prices.pivot(index="date", columns="symbol", values="close")
    # momentum: the sign of the return into t, known at the close of t
    positions = np.sign(close.pct_change()).fillna(0.0)
    returns = forward_returns(prices)
    result = backtest(positions, returns, cost_bps=0)
    # day t earns the return from t to t + 1, not the one that made the signal
    t = close.index[10]
    next_day = close.index[11]
    previous = close.index[9]
    by_hand = sum(
        np.sign(close.loc[t, s] / close.loc[previous, s] - 1)
        * (close.loc[next_day, s] / close.loc[t, s] - 1)
        for s in ("AAA", "BBB")
    )
    assert result.gross_returns.loc[t] == pytest.approx(by_hand)
    # prices after t + 1 cannot change the P&L of t or earlier
    changed = prices.copy()
    later = changed["date"] > next_day
    changed.loc[later, "close"] *= 1.5
    changed_close = changed.pivot(index="date", columns="symbol", values="close")
    changed_positions = np.sign(changed_close.pct_change()).fillna(0.0)
    changed_result = backtest(changed_positions, forward_returns(changed), cost_bps=5)
    first = backtest(positions, returns, cost_bps=5)
    pd.testing.assert_series_equal(first.net_returns.loc[:t], changed_result.net_returns.loc[:t])
    assert not first.net_returns.loc[next_day:].equals(changed_result.net_returns.loc[next_day:])


def test_buy_and_hold_pays_entry_cost_once():
    benchmark = buy_and_hold(RETURNS)
    assert benchmark.equals(pd.DataFrame(1.0, index=DATES, columns=["A", "B"]))
    result = backtest(benchmark, RETURNS, cost_bps=10)
    np.testing.assert_allclose(result.costs, [0.002, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(result.gross_returns, [0.03, -0.01, 0.02, 0.0], atol=1e-15)
    assert buy_and_hold(RETURNS["A"]).tolist() == [1.0] * 4
    assert buy_and_hold(np.zeros(3)).tolist() == [1.0] * 3


def test_backtest_of_a_series():
    result = backtest(POSITIONS["A"], RETURNS["A"], cost_bps=0)
    assert isinstance(result, BacktestResult)
    np.testing.assert_allclose(result.gross_returns, [0.01, -0.02, -0.03, 0.0], atol=1e-15)


def test_backtest_errors():
    with pytest.raises(TypeError, match="cost_bps"):
        backtest(POSITIONS, RETURNS)  # costs must be stated
    with pytest.raises(
        ValueError, match=r"cost_bps expected a finite number >= 0. Received: cost_bps=-1"
    ):
        backtest(POSITIONS, RETURNS, cost_bps=-1)
    with pytest.raises(ValueError, match=r"returns lack assets \['B'\] and 0 date"):
        backtest(POSITIONS, RETURNS[["A"]], cost_bps=0)
    with pytest.raises(ValueError, match=r"returns lack assets \[\] and 1 date"):
        backtest(POSITIONS, RETURNS.iloc[:3], cost_bps=0)
    with pytest.raises(ValueError, match=r"unique dates in increasing order"):
        backtest(POSITIONS.iloc[::-1], RETURNS, cost_bps=0)


def test_sign_positions():
    forecasts = pd.DataFrame({"A": [0.5, 0.0], "B": [-0.2, np.nan]}, index=DATES[:2])
    expected = pd.DataFrame({"A": [1.0, 0.0], "B": [-1.0, 0.0]}, index=DATES[:2])
    pd.testing.assert_frame_equal(positions_from_forecasts(forecasts), expected)
    series = positions_from_forecasts(pd.Series([0.3, -0.1], name="return_1"))
    assert series.tolist() == [1.0, -1.0] and series.name == "return_1"


def test_vol_scaled_positions_by_hand():
    forecasts = pd.DataFrame({"A": [0.1], "B": [-0.1], "C": [0.2]}, index=DATES[:1])
    vol = pd.DataFrame({"A": [0.01], "B": [0.02], "C": [0.0]}, index=DATES[:1])
    positions = positions_from_forecasts(forecasts, "vol_scaled", vol=vol, max_leverage=2.0)
    # 0.10 / (0.01 sqrt(252)) and -0.10 / (0.02 sqrt(252)); zero vol gets the cap
    expected = [0.1 / (0.01 * math.sqrt(252)), -0.1 / (0.02 * math.sqrt(252)), 2.0]
    np.testing.assert_allclose(positions.iloc[0], expected)
    capped = positions_from_forecasts(forecasts, "vol_scaled", vol=vol, max_leverage=0.5)
    np.testing.assert_allclose(capped.iloc[0], [0.5, expected[1], 0.5])


def test_positions_from_long_frames():
    long = pd.DataFrame(
        {"date": np.repeat(DATES[:2], 2), "symbol": ["A", "B"] * 2, "return_1": [1, -1, 2, 0.5]}
    )
    vol = long.rename(columns={"return_1": "vol"}).assign(vol=[0.01, 0.01, 0.02, 0.02])
    positions = positions_from_forecasts(
        long, "vol_scaled", vol=vol, target_vol=0.01 * math.sqrt(252)
    )
    np.testing.assert_allclose(positions.to_numpy(), [[1.0, -1.0], [0.5, 0.5]])
    raw = positions_from_forecasts(long, "raw", max_leverage=1.5)
    np.testing.assert_allclose(raw.to_numpy(), [[1.0, -1.0], [1.5, 0.5]])


def test_positions_errors():
    forecasts = pd.DataFrame({"A": [0.1], "B": [-0.1]}, index=DATES[:1])
    with pytest.raises(ValueError, match=r"method expected one of .*Received: method='kelly'"):
        positions_from_forecasts(forecasts, "kelly")
    with pytest.raises(ValueError, match=r"needs vol.*Received: None"):
        positions_from_forecasts(forecasts, "vol_scaled")
    with pytest.raises(ValueError, match=r"vol lacks symbols \['B'\]"):
        positions_from_forecasts(forecasts, "vol_scaled", vol=forecasts[["A"]].abs())
    with pytest.raises(ValueError, match=r"vol must be >= 0. Received: min\(vol\)=-0.1"):
        positions_from_forecasts(forecasts, "vol_scaled", vol=forecasts)
    long = pd.DataFrame({"date": DATES[:1], "symbol": ["A"], "x": [1.0], "y": [2.0]})
    with pytest.raises(ValueError, match=r"pass column= .*Received columns: \['x', 'y'\]"):
        positions_from_forecasts(long)


def test_long_short_weights_by_hand():
    scores = pd.DataFrame({"A": [1.0, 0.1, np.nan], "B": [2.0, 0.1, 1.0], "C": [3.0, 0.1, 2.0]})
    weights = portfolio_weights(scores)
    # row 0: demeaned (-1, 0, 1) / 2; row 1: all equal -> cash; row 2: A left out, (-.5, .5) / 1
    expected = pd.DataFrame({"A": [-0.5, 0.0, 0.0], "B": [0.0, 0.0, -0.5], "C": [0.5, 0.0, 0.5]})
    pd.testing.assert_frame_equal(weights, expected)
    pd.testing.assert_frame_equal(portfolio_weights(scores, gross=2.0), expected * 2)


def test_long_only_weights_by_hand():
    scores = pd.DataFrame({"A": [1.0, -1.0, 0.2], "B": [-2.0, -3.0, 0.2], "C": [3.0, 0.0, 0.2]})
    weights = portfolio_weights(scores, scheme="long_only")
    # row 0: (1, 0, 3) / 4; row 1: nothing positive -> cash; row 2: equal scores -> equal weights
    expected = pd.DataFrame(
        {"A": [0.25, 0.0, 1 / 3], "B": [0.0, 0.0, 1 / 3], "C": [0.75, 0.0, 1 / 3]}
    )
    pd.testing.assert_frame_equal(weights, expected)
    with pytest.raises(ValueError, match=r"scheme expected one of .*Received: scheme='short'"):
        portfolio_weights(scores, scheme="short")


def test_value_at_risk_by_hand():
    # 99% one-sided normal quantile 2.3263478740; Student t(5): 3.3649299989 * sqrt(3 / 5)
    assert value_at_risk(0.02) == pytest.approx(0.02 * 2.3263478740, rel=1e-9)
    assert value_at_risk(0.02, dist="t", dof=5) == pytest.approx(
        0.02 * 3.3649299989 * math.sqrt(0.6), rel=1e-9
    )
    vol = pd.DataFrame({"A": [0.01, np.nan]})
    var = value_at_risk(vol, alpha=0.05)
    assert isinstance(var, pd.DataFrame)
    assert var.iloc[0, 0] == pytest.approx(0.01 * 1.6448536270, rel=1e-9)
    assert np.isnan(var.iloc[1, 0])


def test_value_at_risk_errors():
    with pytest.raises(
        ValueError, match=r"alpha expected a finite number in \(0, 0.5\). Received: alpha=0.99"
    ):
        value_at_risk(0.01, alpha=0.99)
    with pytest.raises(ValueError, match=r"vol_forecast must be >= 0. Received: min=-0.01"):
        value_at_risk([0.01, -0.01])
    with pytest.raises(ValueError, match=r"dof expected an integer >= 3. Received: dof=2"):
        value_at_risk(0.01, dist="t", dof=2)
    with pytest.raises(ValueError, match=r"dist expected one of .*Received: dist='cauchy'"):
        value_at_risk(0.01, dist="cauchy")


def test_var_backtest_drops_unknown_rows_and_aligns():
    dates = pd.bdate_range("2021-01-04", periods=102)
    returns = pd.Series(0.001, index=dates)
    returns.iloc[[5, 30, 60]] = -0.05  # 3 breaches of a 2% VaR
    returns.iloc[-1] = np.nan  # no next price
    var = pd.Series(0.02, index=dates[1:])  # the first date has no forecast (warm-up)
    report = var_backtest(returns, var, alpha=0.01)
    # 100 days with both values; compare with the report on the clean arrays
    assert report == pytest.approx(var_report(returns.iloc[1:-1], 0.02, alpha=0.01))
    assert report["n_obs"] == 100 and report["n_breaches"] == 3
    both = var_backtest(
        pd.DataFrame({"A": returns, "B": -returns}), pd.DataFrame({"A": var, "B": var}), 0.01
    )
    assert both["n_breaches"].tolist() == [3, 0]
    with pytest.raises(ValueError, match=r"1-D of one length.*var.shape=\(2,\)"):
        var_backtest(np.zeros(3), np.zeros(2), 0.01)
