"""Value at Risk from volatility forecasts, and its backtest by breach counting.

VaR is a *positive loss fraction* (as in `metazoo.metrics.finance`): the 1% VaR `0.03` says
a daily return below `-0.03` should happen on 1% of days. A VaR made at the close of t is for
the return from t to t + 1, so it is tested against `forward_returns` on the same dates.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy import stats

from metazoo.metrics.finance import var_report

__all__ = ["value_at_risk", "var_backtest"]

_DISTRIBUTIONS = ("normal", "t")


def value_at_risk(vol_forecast, alpha: float = 0.01, dist: str = "normal", dof: int = 5):
    """VaR implied by a daily volatility forecast and a zero-mean return distribution.

    `VaR = -q_alpha * vol`, with `q_alpha` the `alpha` quantile of the standardized
    distribution: the standard normal, or a Student t with `dof` degrees of freedom scaled to
    unit variance (`t_alpha(dof) * sqrt((dof - 2) / dof)`), for fatter tails.

    Args:
        vol_forecast: Daily volatility forecasts (standard deviations, >= 0): a number, an
            array, a Series or a wide DataFrame. NaN gives NaN.
        alpha: Tail probability in (0, 0.5) (0.01 for a 99% VaR).
        dist: `"normal"` or `"t"`.
        dof: Degrees of freedom of `"t"`, an int > 2.

    Returns:
        VaR as positive loss fractions, shaped like `vol_forecast` (a float for a number).

    Raises:
        ValueError: If `alpha`, `dist` or `dof` is invalid or a volatility is negative.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5). Received: alpha={alpha!r}")
    if dist not in _DISTRIBUTIONS:
        raise ValueError(f"dist must be one of {_DISTRIBUTIONS}. Received: dist={dist!r}")
    if dist == "normal":
        quantile = stats.norm.ppf(alpha)
    else:
        if isinstance(dof, bool) or not isinstance(dof, Integral) or dof <= 2:
            raise ValueError(f"dof must be an int > 2 (finite variance). Received: dof={dof!r}")
        quantile = stats.t.ppf(alpha, dof) * np.sqrt((dof - 2) / dof)
    values = np.asarray(vol_forecast, dtype=np.float64)
    if np.any(values < 0):
        raise ValueError(f"vol_forecast must be >= 0. Received: min={np.nanmin(values)}")
    var = vol_forecast * -quantile
    return float(var) if np.ndim(var) == 0 else var


def var_backtest(returns, var, alpha: float):
    """Kupiec test of VaR forecasts against the returns they were made for.

    Args:
        returns: Forward returns aligned to the VaR's dates (see `forward_returns`): a Series
            or array, or a wide DataFrame of several assets.
        var: VaR forecasts as positive loss fractions, in the same layout. Pandas inputs are
            aligned on their labels.
        alpha: Tail probability the VaR was made for.

    Rows where the return or the VaR is NaN (warm-up, the last date) are left out.

    Returns:
        For 1-D input, the dict of `metazoo.metrics.var_report` (`n_obs`, `n_breaches`,
        `breach_rate`, `expected_rate`, `lr`, `p_value`); for DataFrames, a DataFrame with
        one such row per column.

    Raises:
        ValueError: If the inputs do not line up or no row has both values.
    """
    if isinstance(returns, pd.DataFrame) and isinstance(var, pd.DataFrame):
        missing = returns.columns.difference(var.columns).tolist()
        if missing:
            raise ValueError(f"var must have a column for each asset. Received: lacks {missing}")
        reports = {name: var_backtest(returns[name], var[name], alpha) for name in returns}
        return pd.DataFrame.from_dict(reports, orient="index")
    if isinstance(returns, pd.Series) and isinstance(var, pd.Series):
        returns, var = returns.align(var, join="inner")
    returns = np.asarray(returns, dtype=np.float64)
    var = np.asarray(var, dtype=np.float64)
    if returns.ndim != 1 or var.shape != returns.shape:
        raise ValueError(
            "returns and var must be 1-D of one length, or two DataFrames. "
            f"Received: returns.shape={returns.shape}, var.shape={var.shape}"
        )
    known = ~(np.isnan(returns) | np.isnan(var))
    return var_report(returns[known], var[known], alpha)
