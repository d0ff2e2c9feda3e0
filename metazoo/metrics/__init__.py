"""Forecast and financial metrics: errors, ICs, QLIKE, strategy statistics and VaR tests."""

from metazoo.metrics.finance import (
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
from metazoo.metrics.forecast import SCORERS, get_scorer, hit_rate, ic, mae, mse, rank_ic

__all__ = [
    "SCORERS",
    "annualized_return",
    "annualized_volatility",
    "get_scorer",
    "hit_rate",
    "ic",
    "ic_by_period",
    "icir",
    "kupiec_pof",
    "mae",
    "max_drawdown",
    "mse",
    "qlike",
    "rank_ic",
    "sharpe_ratio",
    "strategy_summary",
    "turnover",
    "var_breaches",
    "var_report",
]
