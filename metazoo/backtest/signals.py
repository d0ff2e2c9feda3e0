"""From forecasts to positions: sign, volatility-targeted and cross-sectional weights.

Positions are wide frames, dates x symbols, held from the close of each date (see
`metazoo.backtest.backtest`). Forecasts may be given wide or as a long frame with `date`,
`symbol` and a value column (such as the output of a baseline's `predict`). A missing (NaN)
forecast gives a flat (0) position.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metazoo.validation import check_choice, check_positive

__all__ = ["buy_and_hold", "portfolio_weights", "positions_from_forecasts", "to_wide"]

_METHODS = ("sign", "vol_scaled", "raw")
_SCHEMES = ("long_short", "long_only")


def to_wide(frame, column: str | None = None, name: str = "forecasts") -> pd.DataFrame:
    """A dates x symbols float frame from a wide frame, a Series or a long frame.

    Args:
        frame: Wide DataFrame (index dates, columns symbols), a Series (one asset), or a long
            frame with columns `date`, `symbol` and the values.
        column: The value column of a long frame; may be omitted when there is only one.
        name: What `frame` is, for error messages.

    Returns:
        Wide float64 DataFrame; a Series becomes one column named `value`.
    """
    if isinstance(frame, pd.Series):
        return _floats(frame, name).to_frame("value")
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(
            f"{name} must be a DataFrame or a Series. Received: {type(frame).__name__}"
        )
    if not {"date", "symbol"} <= set(frame.columns):
        return _floats(frame, name)
    values = [c for c in frame.columns if c not in ("date", "symbol")]
    if column is None and len(values) != 1:
        raise ValueError(
            f"{name} is a long frame with several value columns; pass column= to choose one. "
            f"Received columns: {values}"
        )
    column = values[0] if column is None else column
    if column not in values:
        raise ValueError(f"column must be one of {values}. Received: column={column!r}")
    wide = _floats(frame.pivot(index="date", columns="symbol", values=column), name)
    wide.columns.name = None
    return wide


def _floats(frame, name: str):
    """`frame` as float64, or a clear error naming what is not a number."""
    try:
        return frame.astype("float64")
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must hold numbers. Received: {error}") from error


def _like_input(wide: pd.DataFrame, original):
    """Back to a Series for Series input."""
    if isinstance(original, pd.Series):
        return wide["value"].rename(original.name)
    return wide


def positions_from_forecasts(
    forecasts,
    method: str = "sign",
    vol=None,
    target_vol: float = 0.10,
    max_leverage: float = 1.0,
    periods_per_year: float = 252,
    column: str | None = None,
):
    """Positions from return forecasts.

    - `"sign"`: `sign(forecast)` in `{-1, 0, +1}`.
    - `"vol_scaled"`: `sign(forecast) * target_vol / (vol * sqrt(periods_per_year))`, the
      size that gives each position an annualized volatility of `target_vol`, capped at
      `max_leverage` in absolute value (a zero volatility forecast gets the cap).
    - `"raw"`: the forecast itself, clipped to `[-max_leverage, max_leverage]`.

    Args:
        forecasts: `(n_days, n_symbols)` wide forecasts, a Series, or a long frame (see
            `to_wide`); the forecast at date t must be known at the close of t.
        method: `"sign"`, `"vol_scaled"` or `"raw"`.
        vol: Daily volatility forecasts known at t (not variances), in the same layout and
            with the same dates and symbols; required for `"vol_scaled"`.
        target_vol: Annualized volatility per position, for `"vol_scaled"`.
        max_leverage: Cap on the absolute position.
        periods_per_year: Periods in a year, to annualize `vol`.
        column: Value column of long `forecasts` (and of long `vol`, if it has that column).

    Returns:
        Positions in the wide layout (a Series for Series input); NaN forecasts give 0.

    Raises:
        ValueError: If `method` is unknown, `vol` is missing, negative or lacks dates or
            symbols of the forecasts, or a number is not positive.
    """
    check_choice("method", method, _METHODS)
    cap = check_positive("max_leverage", max_leverage)
    wide = to_wide(forecasts, column)
    if method == "sign":
        positions = np.sign(wide)
    elif method == "raw":
        positions = wide.clip(-cap, cap)
    else:
        annual = _aligned_vol(vol, wide, column) * np.sqrt(
            check_positive("periods_per_year", periods_per_year)
        )
        with np.errstate(divide="ignore"):
            size = check_positive("target_vol", target_vol) / annual
        positions = np.sign(wide) * size.clip(upper=cap)
    return _like_input(positions.fillna(0.0), forecasts)


def _aligned_vol(vol, wide: pd.DataFrame, column) -> pd.DataFrame:
    """`vol` as a wide frame on the dates and symbols of `wide`."""
    if vol is None:
        raise ValueError(
            "method='vol_scaled' needs vol, daily volatility forecasts. Received: None"
        )
    long_with_column = isinstance(vol, pd.DataFrame) and column in vol.columns
    vol = to_wide(vol, column if long_with_column else None, name="vol")
    missing_symbols = wide.columns.difference(vol.columns).tolist()
    missing_dates = wide.index.difference(vol.index)
    if missing_symbols or len(missing_dates):
        raise ValueError(
            "vol must cover every date and symbol of the forecasts. Received: vol lacks "
            f"symbols {missing_symbols} and {len(missing_dates)} date(s)"
        )
    vol = vol.reindex(index=wide.index, columns=wide.columns)
    if (vol < 0).any().any():
        raise ValueError(f"vol must be >= 0. Received: min(vol)={vol.min().min()}")
    return vol


def portfolio_weights(scores, scheme: str = "long_short", gross: float = 1.0, column=None):
    """Cross-sectional portfolio weights from scores, date by date.

    - `"long_short"`: scores minus their mean over the date's symbols, scaled so the
      absolute weights sum to `gross` (dollar neutral: longs and shorts of `gross / 2`).
    - `"long_only"`: the positive part of the scores, scaled to sum to `gross`; symbols with
      a score <= 0 get 0.

    On a date where all scores are equal (long-short) or none is positive (long-only), every
    weight is 0 (stay in cash). Symbols without a score (NaN) get 0 and are left out of the
    mean.

    Args:
        scores: `(n_days, n_symbols)` wide scores, or a long frame (see `to_wide`).
        scheme: `"long_short"` or `"long_only"`.
        gross: Sum of absolute weights on each invested date.
        column: Value column of long `scores`.

    Returns:
        `(n_days, n_symbols)` DataFrame of weights.
    """
    check_choice("scheme", scheme, _SCHEMES)
    gross = check_positive("gross", gross)
    wide = to_wide(scores, column, name="scores")
    if scheme == "long_short":
        raw = wide.sub(wide.mean(axis=1), axis=0)
        raw[wide.max(axis=1) == wide.min(axis=1)] = 0.0  # demeaning would leave rounding noise
    else:
        raw = wide.clip(lower=0.0)
    total = raw.abs().sum(axis=1)
    weights = raw.div(total.where(total > 0), axis=0) * gross
    return weights.fillna(0.0)


def buy_and_hold(returns):
    """The naive benchmark: a position of +1 in every asset on every date of `returns`.

    With several assets that is `n_assets` times the capital; divide by the number of assets
    for an equal-weight portfolio.

    Args:
        returns: Wide returns (DataFrame), a Series or an array.

    Returns:
        Ones shaped like `returns` (same index and columns for pandas input).
    """
    if isinstance(returns, pd.Series):
        return pd.Series(1.0, index=returns.index, name=returns.name)
    if isinstance(returns, pd.DataFrame):
        return pd.DataFrame(1.0, index=returns.index, columns=returns.columns)
    return np.ones(np.shape(returns))
