"""Daily backtests of positions against forward returns, with transaction costs.

Timing convention: a position decided at the close of date t is held until the close of
t + 1 and earns the *forward simple return* `C_{t+1} / C_t - 1`, which `forward_returns`
aligns to t. Positions and returns therefore share their dates, and no shift is needed or
allowed: a signal computed from prices up to t, placed at t, only ever meets the return after
t. Changing the position from t - 1 to t costs `cost_bps / 1e4 * abs(change)` at t; the book
starts flat, so the first positions pay their entry cost.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metazoo.backtest.signals import to_wide
from metazoo.data.features import check_sorted
from metazoo.metrics.finance import (
    annualized_return,
    ruin_index,
    sharpe_ratio,
    strategy_summary,
)
from metazoo.validation import check_positive

__all__ = ["BacktestResult", "backtest", "forward_returns"]


def forward_returns(prices: pd.DataFrame) -> pd.DataFrame:
    """Wide next-day simple returns: at date t, `C_{t+1} / C_t - 1` of each symbol.

    Each symbol steps to its own next row, so symbols with different trading calendars are
    fine; dates a symbol does not trade, and its last date, are NaN.

    Args:
        prices: Validated long price frame (see `metazoo.data.load_prices`).

    Returns:
        `(n_dates, n_symbols)` DataFrame indexed by date, one column per symbol.
    """
    check_sorted(prices)
    close = prices["close"].astype("float64")
    ahead = close.groupby(prices["symbol"], sort=False).shift(-1) / close - 1.0
    long = pd.DataFrame({"date": prices["date"], "symbol": prices["symbol"], "r": ahead})
    return to_wide(long, "r", name="prices")


@dataclass(frozen=True)
class BacktestResult:
    """The daily outcome of a backtest; each frame or series is indexed by date.

    Attributes:
        positions: `(n_days, n_assets)` positions held from each close (NaN read as 0).
        returns: `(n_days, n_assets)` forward simple returns they earned (NaN read as 0).
        gross_returns: `(n_days,)` sum over assets of position x return.
        costs: `(n_days,)` trading costs, `cost_bps / 1e4 * turnover`.
        net_returns: `(n_days,)` gross returns minus costs.
        equity: `(n_days,)` compounded net equity `cumprod(1 + net_returns)`, from 1; it
            ends at zero on the first day whose net return is <= -1 (ruin: the strategy
            lost its whole capital or more) and stays there.
        asset_pnl: `(n_days, n_assets)` net contribution of each asset (its gross return
            minus its costs); the rows sum to `net_returns`.
        turnover: `(n_days,)` sum over assets of `abs(position change)`.
        cost_bps: Cost per unit of turnover, in basis points.
        periods_per_year: Periods in a year, for annualized statistics.
        ruin_date: The day equity reached zero, or None if it never did.
    """

    positions: pd.DataFrame
    returns: pd.DataFrame
    gross_returns: pd.Series
    costs: pd.Series
    net_returns: pd.Series
    equity: pd.Series
    asset_pnl: pd.DataFrame
    turnover: pd.Series
    cost_bps: float
    periods_per_year: float
    ruin_date: pd.Timestamp | None = None

    def summary(self) -> dict:
        """`strategy_summary` of the net returns, plus gross and cost figures.

        Returns:
            Dict of `metazoo.metrics.strategy_summary` keys (on net returns, with
            `turnover`, `ruined` and `ruin_date`), `gross_annualized_return`, `gross_sharpe_ratio`,
            `annualized_cost` and `cost_bps`.
        """
        per_year = self.periods_per_year
        summary = strategy_summary(self.net_returns, self.positions, per_year)
        summary["gross_annualized_return"] = annualized_return(self.gross_returns, per_year)
        summary["gross_sharpe_ratio"] = sharpe_ratio(self.gross_returns, periods_per_year=per_year)
        summary["annualized_cost"] = float(self.costs.mean() * per_year)
        summary["cost_bps"] = self.cost_bps
        return summary


def backtest(positions, returns, *, cost_bps: float, periods_per_year: float = 252):
    """Daily P&L of positions, net of proportional trading costs.

    Args:
        positions: `(n_days, n_assets)` wide positions (fractions of capital, negative for
            short) decided at each date's close, or a Series for one asset. NaN is flat.
        returns: Forward simple returns aligned to the same dates (see `forward_returns`),
            covering every date and asset of `positions`; extra ones are ignored. A NaN
            return (no next price) earns 0.
        cost_bps: Cost in basis points per unit of position traded, >= 0. Required, so that
            every backtest states its costs (pass 0 to ignore them).
        periods_per_year: Periods in a year, for `summary`.

    Returns:
        A `BacktestResult`. A day whose net return is <= -1 loses the whole capital or more
        (ruin): a `RuntimeWarning` names it, the equity is zero from that day on and
        `summary()` reports it (see `metazoo.metrics.strategy_summary`).

    Raises:
        ValueError: If dates are not increasing, `returns` lacks dates or assets of
            `positions`, or `cost_bps` is negative.
    """
    cost_bps = check_positive("cost_bps", cost_bps, allow_zero=True)
    periods_per_year = check_positive("periods_per_year", periods_per_year)
    held = to_wide(positions, name="positions")
    earned = to_wide(returns, name="returns")
    if not held.index.is_monotonic_increasing or not held.index.is_unique:
        raise ValueError("positions must have unique dates in increasing order.")
    if not earned.index.is_unique:
        raise ValueError(
            f"returns must have unique dates. Received duplicates: "
            f"{list(earned.index[earned.index.duplicated()][:3])}"
        )
    for name, frame in (("positions", held), ("returns", earned)):
        if np.isinf(frame.to_numpy()).any():
            raise ValueError(f"{name} must be finite or NaN. Received: an infinite value")
    missing_assets = held.columns.difference(earned.columns).tolist()
    missing_dates = held.index.difference(earned.index)
    if missing_assets or len(missing_dates):
        raise ValueError(
            "returns must cover every date and asset of positions. Received: returns lack "
            f"assets {missing_assets} and {len(missing_dates)} date(s), e.g. "
            f"{list(missing_dates[:3])}"
        )
    held = held.fillna(0.0)
    earned = earned.reindex(index=held.index, columns=held.columns).fillna(0.0)
    traded = held.diff().fillna(held).abs()  # the first row trades from a flat book
    asset_costs = traded * (cost_bps / 1e4)
    asset_pnl = held * earned - asset_costs
    gross = (held * earned).sum(axis=1)
    costs = asset_costs.sum(axis=1)
    net = gross - costs
    equity = (1.0 + net).cumprod()
    ruin = ruin_index(net) if len(net) else None
    if ruin is not None:
        equity.iloc[ruin:] = 0.0
        warnings.warn(
            f"The strategy is ruined on {_day(net.index[ruin])}: its net return of "
            f"{net.iloc[ruin]:.4g} loses its whole capital or more; equity is 0 from then on.",
            RuntimeWarning,
            stacklevel=2,
        )
    if not (np.isfinite(asset_pnl.to_numpy()).all() and np.isfinite(equity.to_numpy()).all()):
        raise ValueError(
            "The P&L overflows float64: positions or returns far too large. Received: "
            f"max |position| = {held.abs().max().max():.3g}, "
            f"max |return| = {earned.abs().max().max():.3g}"
        )
    return BacktestResult(
        positions=held,
        returns=earned,
        gross_returns=gross.rename("gross"),
        costs=costs.rename("costs"),
        net_returns=net.rename("net"),
        equity=equity.rename("equity"),
        asset_pnl=asset_pnl,
        turnover=traded.sum(axis=1).rename("turnover"),
        cost_bps=float(cost_bps),
        periods_per_year=periods_per_year,
        ruin_date=None if ruin is None else net.index[ruin],
    )


def _day(label) -> str:
    return f"{label:%Y-%m-%d}" if isinstance(label, pd.Timestamp) else str(label)
