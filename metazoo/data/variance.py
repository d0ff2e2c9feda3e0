"""Daily variance proxies, scale-free variance features, variance targets and the map back
from log variance to variance.

**Proxies.** Each is a daily variance estimate of one symbol at date t, from its prices of t
(and the previous close for the squared return), in squared log-return units:

| proxy | needs | daily value |
|---|---|---|
| `squared_return` | close | r_t^2, r_t = ln(C_t / C_{t-1}) |
| `parkinson` | high, low | ln(H/L)^2 / (4 ln 2) (Parkinson 1980) |
| `garman_klass` | OHLC | 0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2 (Garman & Klass 1980) |
| `rogers_satchell` | OHLC | ln(H/C) ln(H/O) + ln(L/C) ln(L/O) (Rogers & Satchell 1991) |

The range proxies see only the trading session (open to close); the squared return also
carries the overnight move, so their levels differ: score every model against one proxy.

**Logs.** A variance is raised to `MIN_VARIANCE` (1e-12, a daily volatility of 1e-6)
before its log is taken, so an unchanged close gives a large negative log variance, not
`-inf`. Above the floor, scaling an asset's returns by `c` shifts every log variance by
exactly `2 log c`; the features here are scale-free in that sense.

**Back to variance.** A forecast `m` of the log variance is the conditional *median* of the
variance, not its mean: `E[v] = exp(m) * E[exp(e)]` with `e` the log forecast error. The
factor is estimated on training residuals `e_i = log v_i - m_i` by `smearing_factor`
(Duan 1983: `mean(exp(e_i))`, no distributional assumption) or `lognormal_factor`
(`exp(s^2 / 2)`, `s^2` the residual variance, exact if `e` is Gaussian). For the squared
return the log error is close to a log chi-square(1), far from Gaussian, and the lognormal
factor over-corrects (about 11.8 against the exact 3.56 for a chi-square(1) error of known
variance): prefer the smearing estimate. A model trained with QLIKE on log-variance outputs
(`metazoo.models.QLIKE(log_pred=True)`) forecasts the mean directly and needs no factor.

References:
    Duan, N. (1983). Smearing estimate: a nonparametric retransformation method. Journal of
    the American Statistical Association, 78(383), 605-610.
    Rogers, L. C. G., & Satchell, S. E. (1991). Estimating variance from high, low and
    closing prices. The Annals of Applied Probability, 1(4), 504-512.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MIN_VARIANCE = 1e-12
"""Variances are raised to this before their log is taken."""

PROXIES = ("squared_return", "parkinson", "garman_klass", "rogers_satchell")

PROXY_FIELDS = {
    "squared_return": ("close",),
    "parkinson": ("high", "low"),
    "garman_klass": ("open", "high", "low", "close"),
    "rogers_satchell": ("open", "high", "low", "close"),
}

VARIANCE_TARGET_KINDS = ("rv", "log_rv")
"""`rv:<proxy>`: the variance proxy ahead; `log_rv:<proxy>`: its log."""

VARIANCE_TARGETS = tuple(f"{kind}:{proxy}" for kind in VARIANCE_TARGET_KINDS for proxy in PROXIES)


def daily_proxy(g: pd.DataFrame, proxy: str) -> pd.Series:
    """The daily variance proxy of one symbol's rows `g` (see the module docstring)."""
    if proxy == "squared_return":
        return np.log(g["close"]).diff() ** 2
    hl = np.log(g["high"] / g["low"])
    if proxy == "parkinson":
        return hl**2 / (4 * np.log(2))
    co = np.log(g["close"] / g["open"])
    if proxy == "garman_klass":
        # >= 0 since |ln(C/O)| <= ln(H/L); the clip only absorbs rounding.
        return (0.5 * hl**2 - (2 * np.log(2) - 1) * co**2).clip(lower=0)
    if proxy == "rogers_satchell":
        high, low = np.log(g["high"]), np.log(g["low"])
        close, open_ = np.log(g["close"]), np.log(g["open"])
        return ((high - close) * (high - open_) + (low - close) * (low - open_)).clip(lower=0)
    raise ValueError(f"proxy must be one of {PROXIES}. Received: proxy={proxy!r}")


def log_variance(values):
    """`log(max(values, MIN_VARIANCE))`; NaN stays NaN."""
    return np.log(np.maximum(values, MIN_VARIANCE))


def log_trailing_variance(g: pd.DataFrame, window: int, proxy: str) -> pd.Series:
    """Log of the mean daily proxy over the last `window` days up to t (a HAR component)."""
    mean = daily_proxy(g, proxy).rolling(window, min_periods=window).mean()
    return log_variance(mean)


