"""Financial metrics: variance-forecast loss, IC per period, strategy statistics, VaR tests.

Conventions, used throughout `metazoo.metrics` and `metazoo.backtest`:

- Strategy returns are daily *simple* returns, one per period, as an array or a pandas
  Series indexed by date. Annualized figures use the arithmetic mean:
  `annualized_return = mean(r) * periods_per_year` (no compounding).
- `max_drawdown` is the worst fall of the compounded equity curve `cumprod(1 + r)` (started at
  1) from its running peak, as a *negative* fraction: `-0.25` is a 25% fall, `0.0` none.
- A strategy can lose more than its capital (a short through a doubling). A return <= -1 is
  *ruin*: the equity curve ends at zero that day and stays there, so the drawdown is `-1`.
  `strategy_summary` says so (`ruined`, `ruin_date`) and computes its statistics as if the
  ruin day lost exactly the capital and every later day earned nothing.
- Value at Risk is a *positive loss fraction*: a 1% VaR of `0.03` says a loss worse than 3%
  (a return below `-0.03`) happens on 1% of days. `alpha` is the tail probability (0.01 for
  a 99% VaR).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

from metazoo.metrics.forecast import (
    _check_pair,
    _pearson,
    as_floats,
    finite_result,
    unit_scale,
)
from metazoo.validation import check_choice, check_count, check_in_range, check_positive

__all__ = [
    "annualized_return",
    "annualized_volatility",
    "ic_by_period",
    "icir",
    "kupiec_pof",
    "max_drawdown",
    "qlike",
    "ruin_index",
    "sharpe_ratio",
    "strategy_summary",
    "turnover",
    "var_breaches",
    "var_report",
]

_IC_METHODS = ("pearson", "spearman")


def qlike(var_true, var_pred, floor: float = 1e-12) -> float:
    """QLIKE loss of variance forecasts (lower is better; 0 for a perfect forecast).

    The mean of `v / h - log(v / h) - 1` over all entries, for realized variance `v` and
    forecast `h` (Patton 2011). It is robust to noise in the variance proxy (such as squared
    returns) and punishes under-forecasts more than over-forecasts.

    A realized variance of zero (an unchanged close) would make the loss infinite, so `v` is
    raised to `floor` first. On such an entry the loss is then `log(h / floor) - 1` to a
    very good approximation, large but finite, and the *difference* between two forecasts
    `h1, h2` is `log(h1 / h2)` whatever the floor, so it does not change how models rank.

    Args:
        var_true: Realized variances, any shape, >= 0.
        var_pred: Variance forecasts of the same shape, > 0.
        floor: Positive lower bound applied to `var_true`.

    Returns:
        The mean loss, a float >= 0.

    Raises:
        ValueError: If the shapes differ, a value is not finite, a realized variance is
            negative or a forecast is not positive.

    References:
        Patton, A. J. (2011). Volatility forecast comparison using imperfect volatility
        proxies. Journal of Econometrics, 160(1), 246-256.
    """
    true, pred = _check_pair(var_true, var_pred)
    floor = check_positive("floor", floor)
    if np.any(true < 0):
        raise ValueError(
            "var_true must hold variances >= 0. "
            f"Received: {int(np.count_nonzero(true < 0))} negative value(s), min={true.min()}"
        )
    if np.any(pred <= 0):
        raise ValueError(
            "var_pred must hold positive variance forecasts (QLIKE takes their log). "
            f"Received: {int(np.count_nonzero(pred <= 0))} value(s) <= 0, min={pred.min()}"
        )
    ratio = np.maximum(true, floor) / pred
    with np.errstate(over="ignore", invalid="ignore"):
        return finite_result(np.mean(ratio - np.log(ratio) - 1.0), "qlike")


def ic_by_period(y_true, y_pred, periods, method: str = "pearson") -> pd.Series:
    """Information coefficient computed separately within each period (e.g. each date).

    With one forecast per asset and date and `periods` the dates, this is the cross-sectional
    IC series whose mean and `icir` summarize a ranking signal.

    Periods with fewer than 3 samples, or where the targets or the forecasts are constant,
    have no meaningful correlation and are dropped from the result.

    Args:
        y_true: `(n,)` targets.
        y_pred: `(n,)` forecasts.
        periods: `(n,)` period label of each sample (dates, ints, strings).
        method: `"pearson"` (IC) or `"spearman"` (rank IC, average ranks for ties).

    Returns:
        Series of the IC of each kept period, indexed by the sorted period labels, named `ic`.

    Raises:
        ValueError: If the inputs are not 1-D of one length, not finite, or `method` is unknown.
    """
    check_choice("method", method, _IC_METHODS)
    true, pred = _check_pair(y_true, y_pred)
    labels = np.asarray(periods)
    if np.ndim(y_true) != 1 or labels.shape != true.shape:
        raise ValueError(
            "y_true, y_pred and periods must be 1-D with one entry per sample. "
            f"Received: y_true.shape={np.shape(y_true)}, periods.shape={labels.shape}"
        )
    frame = pd.DataFrame({"true": true, "pred": pred, "period": labels})
    if method == "spearman":
        ranks = frame.groupby("period")[["true", "pred"]].rank(method="average")
        frame[["true", "pred"]] = ranks
    values = {}
    for period, group in frame.groupby("period", sort=True):
        if len(group) >= 3:
            values[period] = _pearson(group["true"].to_numpy(), group["pred"].to_numpy())
    out = pd.Series(values, name="ic", dtype="float64")
    out.index.name = "period"
    return out.dropna()


def icir(ic_series) -> float:
    """Information ratio of an IC series: `mean / std` (ddof=1), NaN entries ignored.

    Args:
        ic_series: ICs per period, e.g. from `ic_by_period` (array or Series).

    Returns:
        The ratio; NaN if the ICs do not vary (zero standard deviation).

    Raises:
        ValueError: If fewer than 2 finite ICs remain, or an IC is infinite.
    """
    values = as_floats(ic_series, "ic_series").reshape(-1)
    if np.isinf(values).any():
        raise ValueError(f"ICs must be finite or NaN. Received: {values[np.isinf(values)]}")
    values = values[~np.isnan(values)]
    if values.size < 2:
        raise ValueError(
            f"icir needs at least 2 non-NaN ICs. Received: {values.size} after dropping NaN"
        )
    if np.ptp(values) == 0:
        return float("nan")
    values = unit_scale(values)  # the ratio is scale-free; this avoids under- and overflow
    return float(values.mean() / values.std(ddof=1))


def _check_returns(returns, name: str = "returns", minimum: int = 1) -> np.ndarray:
    """Finite 1-D float64 returns, at least `minimum` of them."""
    values = as_floats(returns, name)
    if values.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D, one return per period. Received: shape={values.shape}"
        )
    if values.size < minimum:
        raise ValueError(f"{name} needs at least {minimum} value(s). Received: {values.size}")
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise ValueError(
            f"{name} must hold only finite values. Received: {bad} NaN or infinite value(s)"
        )
    return values


def annualized_return(returns, periods_per_year: float = 252) -> float:
    """Arithmetic annualized return: `mean(returns) * periods_per_year`.

    Args:
        returns: `(n_periods,)` daily simple returns (log returns give the annual log return).
        periods_per_year: Periods in a year (252 trading days).

    Returns:
        The annualized mean return.
    """
    periods = check_positive("periods_per_year", periods_per_year)
    return finite_result(_check_returns(returns).mean() * periods, "annualized_return")


def annualized_volatility(returns, periods_per_year: float = 252) -> float:
    """Annualized volatility: `std(returns, ddof=1) * sqrt(periods_per_year)`.

    Args:
        returns: `(n_periods,)` daily returns, at least 2.
        periods_per_year: Periods in a year.

    Returns:
        The annualized standard deviation.
    """
    values = _check_returns(returns, minimum=2)
    largest = np.abs(values).max()
    std = largest * unit_scale(values).std(ddof=1) if largest > 0 else 0.0
    return finite_result(
        std * np.sqrt(check_positive("periods_per_year", periods_per_year)), "annualized_volatility"
    )


def sharpe_ratio(returns, risk_free: float = 0.0, periods_per_year: float = 252) -> float:
    """Annualized Sharpe ratio of daily returns over a risk-free rate.

    `mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods_per_year)` with the daily rate
    `rf = risk_free / periods_per_year`.

    Args:
        returns: `(n_periods,)` daily simple returns, at least 2.
        risk_free: Annual risk-free rate (0.02 for 2%).
        periods_per_year: Periods in a year.

    Returns:
        The Sharpe ratio; NaN if the returns do not vary.
    """
    periods = check_positive("periods_per_year", periods_per_year)
    excess = _check_returns(returns, minimum=2) - float(risk_free) / periods
    if np.ptp(excess) == 0:
        return float("nan")
    excess = unit_scale(excess)  # the ratio is scale-free; this avoids under- and overflow
    return float(excess.mean() / excess.std(ddof=1) * np.sqrt(periods))


def max_drawdown(returns) -> float:
    """Largest fall of the compounded equity curve from its running peak.

    The equity curve starts at 1 before the first return and is `cumprod(1 + returns)`, so
    a loss on the first day counts. A return <= -1 loses the whole capital (or more): the
    curve ends at zero and the drawdown is `-1`.

    Args:
        returns: `(n_periods,)` daily simple returns.

    Returns:
        A fraction in `[-1, 0]`: `-0.25` for a 25% fall, `0.0` if equity never fell.
    """
    values = _check_returns(returns)
    if np.any(values <= -1):
        return -1.0
    # In logs, so that an equity curve beyond float64 still compares.
    log_equity = np.concatenate([[0.0], np.cumsum(np.log1p(values))])
    return float(np.min(np.expm1(log_equity - np.maximum.accumulate(log_equity))))


def ruin_index(returns) -> int | None:
    """Position of the first return <= -1 (the whole capital lost), or None.

    Args:
        returns: `(n_periods,)` daily simple returns.

    Returns:
        The position of the ruin day, or None if the strategy keeps some capital throughout.
    """
    values = _check_returns(returns)
    ruined = np.flatnonzero(values <= -1)
    return int(ruined[0]) if ruined.size else None


def turnover(positions, periods_per_year: float | None = None) -> float:
    """Mean daily turnover: over days, the mean of the summed `abs(position change)`.

    The book starts flat, so the first day's turnover is the size of the first positions
    (as `metazoo.backtest.backtest` charges entry costs). NaN positions count as flat (0).

    Args:
        positions: `(n_days, n_assets)` DataFrame of positions (dates x symbols), or a Series
            or 1-D array for one asset.
        periods_per_year: If given, the result is annualized (multiplied by it).

    Returns:
        Mean daily (or annual) turnover, in units of the positions (1.0 = 100% of capital).
    """
    values = np.nan_to_num(
        as_floats(positions, "positions"), nan=0.0, posinf=np.inf, neginf=-np.inf
    )
    values = values.reshape(len(values), -1) if values.ndim == 1 and len(values) else values
    if values.ndim != 2 or values.shape[0] == 0:
        raise ValueError(
            "positions must be (n_days, n_assets) or (n_days,) with n_days >= 1. "
            f"Received: shape={np.shape(positions)}"
        )
    if np.isinf(values).any():
        raise ValueError("positions must be finite or NaN. Received: an infinite position")
    changes = np.abs(np.diff(values, axis=0, prepend=0.0)).sum(axis=1)
    scale = (
        1.0 if periods_per_year is None else check_positive("periods_per_year", periods_per_year)
    )
    return finite_result(changes.mean() * scale, "turnover")


def strategy_summary(returns, positions=None, periods_per_year: float = 252) -> dict:
    """The usual statistics of a daily strategy return series.

    A return <= -1 is ruin (see the module docstring): `ruined` is True, `ruin_date` names
    the day, `total_return` and `max_drawdown` are -1, and the other statistics are those of
    the returns with the ruin day's loss limited to the capital (-1) and later days at 0
    (nothing left to trade).

    Args:
        returns: `(n_periods,)` daily simple (net) returns, at least 2; a Series indexed by
            date gives `ruin_date` as a date.
        positions: Optional positions for `turnover` (same days).
        periods_per_year: Periods in a year.

    Returns:
        Dict with `n_periods`, `total_return` (compounded), `annualized_return`,
        `annualized_volatility`, `sharpe_ratio`, `max_drawdown`, `hit_rate` (share of
        periods with a positive return), `ruined`, `ruin_date` (the index label of the ruin
        day for a Series, its position otherwise; None if not ruined) and, with positions,
        `turnover` (mean daily).
    """
    values = _check_returns(returns, minimum=2)
    ruin = ruin_index(values)
    if ruin is not None:
        values = values.copy()
        values[ruin] = -1.0
        values[ruin + 1 :] = 0.0
    if ruin is None:
        ruin_date = None
    elif isinstance(returns, pd.Series | pd.DataFrame):
        ruin_date = returns.index[ruin]
    else:
        ruin_date = ruin
    summary = {
        "n_periods": int(values.size),
        "total_return": finite_result(np.prod(1.0 + values) - 1.0, "total_return"),
        "annualized_return": annualized_return(values, periods_per_year),
        "annualized_volatility": annualized_volatility(values, periods_per_year),
        "sharpe_ratio": sharpe_ratio(values, periods_per_year=periods_per_year),
        "max_drawdown": max_drawdown(values),
        "hit_rate": float(np.mean(values > 0)),
        "ruined": ruin is not None,
        "ruin_date": ruin_date,
    }
    if positions is not None:
        summary["turnover"] = turnover(positions)
    return summary


def var_breaches(returns, var) -> np.ndarray:
    """Days whose loss exceeds the Value at Risk: `returns < -var`.

    Args:
        returns: `(n,)` realized returns over the VaR's period.
        var: VaR forecasts as positive loss fractions, `(n,)` or a scalar.

    Returns:
        `(n,)` boolean array, True on a breach.

    Raises:
        ValueError: If a VaR is negative (pass losses, not return quantiles), the shapes
            differ or a value is not finite.
    """
    values = _check_returns(returns)
    var = as_floats(var, "var")
    if var.ndim and var.shape != values.shape:
        raise ValueError(
            f"var must be a scalar or shaped like returns {values.shape}. Received: {var.shape}"
        )
    var = _check_returns(np.broadcast_to(var, values.shape).copy(), name="var")
    if np.any(var < 0):
        raise ValueError(
            "var must be a positive loss fraction (0.02 for a 2% loss), not a return "
            f"quantile. Received: min(var)={var.min()}"
        )
    return values < -var


def kupiec_pof(n_breaches: int, n_obs: int, alpha: float) -> tuple[float, float]:
    """Kupiec's proportion-of-failures test of a VaR's breach rate.

    Likelihood ratio of the expected breach rate `alpha` against the observed rate
    `p = x / n`: `LR = -2 [ (n - x) log(1 - alpha) + x log(alpha)
    - (n - x) log(1 - p) - x log(p) ]`, with `0 log 0 = 0` so that 0 and `n` breaches give
    finite values. Under a correct VaR, LR is chi-square with 1 degree of freedom.

    Args:
        n_breaches: Number of breaches `x`, `0 <= x <= n`.
        n_obs: Number of days `n`, >= 1.
        alpha: Expected breach probability, in (0, 1) (0.01 for a 99% VaR).

    Returns:
        `(lr, p_value)`; a small p-value rejects the VaR's coverage.

    References:
        Kupiec, P. H. (1995). Techniques for verifying the accuracy of risk measurement
        models. The Journal of Derivatives, 3(2), 73-84.
    """
    check_count("n_obs", n_obs, allow_float=False)
    check_count("n_breaches", n_breaches, 0, allow_float=False)
    if n_breaches > n_obs:
        raise ValueError(
            f"n_breaches cannot exceed n_obs. Received: n_breaches={n_breaches}, n_obs={n_obs}"
        )
    check_in_range("alpha", alpha, 0.0, 1.0)
    x, n = int(n_breaches), int(n_obs)
    rate = x / n
    null = special.xlogy(x, alpha) + special.xlog1py(n - x, -alpha)
    observed = special.xlogy(x, rate) + special.xlog1py(n - x, -rate)
    lr = max(0.0, float(-2.0 * (null - observed)))  # >= 0 up to rounding
    return lr, float(stats.chi2.sf(lr, df=1))


def var_report(returns, var, alpha: float) -> dict:
    """Breach statistics and Kupiec test of VaR forecasts.

    Args:
        returns: `(n,)` realized returns, finite.
        var: `(n,)` or scalar VaR as positive loss fractions (see `var_breaches`).
        alpha: Tail probability the VaR was made for.

    Returns:
        Dict with `n_obs`, `n_breaches`, `breach_rate`, `expected_rate` (alpha), `lr` and
        `p_value` (from `kupiec_pof`).
    """
    breaches = var_breaches(returns, var)
    n_breaches, n_obs = int(breaches.sum()), int(breaches.size)
    lr, p_value = kupiec_pof(n_breaches, n_obs, alpha)
    return {
        "n_obs": n_obs,
        "n_breaches": n_breaches,
        "breach_rate": n_breaches / n_obs,
        "expected_rate": float(alpha),
        "lr": lr,
        "p_value": p_value,
    }
