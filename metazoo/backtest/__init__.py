"""From forecasts to P&L: positions, portfolio weights, costed backtests and VaR checks.

A position decided at the close of t earns the forward simple return from t to t + 1
(`forward_returns` aligns it to t); trading costs are charged on every position change,
including the first. `buy_and_hold` gives the naive benchmark to show beside any strategy.

    positions = positions_from_forecasts(forecasts, method="sign")
    result = backtest(positions, forward_returns(prices), cost_bps=5)
    result.summary()
"""

from metazoo.backtest.portfolio import BacktestResult, backtest, forward_returns
from metazoo.backtest.risk import (
    christoffersen_test,
    expected_shortfall,
    inverse_vol_positions,
    pooled_christoffersen_test,
    value_at_risk,
    var_backtest,
    var_from_variance,
    var_tests,
    vol_target_backtest,
    vol_target_positions,
    vol_tracking,
)
from metazoo.backtest.signals import (
    buy_and_hold,
    portfolio_weights,
    positions_from_forecasts,
    to_wide,
)

__all__ = [
    "BacktestResult",
    "backtest",
    "buy_and_hold",
    "christoffersen_test",
    "expected_shortfall",
    "forward_returns",
    "inverse_vol_positions",
    "pooled_christoffersen_test",
    "portfolio_weights",
    "positions_from_forecasts",
    "to_wide",
    "value_at_risk",
    "var_backtest",
    "var_from_variance",
    "var_tests",
    "vol_target_backtest",
    "vol_target_positions",
    "vol_tracking",
]
