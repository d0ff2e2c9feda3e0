"""Whether one forecast's losses are really lower than another's: the Diebold-Mariano test
with HAC standard errors, and the model confidence set of a table of losses.

The long-run variance comes from `arch.covariance.kernel.Bartlett` (Newey-West weights) and
the model confidence set is `arch.bootstrap.MCS`; this module fixes the conventions (signs,
alternatives, bandwidths, seeds) and checks the inputs.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd
from arch.bootstrap import MCS
from arch.covariance.kernel import Bartlett
from scipy import stats

from metazoo.validation import check_choice, check_count, check_in_range

__all__ = ["diebold_mariano", "model_confidence_set", "newey_west_bandwidth", "qlike_losses"]

_ALTERNATIVES = ("two-sided", "less", "greater")


def qlike_losses(var_true, var_pred, floor: float = 1e-12) -> np.ndarray:
    """QLIKE of each forecast, `v / h - log(v / h) - 1` with `v` raised to `floor`: the
    per-period losses whose mean is `metazoo.metrics.qlike`, to feed `diebold_mariano`.

    Args:
        var_true: Realized variances `(n,)`, finite, >= 0.
        var_pred: Variance forecasts `(n,)`, finite, > 0.
        floor: Positive lower bound applied to `var_true`.
    """
    v = np.asarray(var_true, dtype=np.float64)
    h = np.asarray(var_pred, dtype=np.float64)
    if v.shape != h.shape or not (np.isfinite(v).all() and np.isfinite(h).all()):
        raise ValueError(
            "`var_pred` expected finite forecasts shaped like var_true. "
            f"Received: shapes {v.shape} and {h.shape}"
        )
    if (v < 0).any() or (h <= 0).any():
        raise ValueError(
            "`var_pred` expected forecasts > 0 and var_true >= 0. "
            f"Received: min(var_true)={v.min()}, min(var_pred)={h.min()}"
        )
    ratio = np.maximum(v, floor) / h
    return ratio - np.log(ratio) - 1.0


def newey_west_bandwidth(n_obs: int) -> int:
    """The Newey-West (1994) rule of thumb for the Bartlett kernel: `floor(4 (n / 100)^(2/9))`."""
    return int(np.floor(4 * (n_obs / 100) ** (2 / 9)))


def diebold_mariano(
    loss_a,
    loss_b,
    horizon: int = 1,
    alternative: str = "two-sided",
    bandwidth: int | str | None = None,
    small_sample: bool = False,
) -> dict:
    """Diebold-Mariano test of equal expected loss of two forecasts of the same series.

    With the loss differential `d_t = loss_a_t - loss_b_t`, the statistic is
    `DM = mean(d) / sqrt(lrv / n)`, `lrv` the long-run variance of `d` by the Bartlett
    (Newey-West) kernel: `gamma_0 + 2 sum_{j=1}^{L} (1 - j / (L + 1)) gamma_j`, with
    autocovariances `gamma_j = sum_t (d_t - mean)(d_{t-j} - mean) / n`. Under equal
    expected loss DM is asymptotically standard normal. Negative DM: `a` has lower loss.

    Args:
        loss_a: `(n,)` losses of forecast `a` (e.g. QLIKE per day), finite.
        loss_b: `(n,)` losses of forecast `b` on the same dates.
        horizon: Forecast horizon `h` in periods: `h`-step forecasts have losses correlated
            up to lag `h - 1`, the default bandwidth.
        alternative: `"two-sided"` (the losses differ), `"less"` (`a` has *lower*
            expected loss than `b`: a one-sided test that `a` beats `b`) or `"greater"`.
        bandwidth: Lags `L` of the kernel: None for `horizon - 1`, `"newey-west"` for
            `newey_west_bandwidth(n)`, or an int >= 0.
        small_sample: Apply the Harvey, Leybourne and Newbold (1997) correction
            `sqrt((n + 1 - 2h + h (h - 1) / n) / n)` to DM and take p-values from a t with
            `n - 1` degrees of freedom.

    Returns:
        Dict with `statistic`, `p_value`, `mean_difference` (mean of `d`), `long_run_variance`,
        `bandwidth`, `n_obs` and `alternative`. If `d` is constant, its variance is 0 and
        DM is 0 (equal losses) or +-inf.

    Raises:
        ValueError: If the losses differ in shape, are not finite, number fewer than 3, or
            an argument is invalid.

    References:
        Diebold, F. X., & Mariano, R. S. (1995). Comparing predictive accuracy. Journal of
        Business & Economic Statistics, 13(3), 253-263.
        Harvey, D., Leybourne, S., & Newbold, P. (1997). Testing the equality of prediction
        mean squared errors. International Journal of Forecasting, 13(2), 281-291.
    """
    a, b = _losses(loss_a, "loss_a"), _losses(loss_b, "loss_b")
    if a.shape != b.shape:
        raise ValueError(
            f"`loss_b` expected the shape of loss_a {a.shape}. Received: shape {b.shape}"
        )
    horizon = check_count("horizon", horizon, allow_float=False)
    check_choice("alternative", alternative, _ALTERNATIVES)
    d = a - b
    n = d.size
    lags = _bandwidth(bandwidth, horizon, n)
    lrv = float(np.squeeze(Bartlett(d, bandwidth=lags, center=True).cov.long_run))
    mean = float(d.mean())
    if lrv > 0:
        statistic = mean / np.sqrt(lrv / n)
    else:
        statistic = 0.0 if mean == 0 else float(np.copysign(np.inf, mean))
    distribution = stats.norm
    if small_sample:
        h = int(horizon)
        statistic *= np.sqrt(max(n + 1 - 2 * h + h * (h - 1) / n, 0.0) / n)
        distribution = stats.t(df=n - 1)
    if alternative == "less":
        p_value = distribution.cdf(statistic)
    elif alternative == "greater":
        p_value = distribution.sf(statistic)
    else:
        p_value = 2 * distribution.sf(abs(statistic))
    return {
        "statistic": float(statistic),
        "p_value": float(min(p_value, 1.0)),
        "mean_difference": mean,
        "long_run_variance": lrv,
        "bandwidth": lags,
        "n_obs": n,
        "alternative": alternative,
    }


def model_confidence_set(
    losses,
    size: float = 0.1,
    reps: int = 1000,
    block_size: int | None = None,
    method: str = "R",
    seed: int = 0,
) -> pd.DataFrame:
    """The model confidence set (Hansen, Lunde & Nason 2011) of a table of losses.

    The models that, at level `1 - size`, cannot be told apart from the best: models are
    eliminated one by one while the test of equal expected loss rejects, with a stationary
    block bootstrap of the loss differentials (`arch.bootstrap.MCS`).

    Args:
        losses: `(n_periods, n_models)` DataFrame of losses, one column per model (rows are
            dates on which every model has a loss), finite.
        size: Test size in (0, 1); 0.1 gives the 90% model confidence set.
        reps: Bootstrap replications, an int >= 1.
        block_size: Mean block length of the stationary bootstrap (default: arch's,
            `sqrt(n_periods)`).
        method: `"R"` (range statistic) or `"max"`.
        seed: Seed of the bootstrap; the same seed gives the same set.

    Returns:
        DataFrame indexed by model in the column order of `losses`, with `p_value` (the MCS
        p-value) and `included` (True for members of the set).

    Raises:
        TypeError: If `losses` is not a DataFrame.
        ValueError: If it has fewer than 2 models or 2 rows, a non-finite loss, or an
            argument is invalid.

    References:
        Hansen, P. R., Lunde, A., & Nason, J. M. (2011). The model confidence set.
        Econometrica, 79(2), 453-497.
    """
    if not isinstance(losses, pd.DataFrame):
        raise TypeError(
            "`losses` expected a DataFrame with one column of losses per model. "
            f"Received: {type(losses).__name__}"
        )
    values = losses.to_numpy(dtype=np.float64)
    if values.shape[1] < 2 or values.shape[0] < 2 or not np.isfinite(values).all():
        raise ValueError(
            "`losses` expected >= 2 rows and >= 2 model columns of finite losses. "
            f"Received: shape {values.shape}, {int(np.count_nonzero(~np.isfinite(values)))} "
            "non-finite value(s)"
        )
    check_in_range("size", size, 0.0, 1.0)
    reps = check_count("reps", reps, allow_float=False)
    names = [str(c) for c in losses.columns]
    if len(set(names)) != len(names):
        raise ValueError(f"`losses` expected unique model names. Received: {names}")
    frame = pd.DataFrame(values, columns=names)
    mcs = MCS(frame, size=size, reps=int(reps), block_size=block_size, method=method, seed=seed)
    mcs.compute()
    p_values = mcs.pvalues.iloc[:, 0].reindex(names)
    included = set(mcs.included)
    return pd.DataFrame(
        {"p_value": p_values.to_numpy(), "included": [n in included for n in names]},
        index=pd.Index(names, name="model"),
    )


def _losses(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size < 3 or not np.isfinite(array).all():
        raise ValueError(
            f"`{name}` expected a 1-D array of at least 3 finite losses. Received: shape "
            f"{array.shape}, {int(np.count_nonzero(~np.isfinite(array)))} non-finite value(s)"
        )
    return array


def _bandwidth(bandwidth, horizon: int, n: int) -> int:
    if bandwidth is None:
        lags = int(horizon) - 1
    elif bandwidth == "newey-west":
        lags = newey_west_bandwidth(n)
    elif isinstance(bandwidth, Integral) and not isinstance(bandwidth, bool) and bandwidth >= 0:
        lags = int(bandwidth)
    else:
        raise ValueError(
            "`bandwidth` expected None, 'newey-west' or an int >= 0. "
            f"Received: bandwidth={bandwidth!r}"
        )
    return min(lags, n - 1)
