"""Shared plumbing of the baselines: the fit/predict contract, checks and per-symbol series.

Every baseline forecasts the targets of `metazoo.data.compute_targets` from a long price
frame. `fit(prices, target, horizon, cumulative)` learns its parameters from the rows it is
given (pass training rows only); `predict(prices)` returns one forecast row per row of
`prices`, in the same order, where row `t` is the forecast made at the close of `t` from rows
of the same symbol dated at or before `t`. Pass the whole history before the period you score:
early rows of each symbol, before a baseline has enough history, are NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from metazoo.data.features import TARGETS, check_sorted, compute_targets, target_names

VARIANCE_FLOOR = 1e-12
"""Smallest variance a regression baseline forecasts (QLIKE needs positive forecasts)."""


def forecasts_at(table: pd.DataFrame, windows, columns=None) -> np.ndarray:
    """A baseline's forecasts at the forecast date and symbol of every window.

    Args:
        table: the frame of `Baseline.predict` (`date`, `symbol` and forecast columns).
        windows: a `WindowSet` (its `times` and `symbols` are looked up in `table`).
        columns: the forecast columns, in order; default all but `date` and `symbol`.

    Returns:
        `(len(windows), len(columns))` float64 forecasts in the order of `windows`; NaN
        where `table` has no forecast for a window (too little history before it).
    """
    columns = [c for c in table if c not in ("date", "symbol")] if columns is None else columns
    keys = pd.DataFrame({"date": windows.times, "symbol": np.asarray(windows.symbols).astype(str)})
    found = keys.merge(table, on=["date", "symbol"], how="left", validate="many_to_one")
    return found[list(columns)].to_numpy(dtype=np.float64)


def log_returns(prices: pd.DataFrame) -> np.ndarray:
    """`(n_rows,)` daily log return `ln(C_t / C_{t-1})` of each row; NaN on a symbol's first."""
    close = np.log(prices["close"].to_numpy(dtype=np.float64))
    return group_apply(prices, close, lambda c: np.diff(c, prepend=np.nan))


def daily_values(prices: pd.DataFrame, target: str) -> np.ndarray:
    """The daily quantity a target is made of, known at each row: r, r^2 or 1[r > 0]."""
    returns = log_returns(prices)
    if target == "variance":
        return returns**2
    if target == "direction":
        return np.where(np.isnan(returns), np.nan, (returns > 0).astype(np.float64))
    return returns


def group_apply(prices: pd.DataFrame, values: np.ndarray, function) -> np.ndarray:
    """Apply `function` to each symbol's slice of `values` (rows in date order); same shape."""
    out = np.full(values.shape, np.nan)
    for rows in prices.groupby("symbol", sort=False).indices.values():
        out[rows] = function(values[rows])
    return out


def trailing_mean(prices: pd.DataFrame, values: np.ndarray, window: int) -> np.ndarray:
    """Mean of each symbol's last `window` values up to each row (NaN until the window fills)."""

    def mean(column):
        return pd.Series(column).rolling(window, min_periods=window).mean().to_numpy()

    return group_apply(prices, values, mean)


def shift(prices: pd.DataFrame, values: np.ndarray, periods: int) -> np.ndarray:
    """Each symbol's values moved `periods` rows later (NaN filled in)."""

    def later(column):
        lag = min(periods, len(column))  # a symbol shorter than the shift is all NaN
        return np.concatenate([np.full(lag, np.nan), column[: len(column) - lag]])

    return group_apply(prices, values, later)


class Baseline(BaseEstimator):
    """Base class of the baselines. Subclasses implement `_fit` and `_predict`.

    Attributes (after `fit`):
        target_: The target kind, one of `"return"`, `"variance"`, `"direction"`.
        horizon_: Trading days ahead.
        cumulative_: Whether the target is summed over the horizon.
        target_names_: Column names of the forecasts, as in `compute_targets`.
        symbols_: Symbols seen in `fit`, sorted.
    """

    supported_targets: tuple = TARGETS

    def fit(self, prices, target="return", horizon=1, cumulative=False) -> Baseline:
        """Learn the baseline's parameters from `prices` (training rows only).

        Args:
            prices: Validated long price frame (see `metazoo.data.load_prices`).
            target: `"return"`, `"variance"` or `"direction"` (see `compute_targets`).
            horizon: Trading days ahead, >= 1.
            cumulative: One target summed over the horizon instead of one per day.

        Returns:
            self.

        Raises:
            ValueError: If a column is missing, rows are out of order, the target is unknown
                or not supported by this baseline, `horizon < 1`, a parameter is invalid or
                the frame is too short to fit.
        """
        targets = compute_targets(prices, target, horizon, cumulative)  # checks all three
        if target not in self.supported_targets:
            raise ValueError(
                f"{type(self).__name__} forecasts only target(s) {self.supported_targets}; "
                f"see metazoo.baselines.available_baselines. Received: target={target!r}"
            )
        self._check_params()
        self.target_ = target
        self.horizon_ = int(horizon)
        self.cumulative_ = bool(cumulative)
        self.target_names_ = tuple(target_names(target, self.horizon_, self.cumulative_))
        self.symbols_ = tuple(sorted(pd.unique(prices["symbol"])))
        self._fit(prices, targets[list(self.target_names_)].to_numpy(dtype=np.float64))
        return self

    def predict(self, prices) -> pd.DataFrame:
        """Forecasts of the fitted targets at every row of `prices`.

        Args:
            prices: Validated long price frame; symbols not seen in `fit` are forecast too.

        Returns:
            Frame with `date, symbol` and the target columns (`target_names_`), in the row
            order and index of `prices`; NaN where a symbol lacks the history needed.

        Raises:
            sklearn.exceptions.NotFittedError: Before `fit` (a `ValueError`).
            ValueError: If a column is missing or rows are out of order.
        """
        check_is_fitted(self, "target_names_")
        check_sorted(prices)
        values = self._predict(prices)
        out = prices[["date", "symbol"]].copy()
        for column, name in enumerate(self.target_names_):
            out[name] = values[:, column]
        return out

    def _check_params(self) -> None:
        """Check the constructor arguments (called by `fit`)."""

    def _fit(self, prices: pd.DataFrame, y: np.ndarray) -> None:
        """Learn from `prices` and its `(n_rows, n_targets)` targets `y` (NaN where unknown)."""
        raise NotImplementedError

    def _predict(self, prices: pd.DataFrame) -> np.ndarray:
        """`(n_rows, n_targets)` forecasts for the rows of `prices`."""
        raise NotImplementedError

    def _sum_over_horizon(self, per_day: np.ndarray) -> np.ndarray:
        """`(n, horizon)` return or variance forecasts of each day ahead to the target columns."""
        return per_day.sum(axis=1, keepdims=True) if self.cumulative_ else per_day
