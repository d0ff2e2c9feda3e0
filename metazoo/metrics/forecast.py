"""Forecast metrics on NumPy arrays: errors, directional accuracy and information coefficients.

Every metric takes `(y_true, y_pred)` of the same shape, any shape (e.g. `(n,)` or
`(n, horizon)`), flattens both and returns a float. Inputs must be finite. `SCORERS` and
`get_scorer` name them for model selection, with the direction that is better.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

import numpy as np
import pandas as pd

__all__ = ["SCORERS", "get_scorer", "hit_rate", "ic", "mae", "mse", "rank_ic"]


def as_floats(values, name: str) -> np.ndarray:
    """`values` as a float64 array, or a clear error if they are not numbers."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{name} must be an array of numbers. Received: {type(values).__name__} ({error})"
        ) from error


def finite_result(value, name: str) -> float:
    """`value` as a float, or a clear error if it overflowed float64."""
    if not np.isfinite(value):
        raise ValueError(
            f"{name} overflows float64 for inputs of this size; rescale them. "
            f"Received: {name}={value}"
        )
    return float(value)


def _check_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as flat float64 arrays, after checking shapes and values."""
    true = as_floats(y_true, "y_true")
    pred = as_floats(y_pred, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(
            "y_true and y_pred must have the same shape. "
            f"Received: y_true.shape={true.shape}, y_pred.shape={pred.shape}"
        )
    if true.size == 0:
        raise ValueError(f"Metrics need at least one value. Received: shape={true.shape}")
    for name, values in (("y_true", true), ("y_pred", pred)):
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise ValueError(
                f"{name} must hold only finite values. "
                f"Received: {bad} NaN or infinite value(s) in {name}"
            )
    return true.reshape(-1), pred.reshape(-1)


def mse(y_true, y_pred) -> float:
    """Mean squared error over all entries (lower is better).

    Args:
        y_true: Targets, any shape, e.g. `(n, horizon)`.
        y_pred: Forecasts of the same shape.

    Returns:
        `mean((y_pred - y_true) ** 2)`.

    Raises:
        ValueError: If the shapes differ, the inputs are empty or not finite.
    """
    true, pred = _check_pair(y_true, y_pred)
    return finite_result(np.mean(np.square(pred - true)), "mse")


def mae(y_true, y_pred) -> float:
    """Mean absolute error over all entries (lower is better).

    Args:
        y_true: Targets, any shape.
        y_pred: Forecasts of the same shape.

    Returns:
        `mean(abs(y_pred - y_true))`.

    Raises:
        ValueError: If the shapes differ, the inputs are empty or not finite.
    """
    true, pred = _check_pair(y_true, y_pred)
    return finite_result(np.mean(np.abs(pred - true)), "mae")


def hit_rate(y_true, y_pred) -> float:
    """Directional accuracy: the share of called directions that were right.

    Signs are taken in `{-1, 0, +1}`. An entry whose forecast is zero calls no direction and
    is not counted; among the others, an entry is a hit when the signs are equal, so a
    nonzero forecast of a zero target is a miss (there was no move to call). With no
    direction called at all (a zero forecast everywhere) the hit rate is undefined: NaN.
    Higher is better; 0.5 is a coin flip for symmetric targets.

    Args:
        y_true: Targets, any shape.
        y_pred: Forecasts of the same shape.

    Returns:
        A float in `[0, 1]`, or NaN when every forecast is zero.

    Raises:
        ValueError: If the shapes differ, the inputs are empty or not finite.
    """
    true, pred = _check_pair(y_true, y_pred)
    called = pred != 0
    if not called.any():
        return float("nan")
    return float(np.mean(np.sign(pred[called]) == np.sign(true[called])))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two flat arrays, or NaN if either is constant."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    a, b = unit_scale(a), unit_scale(b)  # no overflow or underflow in the products below
    a = a - a.mean()
    b = b - b.mean()
    r = np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.clip(r, -1.0, 1.0))


def unit_scale(values: np.ndarray) -> np.ndarray:
    """`values` divided by their largest magnitude (for scale-free statistics)."""
    largest = np.abs(values).max()
    return values / largest if largest > 0 else values


def ic(y_true, y_pred) -> float:
    """Information coefficient: the Pearson correlation of forecasts and targets.

    Taken over all entries together (flattened). Higher is better.

    The correlation is undefined when either input is constant (zero variance, which
    includes a single entry): then the result is NaN rather than an error, because a model
    that forecasts a constant is a legitimate, if useless, candidate. Model selection ranks
    NaN scores last.

    Args:
        y_true: Targets, any shape.
        y_pred: Forecasts of the same shape.

    Returns:
        A float in `[-1, 1]`, or NaN for constant input.

    Raises:
        ValueError: If the shapes differ, the inputs are empty or not finite.
    """
    true, pred = _check_pair(y_true, y_pred)
    return _pearson(true, pred)


def rank_ic(y_true, y_pred) -> float:
    """Rank information coefficient: the Spearman correlation of forecasts and targets.

    The Pearson correlation of the ranks of all entries (flattened), with tied values given
    their average rank. Higher is better. NaN for constant input, as for `ic`.

    Args:
        y_true: Targets, any shape.
        y_pred: Forecasts of the same shape.

    Returns:
        A float in `[-1, 1]`, or NaN for constant input.

    Raises:
        ValueError: If the shapes differ, the inputs are empty or not finite.
    """
    true, pred = _check_pair(y_true, y_pred)
    rank_true = pd.Series(true).rank(method="average").to_numpy()
    rank_pred = pd.Series(pred).rank(method="average").to_numpy()
    return _pearson(rank_true, rank_pred)


SCORERS = MappingProxyType(
    {
        "mse": (mse, False),
        "mae": (mae, False),
        "hit_rate": (hit_rate, True),
        "directional_accuracy": (hit_rate, True),
        "ic": (ic, True),
        "rank_ic": (rank_ic, True),
    }
)
"""Read-only mapping of scorer names to `(function, greater_is_better)`."""


def get_scorer(scoring, greater_is_better: bool | None = None) -> tuple[Callable, bool, str]:
    """Resolve a scorer given by name or as a function.

    Args:
        scoring: A name in `SCORERS`, or a callable `f(y_true, y_pred) -> float` (such as a
            `sklearn.metrics` function).
        greater_is_better: For a callable, whether higher scores are better (default True).
            For a name it may be left None; if given it must agree with the metric.

    Returns:
        `(function, greater_is_better, name)`; the name of a callable is its `__name__`.

    Raises:
        ValueError: If the name is unknown, `scoring` is neither a name nor a callable, or
            `greater_is_better` contradicts a named metric.
    """
    if isinstance(scoring, str):
        if scoring not in SCORERS:
            raise ValueError(
                f"Unknown scoring; use one of {sorted(SCORERS)} or a callable "
                f"f(y_true, y_pred). Received: scoring={scoring!r}"
            )
        function, direction = SCORERS[scoring]
        if greater_is_better is not None and bool(greater_is_better) != direction:
            raise ValueError(
                f"For {scoring!r} greater_is_better is {direction}. "
                f"Received: greater_is_better={greater_is_better!r}"
            )
        return function, direction, scoring
    if callable(scoring):
        direction = True if greater_is_better is None else bool(greater_is_better)
        return scoring, direction, getattr(scoring, "__name__", type(scoring).__name__)
    raise ValueError(
        f"scoring must be a name in {sorted(SCORERS)} or a callable f(y_true, y_pred). "
        f"Received: scoring={scoring!r}"
    )