def vol_normalized_return(g: pd.DataFrame, window: int) -> pd.Series:
    """`r_t / sqrt(mean(r^2 over t - window ... t - 1))`: the return in units of the
    volatility known before it; 0.0 where that volatility is 0 (a flat stretch)."""
    returns = np.log(g["close"]).diff()
    vol = np.sqrt((returns**2).rolling(window, min_periods=window).mean().shift(1))
    return (returns / vol.where(vol > 0)).where(~(vol == 0), 0.0)


def parse_variance_target(target: str) -> tuple[str, str] | None:
    """`("rv" | "log_rv", proxy)` for a variance target name, None for any other string."""
    if target not in VARIANCE_TARGETS:
        return None
    kind, _, proxy = target.partition(":")
    return kind, proxy


def variance_target_names(target: str, horizon: int, cumulative: bool) -> list[str]:
    """Columns of a variance target: `log_rv_<proxy>_1 ... _h`, or `..._mean_h` if cumulative."""
    stem = target.replace(":", "_")
    if cumulative:
        return [f"{stem}_mean_{horizon}"]
    return [f"{stem}_{step}" for step in range(1, horizon + 1)]


def variance_targets(frame: pd.DataFrame, target: str, horizon: int, cumulative: bool):
    """`(n_rows, n_targets)` values of a variance target, NaN where the future is unknown.

    Per day (`cumulative=False`), column j is the proxy on day t + j + 1; cumulative, the
    one column is the *mean* proxy over days t + 1 ... t + horizon (the average daily
    variance over the horizon, comparable across horizons). `log_rv` takes the log last
    (the log of the mean, not the mean of logs).
    """
    kind, proxy = parse_variance_target(target)
    fields = list(PROXY_FIELDS[proxy])
    lacking = [f for f in fields if f not in frame.columns]
    if not lacking:
        empty = frame.groupby("symbol", sort=False)[fields].apply(lambda g: g.isna().all().any())
        lacking = sorted(empty.index[empty])
    if lacking:
        raise ValueError(
            f"target {target!r} needs {fields}, which {lacking} lack; use "
            f"'{kind}:squared_return' for close-only data. Received: target={target!r}"
        )
    proxies = pd.concat(
        [daily_proxy(g, proxy) for _, g in frame.groupby("symbol", sort=False)]
    ).reindex(frame.index)
    by_symbol = proxies.groupby(frame["symbol"], sort=False)
    ahead = np.column_stack([by_symbol.shift(-step) for step in range(1, horizon + 1)])
    if cumulative:
        ahead = ahead.mean(axis=1, keepdims=True)  # NaN if any day ahead is unknown
    return log_variance(ahead) if kind == "log_rv" else ahead


def smearing_factor(residuals) -> float:
    """Duan's smearing factor `mean(exp(e))` of log forecast errors `e = log v - m`.

    Args:
        residuals: Training residuals of a log-variance model, finite, at least one.

    Returns:
        The factor `f` so that `exp(m) * f` estimates the mean variance.
    """
    e = _residuals(residuals)
    return float(np.mean(np.exp(e)))


def lognormal_factor(residuals) -> float:
    """`exp(s^2 / 2)` with `s^2` the variance of log forecast errors `e = log v - m`
    around their mean, times `exp(mean(e))` (so a biased log model is corrected too)."""
    e = _residuals(residuals)
    return float(np.exp(e.mean() + 0.5 * e.var()))


def to_variance(log_forecast, factor: float = 1.0):
    """Variance forecasts `exp(m) * factor` from log-variance forecasts `m`.

    Args:
        log_forecast: Log-variance forecasts, any shape.
        factor: Bias correction from `smearing_factor` or `lognormal_factor` (> 0); 1.0
            gives the median forecast.
    """
    if (
        isinstance(factor, bool)
        or not np.isscalar(factor)
        or not np.isfinite(factor)
        or factor <= 0
    ):
        raise ValueError(f"factor must be a positive finite number. Received: factor={factor!r}")
    return np.exp(np.asarray(log_forecast, dtype=np.float64)) * float(factor)


def _residuals(residuals) -> np.ndarray:
    e = np.asarray(residuals, dtype=np.float64).ravel()
    if e.size == 0 or not np.isfinite(e).all():
        raise ValueError(
            "residuals expected a non-empty array of finite log forecast errors. "
            f"Received: size={e.size}, non-finite={int(np.count_nonzero(~np.isfinite(e)))}"
        )
    return e
