"""Naive baselines: the random walk and the historical (or trailing) mean."""

from __future__ import annotations

import numpy as np
import pandas as pd

from metazoo.baselines.base import (
    VARIANCE_FLOOR,
    Baseline,
    daily_values,
    log_returns,
    shift,
    trailing_mean,
)
from metazoo.data.features import compute_targets
from metazoo.validation import check_count

__all__ = ["HistoricalMean", "ZeroForecast"]


class ZeroForecast(Baseline):
    """Random-walk forecasts: no change expected, and tomorrow's variance is today's.

    - `"return"`: 0 for every day ahead (and for the h-day sum).
    - `"variance"`: the last squared daily log return `r_t^2` for every day ahead, so
      `h * r_t^2` for the h-day sum; NaN on each symbol's first row (no return yet). An
      unchanged close would forecast 0, so `r_t^2` is floored at `VARIANCE_FLOOR` (QLIKE
      needs positive forecasts).
    - `"direction"`: 0.5 (a coin flip) for every target column.

    `fit` learns nothing; it only records the target. Every symbol is forecast the same way,
    seen in `fit` or not.
    """

    def _fit(self, prices, y):
        pass

    def _predict(self, prices):
        n_rows, n_targets = len(prices), len(self.target_names_)
        if self.target_ == "return":
            return np.zeros((n_rows, n_targets))
        if self.target_ == "direction":
            return np.full((n_rows, n_targets), 0.5)
        squared = np.maximum(log_returns(prices) ** 2, VARIANCE_FLOOR)  # NaN stays NaN
        return self._sum_over_horizon(np.repeat(squared[:, None], self.horizon_, axis=1))


class HistoricalMean(Baseline):
    """The mean of the target: over the fit frame, or over a trailing window of the past.

    With `window=None`, `fit` stores the mean of each target column per symbol over the fit
    frame (`means_`) and the mean over all its rows pooled across symbols (`pooled_mean_`),
    each column averaged over the rows where it is known. `predict` gives each row its
    symbol's means, or the pooled means for a symbol not seen in `fit` (or without a known
    target there). Forecasts are then constant and known from the first row.

    With `window=w`, nothing is learned: each forecast at `t` is the mean of the last `w`
    values of the same target that are fully realized by `t`, read from the frame passed to
    `predict`. For a day-ahead target that is the trailing w-day mean of the daily values
    (`r`, `r^2` or `1[r > 0]`, e.g. the 21-day mean of `r^2` for `"variance"`), NaN on each
    symbol's first `w` rows; for a cumulative target, the mean of the last `w` h-day targets,
    which end at `t` or before, NaN on the first `w + h - 1` rows.

    Args:
        window: None for the fit-frame mean, or an int >= 1 for a trailing causal mean.

    Attributes:
        means_: DataFrame of the mean of each target column (columns) per symbol (index);
            only with `window=None`.
        pooled_mean_: `(n_targets,)` mean over all fit rows; only with `window=None`.
    """

    def __init__(self, window=None):
        self.window = window

    def _check_params(self):
        if self.window is not None:
            check_count("window", self.window, allow_float=False)

    def _fit(self, prices, y):
        if self.window is not None:
            return
        frame = pd.DataFrame(y, columns=list(self.target_names_))
        frame.index = prices["symbol"].to_numpy()
        self.means_ = frame.groupby(level=0).mean()  # NaN targets skipped
        self.pooled_mean_ = frame.mean().to_numpy()
        if np.isnan(self.pooled_mean_).any():
            raise ValueError(
                "HistoricalMean needs at least one known value of each target (each symbol's "
                f"last {self.horizon_} rows have none). Received: {len(prices)} rows"
            )

    def _predict(self, prices):
        if self.window is None:
            means = self.means_.reindex(prices["symbol"].to_numpy()).to_numpy()
            return np.where(np.isnan(means), self.pooled_mean_, means)
        if not self.cumulative_:
            # the target j days ahead at s is realized at s + j: the last w of them known at t
            # are the daily values of t - w + 1 ... t, whatever j
            mean = trailing_mean(prices, daily_values(prices, self.target_), self.window)
            return np.repeat(mean[:, None], self.horizon_, axis=1)
        (name,) = self.target_names_
        realized = compute_targets(prices, self.target_, self.horizon_, True)[name].to_numpy()
        known = shift(prices, realized, self.horizon_)  # the h-day target of s, at s + h
        return trailing_mean(prices, known, self.window)[:, None]
