"""Lookback windows of causal features with their forward targets, dates and symbols."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from metazoo.data.features import (
    compute_features,
    compute_targets,
    feature_warmup,
)
from metazoo.validation import check_count

ANNOTATIONS = ("truth", "next_return", "trailing_vol")  # what make_windows carries along
TRAILING_VOL = "rv_cc:21"  # the feature behind `trailing_vol`


@dataclass(frozen=True)
class WindowSet:
    """Samples for supervised forecasting, each tied to its date and symbol.

    Samples are ordered by date, then symbol. Sample i is a forecast made at the close of
    `times[i]`: its inputs end at that date and its targets cover the next trading days of
    its symbol, up to `label_end[i]`.

    Attributes:
        X: `(n, lookback, n_features)` float32 inputs; `X[i, -1]` is dated `times[i]`.
        y: `(n, n_targets)` float32 targets (`n_targets` is the horizon, or 1 when cumulative).
        times: `(n,)` datetime64 forecast dates.
        symbols: `(n,)` symbols.
        label_end: `(n,)` datetime64 date of the last trading day the target covers.
        feature_names: names of the last axis of `X`.
        target_names: names of the last axis of `y`.
        horizon: trading days the targets look ahead.
        annotations: per-sample values `(n, ...)` carried with the samples through indexing,
            selection, scaling and task splits, so that every forecast can be scored
            without going back to the prices. `make_windows` fills `ANNOTATIONS`:
            `truth`, the exact targets (float64, in the data's units, unscaled);
            `next_return`, the next day's log return; `trailing_vol`, the 21-day
            close-to-close volatility known at the forecast date (NaN in its warm-up).
    """

    X: np.ndarray
    y: np.ndarray
    times: np.ndarray
    symbols: np.ndarray
    label_end: np.ndarray
    feature_names: tuple
    target_names: tuple
    horizon: int
    annotations: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def lookback(self) -> int:
        """Days per input window."""
        return int(self.X.shape[1])

    def __getitem__(self, index) -> WindowSet:
        """Samples selected by an integer array, slice or boolean mask (order kept as given)."""
        if isinstance(index, slice):
            index = np.arange(len(self))[index]
        index = np.asarray(index)
        if index.ndim != 1:
            raise IndexError(
                "Index a WindowSet with a slice, a boolean mask or an array of positions "
                f"(use ws[[i]] for one sample). Received an index of shape {index.shape}"
            )
        if index.dtype == bool and index.shape != (len(self),):
            raise IndexError(f"A mask needs {len(self)} entries. Received: {index.shape}")
        if index.dtype != bool:
            index = index.astype(np.int64) if index.size == 0 else index
        return replace(
            self,
            X=self.X[index],
            y=self.y[index],
            times=self.times[index],
            symbols=self.symbols[index],
            label_end=self.label_end[index],
            annotations={name: values[index] for name, values in self.annotations.items()},
        )

    def select(self, symbols=None, start=None, end=None, label_end_before=None) -> WindowSet:
        """Samples of some symbols and dates.

        Args:
            symbols: symbols to keep (default all).
            start: first forecast date kept (inclusive).
            end: last forecast date kept (inclusive).
            label_end_before: keep only samples whose targets end strictly before this date
                (use it to purge training samples whose labels reach into a test period).

        Each date may also be a mapping (a dict or a `pd.Series`) from symbol to date, for
        assets whose periods follow their own chronology; every symbol of the samples
        must then have a date.
        """
        keep = np.ones(len(self), dtype=bool)
        if symbols is not None:
            keep &= np.isin(self.symbols, [symbols] if isinstance(symbols, str) else list(symbols))
        if start is not None:
            keep &= self.times >= self._dates("start", start)
        if end is not None:
            keep &= self.times <= self._dates("end", end)
        if label_end_before is not None:
            keep &= self.label_end < self._dates("label_end_before", label_end_before)
        return self[keep]

    def _dates(self, name: str, value) -> np.ndarray:
        """One date, or a symbol -> date mapping, as the `(n,)` date of every sample."""
        if not isinstance(value, (dict, pd.Series)):
            return np.full(len(self), np.datetime64(pd.Timestamp(value), "ns"))
        mapping = pd.Series(value)
        missing = sorted(set(np.unique(self.symbols).tolist()) - set(mapping.index))
        if missing:
            raise ValueError(
                f"`{name}` expected a date for every symbol of the samples. "
                f"Received none for {missing}"
            )
        dates = pd.to_datetime(mapping).astype("datetime64[ns]")
        return dates.reindex(self.symbols).to_numpy("datetime64[ns]")

    def to_frame(self, predictions=None) -> pd.DataFrame:
        """Put targets (and predictions, `(n, n_targets)` or `(n,)`) back on the calendar."""
        out = pd.DataFrame({"date": self.times, "symbol": self.symbols})
        for column, name in enumerate(self.target_names):
            out[name] = self.y[:, column]
        if predictions is not None:
            pred = np.asarray(predictions)
            pred = pred.reshape(len(self), -1) if pred.ndim != 2 else pred
            if pred.shape != self.y.shape:
                raise ValueError(
                    f"predictions must have shape {self.y.shape}. Received: {np.shape(predictions)}"
                )
            for column, name in enumerate(self.target_names):
                out[f"{name}_pred"] = pred[:, column]
        return out


def make_windows(
    frame: pd.DataFrame,
    lookback: int = 20,
    horizon: int = 1,
    features=None,
    target: str = "return",
    cumulative: bool = False,
) -> WindowSet:
    """Windows of causal features and their forward targets, for every symbol of `frame`.

    A sample is made at every date where the last `lookback` rows of features are all
    known and the `horizon` days ahead are in the data; earlier dates (feature warm-up) and
    the last `horizon` dates of each symbol have no sample.

    Args:
        frame: validated long price frame (see `load_prices`, `load_markets`).
        lookback: rows of history per sample, >= 1.
        horizon: trading days ahead, >= 1.
        features: feature names (see `metazoo.data.features`); default: every default
            feature that all symbols support.
        target: `"return"`, `"variance"`, `"direction"`, or a variance target such as
            `"log_rv:garman_klass"` (see `compute_targets`).
        cumulative: one target summed over the horizon instead of one per day (for
            variance targets, the mean daily variance over the horizon).

    Returns:
        A `WindowSet` ordered by date, then symbol, with its `annotations`.

    Raises:
        ValueError: if a symbol has too few rows to make a single sample.
    """
    lookback, horizon = check_count("lookback", lookback), check_count("horizon", horizon)
    feats = compute_features(frame, features)
    targets = compute_targets(frame, target, horizon, cumulative)
    feature_names = tuple(feats.columns[2:])
    target_cols = tuple(targets.columns[2:])
    label_values = targets[list(target_cols)].to_numpy(np.float64)
    carried = _annotation_columns(frame, feats, label_values)
    parts, short = [], {}
    for symbol, rows in feats.groupby("symbol", sort=True).indices.items():
        part = _symbol_windows(
            feats[list(feature_names)].to_numpy()[rows],
            label_values[rows],
            feats["date"].to_numpy()[rows],
            lookback,
            horizon,
        )
        if part is None:
            short[symbol] = len(rows)
        else:
            origins = rows[part[-1]]
            parts.append((symbol, *part[:-1], {k: v[origins] for k, v in carried.items()}))
    if short:
        warmup = max(feature_warmup(name) for name in feature_names)
        if min(short.values()) >= warmup + lookback + horizon:
            raise ValueError(
                f"No window of symbols {sorted(short)} has finite features and targets, "
                "though they have the rows: their values overflow float64 (prices near "
                f"1e300 or above?). Received rows per symbol: {short}"
            )
        raise ValueError(
            f"Too few rows to make a window of lookback={lookback} and horizon={horizon} "
            f"(the features need {warmup} rows of warm-up, so at least "
            f"{warmup + lookback + horizon} rows per symbol). Received rows per symbol: {short}"
        )
    X = np.concatenate([p[1] for p in parts])
    y = np.concatenate([p[2] for p in parts])
    times = np.concatenate([p[3] for p in parts])
    ends = np.concatenate([p[4] for p in parts])
    symbols = np.concatenate([np.full(len(p[1]), p[0], dtype=object) for p in parts])
    carried = {name: np.concatenate([p[5][name] for p in parts]) for name in ANNOTATIONS}
    order = np.lexsort((symbols.astype(str), times))
    return WindowSet(
        X=X[order].astype(np.float32),
        y=y[order].astype(np.float32),
        times=times[order],
        symbols=symbols[order],
        label_end=ends[order],
        feature_names=feature_names,
        target_names=target_cols,
        horizon=int(horizon),
        annotations={name: values[order] for name, values in carried.items()},
    )


def _annotation_columns(frame: pd.DataFrame, rows: pd.DataFrame, labels: np.ndarray) -> dict:
    """`ANNOTATIONS` of every row of `rows` (the `date`, `symbol` rows of the features)."""
    next_return = compute_targets(frame, "return", 1)
    trailing = compute_features(frame, [TRAILING_VOL])
    for made in (next_return, trailing):
        if not rows[["date", "symbol"]].equals(made[["date", "symbol"]]):
            raise RuntimeError("Features and annotations differ in their rows; this is a bug.")
    return {
        "truth": labels,
        "next_return": next_return[next_return.columns[2]].to_numpy(np.float64),
        "trailing_vol": trailing[TRAILING_VOL].to_numpy(np.float64),
    }


def _symbol_windows(features, targets, dates, lookback, horizon):
    """`(X, y, times, label_end, origins)` of one symbol (origins: the rows of the forecast
    dates), or None if it has too few rows or no finite window."""
    if len(features) < lookback + horizon:
        return None
    windows = np.lib.stride_tricks.sliding_window_view(features, lookback, axis=0)
    windows = windows.transpose(0, 2, 1)  # (n, lookback, n_features)
    origins = np.arange(lookback - 1, len(features))
    labels = targets[origins]
    ok = np.isfinite(windows).all(axis=(1, 2)) & np.isfinite(labels).all(axis=1)
    if not ok.any():
        return None
    origins = origins[ok]
    return windows[ok], labels[ok], dates[origins], dates[origins + horizon], origins


class WindowScaler:
    """Standardize window features with statistics of the training samples only.

    Statistics are taken over the last row of each training window, so every training
    date counts once. After `fit`, `mean_` and `scale_` are arrays `(n_features,)`, or
    dicts of them keyed by symbol with `per_symbol=True`. With `per_symbol=True` each symbol gets its own statistics; a symbol
    not seen in `fit` is refused (fit a scaler on its own early data, e.g. a task's support
    set, to scale it).

    With `scale_targets=True` the targets are standardized too, per column with the training
    samples' mean and standard deviation (`y_mean_`, `y_scale_`); `inverse_targets` maps
    scaled forecasts back. Daily returns (~1e-2) and variances (~1e-4) are otherwise far
    below the scale that default initializations and learning rates suit.

    Args:
        per_symbol: separate feature statistics per symbol.
        scale_targets: standardize the targets as well.
        eps: floor for the standard deviations.
    """

    def __init__(self, per_symbol: bool = False, scale_targets: bool = False, eps: float = 1e-8):
        self.per_symbol = per_symbol
        self.scale_targets = scale_targets
        self.eps = eps

    def fit(self, windows: WindowSet, y=None) -> WindowScaler:
        """Learn means and standard deviations from `windows` (the training samples)."""
        _check_windowset(windows, "fit")
        if len(windows) < 2:
            raise ValueError(f"fit needs at least 2 samples. Received: {len(windows)}")
        last = windows.X[:, -1]
        if self.per_symbol:
            self.mean_, self.scale_ = {}, {}
            for symbol in np.unique(windows.symbols):
                rows = last[windows.symbols == symbol]
                self.mean_[symbol] = rows.mean(axis=0)
                self.scale_[symbol] = np.maximum(rows.std(axis=0), self.eps)
        else:
            self.mean_ = last.mean(axis=0)
            self.scale_ = np.maximum(last.std(axis=0), self.eps)
        self.y_mean_ = windows.y.mean(axis=0)
        self.y_scale_ = np.maximum(windows.y.std(axis=0), self.eps)
        self.feature_names_ = windows.feature_names
        means, scales = (
            (self.mean_.values(), self.scale_.values())
            if self.per_symbol
            else ([self.mean_], [self.scale_])
        )
        if not all(np.isfinite(s).all() for s in [*means, *scales, self.y_mean_, self.y_scale_]):
            raise ValueError(
                "Means or standard deviations overflow: the values are too large to "
                f"standardize. Received: max |X| = {np.abs(windows.X).max():.3g}, "
                f"max |y| = {np.abs(windows.y).max():.3g}"
            )
        return self

    def transform(self, windows: WindowSet) -> WindowSet:
        """Scaled copy of `windows`."""
        _check_windowset(windows, "transform")
        if not hasattr(self, "mean_"):
            raise RuntimeError("This WindowScaler is not fitted yet; call fit first.")
        if windows.feature_names != self.feature_names_:
            raise ValueError(
                f"Features differ from those seen in fit {self.feature_names_}. "
                f"Received: {windows.feature_names}"
            )
        X = np.empty_like(windows.X)
        y = (windows.y - self.y_mean_) / self.y_scale_ if self.scale_targets else windows.y
        if not self.per_symbol:
            X[:] = (windows.X - self.mean_) / self.scale_
            return _scaled(windows, X, y)
        unseen = sorted(set(windows.symbols) - set(self.mean_))
        if unseen:
            raise ValueError(
                f"per_symbol scaling was fitted on {sorted(self.mean_)}. Received unseen "
                f"symbols {unseen}"
            )
        for symbol in np.unique(windows.symbols):
            rows = windows.symbols == symbol
            X[rows] = (windows.X[rows] - self.mean_[symbol]) / self.scale_[symbol]
        return _scaled(windows, X, y)

    def inverse_targets(self, y):
        """Targets or forecasts `(n, n_targets)` on the scale of the data (identity unless
        `scale_targets`)."""
        if not hasattr(self, "y_mean_"):
            raise RuntimeError("This WindowScaler is not fitted yet; call fit first.")
        y = np.asarray(y)
        return y * self.y_scale_ + self.y_mean_ if self.scale_targets else y

    def fit_transform(self, windows: WindowSet, y=None) -> WindowSet:
        """`fit` on `windows`, then return them scaled."""
        return self.fit(windows).transform(windows)


def _scaled(windows: WindowSet, X, y) -> WindowSet:
    y = y.astype(np.float32)
    _check_finite(X, y, "Scaled windows overflow: values far outside those seen in fit")
    return replace(windows, X=X, y=y)


def _check_windowset(windows, method: str) -> None:
    if not isinstance(windows, WindowSet):
        raise TypeError(
            f"WindowScaler.{method} takes a WindowSet (see make_windows). "
            f"Received: {type(windows).__name__}"
        )
    X, y = np.asarray(windows.X), np.asarray(windows.y)
    if X.ndim != 3 or y.ndim != 2 or len(y) != len(X):
        raise ValueError(
            f"WindowScaler.{method} needs X of shape (n, lookback, n_features) and y of shape "
            f"(n, n_targets). Received: X.shape={X.shape}, y.shape={y.shape}"
        )
    _check_finite(X, y, f"WindowScaler.{method} needs finite X and y")


def _check_finite(X, y, what: str) -> None:
    for name, values in (("X", X), ("y", y)):
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise ValueError(f"{what}. Received: {bad} NaN or infinite value(s) in {name}")
