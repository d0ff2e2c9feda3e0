"""Forecast and financial metrics: errors, ICs, QLIKE, strategy statistics, VaR tests, and
the significance of loss differences (Diebold-Mariano, model confidence set)."""

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
from metazoo.metrics.significance import (
    diebold_mariano,
    model_confidence_set,
    newey_west_bandwidth,
    qlike_losses,
)

__all__ = [
    "SCORERS",
    "annualized_return",
    "annualized_volatility",
    "diebold_mariano",
    "get_scorer",
    "hit_rate",
    "ic",
    "ic_by_period",
    "icir",
    "kupiec_pof",
    "mae",
    "max_drawdown",
    "model_confidence_set",
    "mse",
    "newey_west_bandwidth",
    "qlike",
    "qlike_losses",
    "rank_ic",
    "sharpe_ratio",
    "strategy_summary",
    "turnover",
    "var_breaches",
    "var_report",
]
