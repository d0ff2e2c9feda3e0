"""Regression baselines: OLS on lagged returns, and the HAR-RV model of realized variance."""

from __future__ import annotations

import numpy as np

from metazoo.baselines.base import (
    VARIANCE_FLOOR,
    Baseline,
    daily_values,
    log_returns,
    shift,
    trailing_mean,
)
from metazoo.data import variance
from metazoo.validation import check_bool, check_choice, check_count

__all__ = ["HARRV", "LinearLags"]


class _PooledOLS(Baseline):
    """OLS with an intercept of every target column on regressors known at `t`.

    One regression pooled across the symbols of the fit frame (rows where a regressor or a
    target is unknown are left out), so every symbol, seen in `fit` or not, gets the same
    coefficients. Variance forecasts are floored at `VARIANCE_FLOOR`; direction forecasts (a
    linear probability model) are clipped to `[0, 1]`.

    Attributes:
        coef_: `(n_targets, n_regressors)` slopes, regressors named by `feature_names_`.
        intercept_: `(n_targets,)` intercepts.
        feature_names_: Names of the regressors.
        n_samples_: Rows the regression was fitted on.
    """

    def _regressors(self, prices) -> np.ndarray:
        """`(n_rows, n_regressors)` regressors of each row, NaN before enough history."""
        raise NotImplementedError

    def _history(self) -> int:
        """Rows of each symbol before its regressors are known."""
        raise NotImplementedError

    def _regressor_names(self) -> tuple:
        raise NotImplementedError

    def _fit(self, prices, y):
        X = self._regressors(prices)
        rows = ~(np.isnan(X).any(axis=1) | np.isnan(y).any(axis=1))
        needed = X.shape[1] + 1
        if rows.sum() < needed:
            raise ValueError(
                f"{type(self).__name__} needs at least {needed} rows with full history and "
                f"known targets to fit (each symbol loses its first {self._history()} rows to "
                f"the regressors and its last {self.horizon_} to the targets). "
                f"Received: {int(rows.sum())} usable of {len(prices)} rows"
            )
        design = np.column_stack([np.ones(rows.sum()), X[rows]])
        solution, *_ = np.linalg.lstsq(design, y[rows], rcond=None)
        self.intercept_ = solution[0]
        self.coef_ = solution[1:].T
        self.feature_names_ = self._regressor_names()
        self.n_samples_ = int(rows.sum())

    def _predict(self, prices):
        forecast = self.intercept_ + self._regressors(prices) @ self.coef_.T
        if self.target_ == "variance":
            return np.maximum(forecast, VARIANCE_FLOOR)  # NaN stays NaN
        if self.target_ == "direction":
            return np.clip(forecast, 0.0, 1.0)
        return forecast


class LinearLags(_PooledOLS):
    """OLS of the target on the last `lags` daily values, pooled across symbols.

    The regressors at `t` are `q_t, q_{t-1}, ..., q_{t-lags+1}` (named `lag_1 ... lag_L`,
    `lag_1` the most recent), where `q` is the daily log return for targets `"return"` and
    `"direction"` (a linear probability model) and the squared daily log return for
    `"variance"`. Each symbol's first `lags` rows have no forecast.

    Args:
        lags: Number of lagged daily values, >= 1.

    Attributes:
        coef_: `(n_targets, lags)` slopes.
        intercept_: `(n_targets,)` intercepts.
        feature_names_: `("lag_1", ..., "lag_L")`.
        n_samples_: Rows the regression was fitted on.
    """

    def __init__(self, lags=5):
        self.lags = lags

    def _check_params(self):
        check_count("lags", self.lags, allow_float=False)

    def _regressor_names(self):
        return tuple(f"lag_{lag}" for lag in range(1, self.lags + 1))

    def _history(self):
        return int(self.lags)

    def _regressors(self, prices):
        values = daily_values(prices, self.target_)
        return np.column_stack([shift(prices, values, lag) for lag in range(self.lags)])


class HARRV(_PooledOLS):
    """Heterogeneous autoregressive model of realized variance (Corsi 2009).

    OLS of each variance target on the daily, weekly and monthly realized variance known at
    `t`: `rv_d = r_t^2`, `rv_w` the mean of `r^2` over the last 5 days and `rv_m` over the last
    22, with the squared daily log return `r^2` as the daily realized variance proxy. One
    regression pooled across symbols; each target column (each day ahead, or the h-day sum)
    gets its own direct regression. Each symbol's first 22 rows have no forecast.
    Only target `"variance"` is supported.

    With `log=True`, the log HAR: OLS of `log(target)` on `log rv_d, log rv_w, log rv_m`
    (variances raised to `metazoo.data.variance.MIN_VARIANCE` first), the same regression as
    the zoo model `har` on `HAR_FEATURES` with MSE. The log forecast `m` is mapped back to a
    variance as `exp(m) * bias_factor_`, the factor estimated on the training residuals:
    Duan's smearing estimate (`"smearing"`, the default), `exp(mean + var / 2)` of the
    residuals (`"lognormal"`) or 1 (`"none"`: the median, not the mean forecast). The
    forecasts are positive by construction.

    Args:
        log: Fit the log HAR instead of HAR on variance levels.
        bias_correction: `"smearing"`, `"lognormal"` or `"none"` (used when `log=True`).

    Attributes:
        coef_: `(n_targets, 3)` slopes on `feature_names_`.
        intercept_: `(n_targets,)` intercepts.
        feature_names_: `("rv_d", "rv_w", "rv_m")`, or `("log_rv_d", "log_rv_w", "log_rv_m")`.
        bias_factor_: `(n_targets,)` factors from log to variance forecasts (`log=True`).
        n_samples_: Rows the regression was fitted on.

    References:
        Corsi, F. (2009). A simple approximate long-memory model of realized volatility.
        Journal of Financial Econometrics, 7(2), 174-196.
        Duan, N. (1983). Smearing estimate: a nonparametric retransformation method.
        Journal of the American Statistical Association, 78(383), 605-610.
    """

    supported_targets = ("variance",)
    windows = (1, 5, 22)

    def __init__(self, log=False, bias_correction="smearing"):
        self.log = log
        self.bias_correction = bias_correction

    def _check_params(self):
        check_bool("log", self.log)
        check_choice("bias_correction", self.bias_correction, _BIAS_CORRECTIONS)

    def _regressor_names(self):
        names = ("rv_d", "rv_w", "rv_m")
        return tuple(f"log_{n}" for n in names) if self.log else names

    def _history(self):
        return max(self.windows)

    def _regressors(self, prices):
        squared = log_returns(prices) ** 2
        levels = np.column_stack([trailing_mean(prices, squared, w) for w in self.windows])
        return variance.log_variance(levels) if self.log else levels

    def _fit(self, prices, y):
        if not self.log:
            return super()._fit(prices, y)
        log_y = variance.log_variance(y)
        super()._fit(prices, log_y)
        residuals = log_y - (self.intercept_ + self._regressors(prices) @ self.coef_.T)
        rows = ~np.isnan(residuals).any(axis=1)
        factor = {
            "smearing": variance.smearing_factor,
            "lognormal": variance.lognormal_factor,
            "none": lambda e: 1.0,
        }[self.bias_correction]
        self.bias_factor_ = np.array([factor(column) for column in residuals[rows].T])

    def _predict(self, prices):
        if not self.log:
            return super()._predict(prices)
        log_forecast = self.intercept_ + self._regressors(prices) @ self.coef_.T
        return np.exp(log_forecast) * self.bias_factor_


_BIAS_CORRECTIONS = ("smearing", "lognormal", "none")
