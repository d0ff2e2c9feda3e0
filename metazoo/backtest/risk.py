"""Risk from variance forecasts: VaR and expected shortfall, their backtests, and positions
sized to a volatility target.

VaR is a *positive loss fraction* (as in `metazoo.metrics.finance`): the 1% VaR `0.03` says
a daily return below `-0.03` should happen on 1% of days. A VaR made at the close of t is for
the return from t to t + 1, so it is tested against `forward_returns` on the same dates.
Breaches are tested for their rate (Kupiec) and for clustering (Christoffersen).

Volatility targeting sizes a long position in each asset from the variance forecast made at
the close of t, `target_vol / sqrt(periods_per_year * h_t)`, held to t + 1; the test of a
variance forecast is then how closely the realized volatility of the positions, net of
costs, tracks the target (`vol_target_backtest`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

from metazoo.backtest.portfolio import backtest
from metazoo.backtest.signals import to_wide
from metazoo.metrics.finance import var_breaches, var_report
from metazoo.validation import check_choice, check_count, check_in_range, check_positive

__all__ = [
    "christoffersen_test",
    "expected_shortfall",
    "inverse_vol_positions",
    "pooled_christoffersen_test",
    "value_at_risk",
    "var_backtest",
    "var_from_variance",
    "var_tests",
    "vol_target_backtest",
    "vol_target_positions",
    "vol_tracking",
]

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
    check_in_range("alpha", alpha, 0.0, 0.5)
    quantile = _standard_quantile(alpha, dist, dof)
    values = np.asarray(vol_forecast, dtype=np.float64)
    if np.any(values < 0):
        raise ValueError(f"vol_forecast must be >= 0. Received: min={np.nanmin(values)}")
    var = vol_forecast * -quantile
    return float(var) if np.ndim(var) == 0 else var


def _standard_quantile(alpha, dist, dof) -> float:
    """The `alpha` quantile of the zero-mean, unit-variance return distribution."""
    check_choice("dist", dist, _DISTRIBUTIONS)
    if dist == "normal":
        return float(stats.norm.ppf(alpha))
    check_count("dof", dof, 3, allow_float=False)  # a finite variance
    return float(stats.t.ppf(alpha, dof) * np.sqrt((dof - 2) / dof))


def var_from_variance(variance_forecast, alpha: float = 0.01, dist: str = "normal", dof: int = 5):
    """VaR from a daily *variance* forecast: `value_at_risk(sqrt(variance_forecast), ...)`.

    Raises:
        ValueError: If a variance is negative, or as `value_at_risk`.
    """
    values = np.asarray(variance_forecast, dtype=np.float64)
    if np.any(values < 0):
        raise ValueError(
            f"`variance_forecast` expected variances >= 0. Received: min={np.nanmin(values)}"
        )
    return value_at_risk(np.sqrt(variance_forecast), alpha, dist, dof)


def expected_shortfall(variance_forecast, alpha: float = 0.01, dist: str = "normal", dof: int = 5):
    """Expected shortfall (the mean loss beyond the VaR) from a daily variance forecast.

    For a zero-mean return of variance `h`, as a positive loss fraction:
    normal, `sqrt(h) * pdf(z) / alpha` with `z` the `alpha` quantile; Student t with `n = dof`
    scaled to unit variance, `sqrt(h) * sqrt((n - 2) / n) * pdf_t(q) / alpha * (n + q^2) / (n - 1)`
    with `q` the t quantile.

    Args:
        variance_forecast: Daily variance forecasts (>= 0), a number, array, Series or
            DataFrame. NaN gives NaN.
        alpha: Tail probability in (0, 0.5).
        dist: `"normal"` or `"t"`.
        dof: Degrees of freedom of `"t"`, an int > 2.

    Returns:
        Expected shortfall shaped like `variance_forecast`; always >= the VaR of the same
        `alpha`.
    """
    var = var_from_variance(variance_forecast, alpha, dist, dof)  # checks every argument
    if dist == "normal":
        z = stats.norm.ppf(alpha)
        ratio = stats.norm.pdf(z) / alpha / -z
    else:
        q = stats.t.ppf(alpha, dof)
        ratio = stats.t.pdf(q, dof) / alpha * (dof + q**2) / (dof - 1) / -q
    out = var * ratio  # ES / VaR depends only on the distribution
    return float(out) if np.ndim(out) == 0 else out


def christoffersen_test(breaches, alpha: float) -> dict:
    """Christoffersen's tests of VaR breaches: independence and conditional coverage.

    From the transitions of the breach indicator `I_t` (counts `n_ij` of `I_{t-1} = i`,
    `I_t = j`), with `p01 = n01 / (n00 + n01)`, `p11 = n11 / (n10 + n11)` and
    `p = (n01 + n11) / (n - 1)`:

    - independence: `LR_ind = -2 [log L(p, p) - log L(p01, p11)]`, chi-square(1); a small
      p-value says breaches cluster (a breach makes the next more likely);
    - conditional coverage: `LR_cc = -2 [log L(alpha, alpha) - log L(p01, p11)]`,
      chi-square(2): the rate is `alpha` *and* breaches are independent. It equals Kupiec's
      LR on `I_1 ... I_{n-1}` plus `LR_ind`.

    where `log L(a, b) = n00 log(1 - a) + n01 log a + n10 log(1 - b) + n11 log b`
    (`0 log 0 = 0`).

    Args:
        breaches: `(n,)` booleans in time order (see `metazoo.metrics.var_breaches`), n >= 2.
        alpha: The VaR's tail probability, in (0, 1).

    Returns:
        Dict with `n00, n01, n10, n11`, `lr_ind`, `p_value_ind`, `lr_cc`, `p_value_cc`.

    References:
        Christoffersen, P. F. (1998). Evaluating interval forecasts. International Economic
        Review, 39(4), 841-862.
    """
    hits = np.asarray(breaches)
    if hits.ndim != 1 or hits.size < 2 or not np.isin(hits, (0, 1)).all():
        raise ValueError(
            "`breaches` expected a 1-D array of at least 2 booleans. "
            f"Received: shape {hits.shape}, values {np.unique(hits)[:5]}"
        )
    check_in_range("alpha", alpha, 0.0, 1.0)
    hits = hits.astype(int)
    return _christoffersen(_transitions(hits[:-1], hits[1:]), alpha)


def pooled_christoffersen_test(breaches, groups, alpha: float) -> dict:
    """Christoffersen's tests on the breaches of several independent series at once.

    The transition counts `n_ij` are summed over the series (one per asset, or per stretch
    of consecutive days): a transition is counted only between two consecutive values of
    the same series, never across two. The statistics are then those of
    `christoffersen_test` on the summed counts.

    Args:
        breaches: `(n,)` booleans, each series' values contiguous and in time order.
        groups: `(n,)` labels of the series each value belongs to.
        alpha: The VaR's tail probability, in (0, 1).

    Returns:
        The dict of `christoffersen_test`, from the summed counts.

    Raises:
        ValueError: If the inputs differ in length, a series is not contiguous, a breach
            is not boolean, or no series has 2 values.
    """
    hits, labels = np.asarray(breaches), np.asarray(groups)
    if hits.ndim != 1 or labels.shape != hits.shape or not np.isin(hits, (0, 1)).all():
        raise ValueError(
            "`breaches` expected a 1-D array of booleans with one group label each. "
            f"Received: shapes {hits.shape} and {labels.shape}, values {np.unique(hits)[:5]}"
        )
    same = labels[1:] == labels[:-1]
    if len(labels) and int(np.sum(~same)) + 1 != len(pd.unique(labels)):
        raise ValueError(
            "`groups` expected the values of each series to be contiguous. Received: a "
            "label that comes back after another"
        )
    if not same.any():
        raise ValueError("`breaches` expected a series of 2 or more values. Received: none")
    hits = hits.astype(int)
    return _christoffersen(_transitions(hits[:-1][same], hits[1:][same]), alpha)


def _transitions(before, after) -> dict:
    """Counts `n_ij` of transitions from `before == i` to `after == j`."""
    return {f"n{i}{j}": int(np.sum((before == i) & (after == j))) for i in (0, 1) for j in (0, 1)}


def _christoffersen(counts: dict, alpha) -> dict:
    """The independence and conditional-coverage LR tests from transition counts."""
    check_in_range("alpha", alpha, 0.0, 1.0)
    n00, n01, n10, n11 = (counts[k] for k in ("n00", "n01", "n10", "n11"))

    def log_l(a, b):
        return (
            special.xlog1py(n00, -a)
            + special.xlogy(n01, a)
            + special.xlog1py(n10, -b)
            + special.xlogy(n11, b)
        )

    p01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    p11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    p = (n01 + n11) / (n00 + n01 + n10 + n11)
    best = log_l(p01, p11)
    lr_ind = max(0.0, float(-2 * (log_l(p, p) - best)))
    lr_cc = max(0.0, float(-2 * (log_l(alpha, alpha) - best)))
    return {
        "n00": n00,
        "n01": n01,
        "n10": n10,
        "n11": n11,
        "lr_ind": lr_ind,
        "p_value_ind": float(stats.chi2.sf(lr_ind, 1)),
        "lr_cc": lr_cc,
        "p_value_cc": float(stats.chi2.sf(lr_cc, 2)),
    }


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
        one such row per column. `var_tests` adds Christoffersen's tests.

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


def var_tests(returns, var, alpha: float) -> dict:
    """Kupiec's and Christoffersen's tests of VaR forecasts, for one asset.

    Args:
        returns: `(n,)` forward returns aligned to the VaR's dates, a Series or array in
            time order.
        var: `(n,)` VaR forecasts as positive loss fractions (Series are aligned).
        alpha: Tail probability the VaR was made for.

    Rows where either value is NaN are left out (the breach sequence is the known rows in
    time order).

    Returns:
        The dict of `var_backtest` (Kupiec: `lr`, `p_value`) updated with that of
        `christoffersen_test` (`lr_ind`, `p_value_ind`, `lr_cc`, `p_value_cc`, counts).
    """
    if isinstance(returns, pd.Series) and isinstance(var, pd.Series):
        returns, var = returns.align(var, join="inner")
    returns = np.asarray(returns, dtype=np.float64)
    var = np.asarray(var, dtype=np.float64)
    report = var_backtest(returns, var, alpha)
    known = ~(np.isnan(returns) | np.isnan(var))
    return {**report, **christoffersen_test(var_breaches(returns[known], var[known]), alpha)}


def vol_target_positions(
    variance_forecasts,
    target_vol: float = 0.10,
    max_leverage: float = 2.0,
    periods_per_year: float = 252,
):
    """Long positions sized so each asset's forecast annualized volatility is `target_vol`.

    `position = min(target_vol / sqrt(periods_per_year * h), max_leverage)` for the daily
    variance forecast `h` made at the close of t (a forecast of 0 gets the cap). NaN
    forecasts (warm-up) give a flat position, as in `positions_from_forecasts`.

    Args:
        variance_forecasts: `(n_days, n_assets)` wide daily variance forecasts (>= 0), a
            Series, or a long frame with one value column (see `to_wide`).
        target_vol: Annualized volatility target per asset, > 0.
        max_leverage: Cap on each position, > 0.
        periods_per_year: Periods in a year.

    Returns:
        Wide DataFrame of positions.
    """
    variance = _wide_variance(variance_forecasts)
    target = check_positive("target_vol", target_vol)
    cap = check_positive("max_leverage", max_leverage)
    annual = np.sqrt(variance * check_positive("periods_per_year", periods_per_year))
    with np.errstate(divide="ignore"):
        size = target / annual
    return size.clip(upper=cap).fillna(0.0)


def inverse_vol_positions(
    variance_forecasts,
    target_vol: float = 0.10,
    max_leverage: float = 2.0,
    periods_per_year: float = 252,
):
    """An inverse-volatility portfolio across assets, sized to a volatility target.

    Each asset gets weight `1 / sigma_i` normalized over the assets with a forecast on that
    date (equal risk from each), then the book is scaled so its forecast volatility is
    `target_vol` under the assumption that the assets are *uncorrelated*:
    `sigma_p^2 = sum w_i^2 sigma_i^2`. Correlated assets (stock indices) then realize more
    than the target; `vol_tracking` measures by how much. The gross exposure is capped at
    `max_leverage`.

    Args:
        variance_forecasts: `(n_days, n_assets)` wide daily variance forecasts (> 0 where
            known; NaN for an asset without a forecast, which gets 0).
        target_vol: Annualized volatility target of the portfolio, > 0.
        max_leverage: Cap on the sum of the positions, > 0.
        periods_per_year: Periods in a year.

    Returns:
        Wide DataFrame of positions (fractions of capital).
    """
    variance = _wide_variance(variance_forecasts)
    target = check_positive("target_vol", target_vol)
    cap = check_positive("max_leverage", max_leverage)
    sigma = np.sqrt(
        variance.where(variance > 0) * check_positive("periods_per_year", periods_per_year)
    )
    raw = 1.0 / sigma
    weights = raw.div(raw.sum(axis=1), axis=0)
    forecast_vol = np.sqrt((weights**2 * sigma**2).sum(axis=1, min_count=1))
    positions = weights.mul(target / forecast_vol, axis=0)
    gross = positions.sum(axis=1)
    positions = positions.mul((cap / gross).clip(upper=1.0), axis=0)
    return positions.fillna(0.0)


def vol_tracking(
    net_returns, target_vol: float, window: int = 63, periods_per_year: float = 252
) -> dict:
    """How closely a strategy's realized volatility tracks its target.

    Args:
        net_returns: Daily net returns of the strategy (a Series or array in time order).
        target_vol: The annualized target.
        window: Days per rolling window of realized volatility (63: a quarter).
        periods_per_year: Periods in a year.

    Returns:
        Dict with `realized_vol` (annualized over the whole sample), `vol_ratio`
        (`realized_vol / target_vol`), `mean_abs_log_ratio` (mean over rolling windows of
        `abs(log(window vol / target))`: 0 is perfect, 0.1 about 10% off) and
        `within_20pct` (share of windows whose volatility is within 20% of the target).
    """
    returns = np.asarray(net_returns, dtype=np.float64)
    target = check_positive("target_vol", target_vol)
    per_year = check_positive("periods_per_year", periods_per_year)
    check_count("window", window, 2, allow_float=False)
    if returns.ndim != 1 or returns.size < window or not np.isfinite(returns).all():
        raise ValueError(
            f"`net_returns` expected at least window={window} finite daily returns. "
            f"Received: shape {returns.shape}"
        )
    realized = float(np.sqrt(np.mean(returns**2) * per_year))
    rolling = np.sqrt(pd.Series(returns**2).rolling(window).mean().dropna() * per_year)
    with np.errstate(divide="ignore"):
        log_ratio = np.abs(np.log(rolling / target))
    return {
        "realized_vol": realized,
        "vol_ratio": realized / target,
        "mean_abs_log_ratio": float(log_ratio.mean()),
        "within_20pct": float(np.mean((rolling / target).between(0.8, 1.2))),
    }


def vol_target_backtest(
    variance_forecasts,
    returns,
    *,
    target_vol: float = 0.10,
    cost_bps: float,
    portfolio: bool = False,
    max_leverage: float = 2.0,
    window: int = 63,
    periods_per_year: float = 252,
):
    """Backtest of volatility-targeted positions from variance forecasts, and its tracking.

    Args:
        variance_forecasts: `(n_days, n_assets)` wide daily variance forecasts made at each
            close (see `vol_target_positions`).
        returns: Forward simple returns on the same dates (see `forward_returns`).
        target_vol: Annualized volatility target (per asset, or of the portfolio).
        cost_bps: Cost per unit of turnover in basis points (required, as in `backtest`).
        portfolio: False: one position per asset, each scored on its own; True: the
            inverse-volatility portfolio (`inverse_vol_positions`) scored as one book.
        max_leverage: Cap per asset (or on the portfolio's gross exposure).
        window: Days per rolling window in `vol_tracking`.
        periods_per_year: Periods in a year.

    Returns:
        `(result, tracking)`: the `BacktestResult` and, for a portfolio, the dict of
        `vol_tracking` of its net returns; per asset, a DataFrame with one `vol_tracking` row
        per asset, on the dates the asset has a forecast.
    """
    variance = _wide_variance(variance_forecasts)
    size = inverse_vol_positions if portfolio else vol_target_positions
    positions = size(variance, target_vol, max_leverage, periods_per_year)
    result = backtest(positions, returns, cost_bps=cost_bps, periods_per_year=periods_per_year)
    if portfolio:
        known = variance.notna().any(axis=1)
        return result, vol_tracking(result.net_returns[known], target_vol, window, periods_per_year)
    rows = {
        asset: vol_tracking(
            result.asset_pnl.loc[variance[asset].notna(), asset],
            target_vol,
            window,
            periods_per_year,
        )
        for asset in variance.columns
    }
    return result, pd.DataFrame.from_dict(rows, orient="index")


def _wide_variance(variance_forecasts) -> pd.DataFrame:
    wide = to_wide(variance_forecasts, name="variance_forecasts")
    if (wide < 0).any().any() or np.isinf(wide.to_numpy()).any():
        raise ValueError(
            "`variance_forecasts` expected finite variances >= 0 (NaN where unknown). "
            f"Received: min={np.nanmin(wide.to_numpy())}, max={np.nanmax(wide.to_numpy())}"
        )
    return wide
