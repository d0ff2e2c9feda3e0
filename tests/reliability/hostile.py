"""The hostile-input contract and the strategies that draw hostile inputs (see
`test_hostile_inputs.py`).

`attempt(function, ...)` runs one call: it returns the result, or None when the call refused
its input with a clear error (a `ValueError` or `TypeError` raised by a check in metazoo, or
by Keras' argument checks), and fails the test on anything else. The strategies draw price
frames, windows, meta-batches, arrays and wide frames with at most a few things wrong.
"""

from __future__ import annotations

import traceback
import warnings
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

import metazoo
from metazoo.data import ARTasks, WindowSet
from tests.conftest import make_prices

PACKAGE = Path(metazoo.__file__).parent
KERAS_CHECKS = ("Received", "received", "expected", "Expected", "must be", "Invalid")
KERAS_CHECKS += ("Could not interpret", "Make sure")
FAST = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SLOW = settings(FAST, max_examples=20)

EXTREMES = [np.nan, np.inf, -np.inf, 0.0, -1.0, -1e-300, 1e-300, 5e-324, 1e300, 1e308, -1e300]
GARBAGE = ["abc", "", None, b"bytes", [1, 2], {"a": 1}, object(), pd.NaT, True, 1 + 2j]
extreme_floats = st.sampled_from(EXTREMES) | st.floats(allow_nan=True, allow_infinity=True)
garbage = st.sampled_from(GARBAGE) | extreme_floats | st.text(max_size=5)


# -- the contract ----------------------------------------------------------------------------
def clear_error(error: BaseException) -> bool:
    """Whether an error comes from a check: a `raise` statement in metazoo, or Keras'
    argument checks, which say what they received or expected."""
    frame = traceback.extract_tb(error.__traceback__)[-1]
    origin = Path(frame.filename)
    if PACKAGE in origin.parents:
        return (frame.line or "").startswith("raise ") and bool(str(error))
    return "keras" in origin.parts and any(word in str(error) for word in KERAS_CHECKS)


def _event(text: str) -> None:
    """Count outcomes in hypothesis' statistics (`--hypothesis-show-statistics`)."""
    if currently_in_test_context():
        event(text)


def attempt(function, *args, **kwargs):
    """`function(*args, **kwargs)`, or None if it refused the input with a clear error.

    A clear error is a `ValueError` or `TypeError` from a check (see `_clear`); anything else,
    such as a `TypeError` of a builtin deep in pandas or a `KeyError`, fails the test.
    """
    name = getattr(function, "__qualname__", "call")
    filtering = keras.config.is_traceback_filtering_enabled()
    keras.config.disable_traceback_filtering()  # keep Keras' frames to see where errors arise
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = function(*args, **kwargs)
        _event(f"{name}: worked")
        return result
    except (ValueError, TypeError) as error:
        _event(f"{name}: refused")
        if not clear_error(error):
            frame = traceback.extract_tb(error.__traceback__)[-1]
            raise AssertionError(
                f"{type(error).__name__} raised at {frame.filename}:{frame.lineno} "
                f"({frame.line!r}) rather than by a check: {error}"
            ) from error
        return None
    finally:
        if filtering:
            keras.config.enable_traceback_filtering()


def assert_finite(*arrays) -> None:
    for array in arrays:
        values = np.asarray(array, dtype=np.float64)
        assert np.isfinite(values).all(), f"non-finite output: {values[~np.isfinite(values)]}"


class Hostile:
    """Draws arguments of which at most one, chosen at random, is hostile: the others are
    valid, so that a call either fails on that one or exercises the working path."""

    def __init__(self, draw, names, calm=1):
        self.draw, self.bad = draw, draw(st.sampled_from([*[None] * calm, *names]))

    def __call__(self, name, valid, bad):
        return self.draw(st.sampled_from(bad if name == self.bad else valid))


def sometimes_bad(valid, bad):
    """Half the time one of the valid values, half the time one of the bad ones."""
    return st.sampled_from(valid) | st.sampled_from(bad)


# -- price frames ----------------------------------------------------------------------------
NUMERIC = ["open", "high", "low", "close", "volume"]


def _drop_column(frame, draw):
    return frame.drop(columns=draw(st.sampled_from(list(frame.columns))))


def _rename_column(frame, draw):
    column = draw(st.sampled_from(list(frame.columns)))
    new = draw(st.sampled_from(["Close ", "CLOSE", "closing", "", "price", 0, "date", "symbol"]))
    return frame.rename(columns={column: new})


def _set_cell(frame, draw):
    if frame.empty:
        return frame
    column = draw(st.sampled_from(list(frame.columns)))
    row = draw(st.integers(0, len(frame) - 1))
    frame = frame.astype({column: object})
    frame.iat[row, frame.columns.get_loc(column)] = draw(garbage)
    return frame


def _set_numbers(frame, draw):
    """Several cells of one numeric column set to extreme values."""
    if frame.empty:
        return frame
    column = draw(st.sampled_from(NUMERIC))
    rows = draw(st.lists(st.integers(0, len(frame) - 1), min_size=1, max_size=5))
    frame = frame.copy()
    frame.loc[frame.index[rows], column] = draw(extreme_floats)
    return frame


def _scale_prices(frame, draw):
    """One symbol's prices multiplied by an extreme factor (consistent highs and lows)."""
    if frame.empty:
        return frame
    symbol = draw(st.sampled_from(sorted(frame["symbol"].unique())))
    factor = draw(st.sampled_from([1e300, 1e-300, 1e306, 1e-306, 1e-320, 1e5]))
    frame = frame.copy()
    rows = frame["symbol"] == symbol
    frame.loc[rows, ["open", "high", "low", "close"]] *= factor
    return frame


def _duplicate_rows(frame, draw):
    if frame.empty:
        return frame
    rows = draw(st.lists(st.integers(0, len(frame) - 1), min_size=1, max_size=3))
    return pd.concat([frame, frame.iloc[rows]], ignore_index=True)


def _shuffle(frame, draw):
    order = draw(st.permutations(range(len(frame))))
    return frame.iloc[list(order)].reset_index(drop=True)


def _drop_rows(frame, draw):
    if frame.empty:
        return frame
    keep = draw(st.lists(st.booleans(), min_size=len(frame), max_size=len(frame)))
    return frame[np.asarray(keep, dtype=bool)].reset_index(drop=True)


def _truncate(frame, draw):
    return frame.head(draw(st.integers(0, 8))).reset_index(drop=True)


def _stringify(frame, draw):
    column = draw(st.sampled_from(list(frame.columns)))
    return frame.astype({column: str})


def _extra_column(frame, draw):
    frame = frame.copy()
    frame[draw(st.sampled_from(["note", "Adj Close", "open "]))] = draw(garbage)
    return frame


MUTATIONS = {
    f.__name__: f
    for f in (
        _drop_column,
        _rename_column,
        _set_cell,
        _set_numbers,
        _scale_prices,
        _duplicate_rows,
        _shuffle,
        _drop_rows,
        _truncate,
        _stringify,
        _extra_column,
    )
}


@st.composite
def hostile_frames(draw, max_mutations=3, lengths=(0, 1, 3, 30, 60, 120)):
    n_days = draw(st.sampled_from(lengths))
    symbols = ("AAA", "BBB")[: draw(st.integers(1, 2))]
    frame = make_prices(n_days, symbols=symbols, seed=draw(st.integers(0, 1000)))
    for name in draw(st.lists(st.sampled_from(sorted(MUTATIONS)), max_size=max_mutations)):
        try:
            frame = MUTATIONS[name](frame, draw)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError):
            pass  # a mutation that no longer applies to a frame already mangled
    return frame


def window_set(draw, n, lookback=4, n_features=2):
    """A hand-made WindowSet with at most one hostile part: extreme values, a wrong shape."""
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    X = rng.normal(size=(n, lookback, n_features))
    y = rng.normal(size=(n, 1))
    pick = Hostile(draw, ["X_value", "y_value", "scale", "shape"])
    if n and pick.bad == "X_value":
        X[draw(st.integers(0, n - 1)), -1, 0] = draw(extreme_floats)
    if n and pick.bad == "y_value":
        y[draw(st.integers(0, n - 1)), 0] = draw(extreme_floats)
    X = X * pick("scale", [1.0], [1e300, 1e-300, 1e30])
    shape = pick("shape", ["ok"], ["2d_X", "1d_y", "short_y", "short_times"])
    X = X[:, :, 0] if shape == "2d_X" else X
    y = y[:, 0] if shape == "1d_y" else y[: max(n - 1, 0)] if shape == "short_y" else y
    times = np.arange("2020-01-01", n, dtype="datetime64[D]")[: n - (shape == "short_times")]
    return WindowSet(
        X=X.astype(draw(st.sampled_from([np.float32, np.float64]))),
        y=y,
        times=times,
        symbols=np.array(draw(st.lists(st.sampled_from(["A", "B"]), min_size=n, max_size=n))),
        label_end=times,
        feature_names=tuple(f"f{i}" for i in range(n_features)),
        target_names=("y",),
        horizon=1,
    )


def hostile_meta_batch(draw):
    """A meta-batch of 3 tasks of 4 + 5 samples, windows (3, 1), one target, then broken."""
    sx, sy, qx, qy = ARTasks(order=2, lookback=3, unit_variance=True).sample(3, 4, 5, seed=0)
    parts = [p.astype("float32") for p in (sx, sy, qx, qy)]
    change = draw(
        st.sampled_from(
            [
                "none",
                "no_task_axis",
                "lookback",
                "features",
                "targets",
                "task_counts",
                "sample_counts",
                "support_query_shapes",
                "no_tasks",
                "no_support",
                "huge",
                "tiny",
            ]
        )
    )
    which = draw(st.integers(0, 3))
    if change == "no_task_axis":
        parts[which] = parts[which][0]
    elif change == "lookback":
        parts[0] = np.concatenate([parts[0], parts[0][:, :, :1]], axis=2)
    elif change == "features":
        parts[which & 2] = np.concatenate([parts[which & 2]] * 2, axis=-1)
    elif change == "targets":
        parts[1 + (which & 2)] = np.concatenate([parts[1 + (which & 2)]] * 2, axis=-1)
    elif change == "task_counts":
        parts[which] = parts[which][:2]
    elif change == "sample_counts":
        parts[which] = parts[which][:, :2]
    elif change == "support_query_shapes":
        parts[2] = parts[2][:, :, 1:]
    elif change == "no_tasks":
        parts = [p[:0] for p in parts]
    elif change == "no_support":
        parts[0], parts[1] = parts[0][:, :0], parts[1][:, :0]
    elif change in ("huge", "tiny"):
        parts[which] = parts[which] * (1e30 if change == "huge" else 1e-30)
    return change, tuple(parts)


@st.composite
def arrays(draw, max_len=12):
    """Arrays of any small shape holding ordinary, extreme or garbage values."""
    n = draw(st.integers(0, max_len))
    kinds = ["normal", "normal", "normal", "extreme", "constant", "garbage", "nested"]
    kind = draw(st.sampled_from(kinds))
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    values = rng.normal(size=n)
    if kind == "extreme":
        values = values * draw(st.sampled_from([1e300, 1e-300, 1e308, 5e-324, 1e150, 1e-160]))
        if n and draw(st.booleans()):
            values[draw(st.integers(0, n - 1))] = draw(extreme_floats)
    elif kind == "constant":
        values = np.full(n, draw(st.sampled_from([0.0, 1.0, 1e300])))
    elif kind == "garbage":
        return draw(st.sampled_from([None, "abc", [1, "a"], [[1, 2], [3]], {"a": 1}, 3.0]))
    elif kind == "nested":
        values = values.reshape(-1, 1) if draw(st.booleans()) else values.reshape(1, -1)
    return values


def sized(values) -> bool:
    return isinstance(values, np.ndarray) and values.ndim > 0


def array_pair(draw):
    a = draw(arrays())
    b = a * 1.5 + 0.1 if draw(st.booleans()) and isinstance(a, np.ndarray) else draw(arrays())
    return a, b


@st.composite
def wide_frames(draw, name):
    n = draw(st.sampled_from([0, 1, 5, 20]))
    dates = pd.bdate_range("2021-01-01", periods=n)
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    frame = pd.DataFrame(rng.normal(0, 0.01, (n, 2)), index=dates, columns=["A", "B"])
    for _ in range(draw(st.integers(0, 2))):
        change = draw(st.sampled_from(["cell", "scale", "shuffle", "duplicate", "drop", "str"]))
        if (
            change == "scale" and frame.dtypes.eq(float).all()
        ):  # before any garbage cell, so that it multiplies numbers
            frame = frame * draw(st.sampled_from([1e300, 1e-300, 1e150]))
        elif change == "cell" and n:
            frame = frame.astype(object)
            frame.iat[draw(st.integers(0, n - 1)), 0] = draw(garbage)
        elif change == "shuffle":
            frame = frame.iloc[list(draw(st.permutations(range(len(frame)))))]
        elif change == "duplicate" and n:
            frame = pd.concat([frame, frame.iloc[:1]])
        elif change == "drop" and "B" in frame:
            frame = frame.drop(columns="B")
        elif change == "str":
            frame.index = frame.index.astype(str)
    return frame if draw(st.booleans()) else frame["A"]


# -- price files as vendors write them -------------------------------------------------------
def _integer_dates(frame, draw):
    """Dates as yyyymmdd numbers or strings, sometimes with one that is not a date."""
    frame = frame.copy()
    numbers = frame["date"].dt.strftime("%Y%m%d").astype("int64")
    if len(frame) and draw(st.booleans()):
        numbers.iloc[draw(st.integers(0, len(frame) - 1))] = draw(
            st.sampled_from([20201341, 1, 19700101, 99999999, -20200102])
        )
    frame["date"] = numbers.astype(str) if draw(st.booleans()) else numbers
    return frame


def _offset_dates(frame, draw):
    """Dates with the UTC offsets of an exchange's time zone, as `to_csv` writes them."""
    zone = draw(st.sampled_from(["America/New_York", "Asia/Tokyo", "Europe/London", "UTC"]))
    local = pd.DatetimeIndex(frame["date"]).tz_localize(zone)
    frame = frame.copy()
    frame["date"] = [stamp.isoformat(sep=" ") for stamp in local]
    if len(frame) and draw(st.booleans()):  # one date without its offset
        row = draw(st.integers(0, len(frame) - 1))
        frame.iloc[row, frame.columns.get_loc("date")] = frame["date"].iloc[row][:19]
    return frame


def _split_jump(frame, draw):
    """One symbol's prices multiplied by a split-like factor from one day on."""
    if frame.empty:
        return frame
    symbol = draw(st.sampled_from(sorted(frame["symbol"].unique())))
    rows = np.flatnonzero((frame["symbol"] == symbol).to_numpy())
    start = draw(st.integers(0, len(rows) - 1))
    factor = draw(st.sampled_from([2.5, 3.0, 10.0, 0.4, 0.25, 0.05, 1000.0]))
    frame = frame.copy()
    frame.loc[frame.index[rows[start:]], ["open", "high", "low", "close"]] *= factor
    return frame


def _yahoo_layout(frame, draw):
    """One symbol with Yahoo's columns (and an adjusted close) in some capitalization."""
    one = frame[frame["symbol"] == frame["symbol"].iloc[0]] if len(frame) else frame
    one = one.drop(columns="symbol").reset_index(drop=True)
    names = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
    if draw(st.booleans()):
        factor = np.linspace(draw(st.sampled_from([0.5, 0.9, 1.0])), 1.0, len(one))
        one.insert(5, "Adj Close", one["close"] * factor)
    else:
        names.remove("Adj Close")
    case = draw(st.sampled_from([str, str.lower, str.upper, lambda c: c.replace(" ", "_")]))
    return one.set_axis([case(n) for n in names], axis=1)


VENDOR_FAMILIES = {
    f.__name__: f for f in (_integer_dates, _offset_dates, _split_jump, _yahoo_layout)
}


@st.composite
def vendor_frames(draw, lengths=(1, 3, 30, 60)):
    """`(family, frame)`: one of the vendor families above, then at most one other mutation."""
    n_days = draw(st.sampled_from(lengths))
    symbols = ("AAA", "BBB")[: draw(st.integers(1, 2))]
    frame = make_prices(n_days, symbols=symbols, seed=draw(st.integers(0, 1000)))
    family = draw(st.sampled_from(sorted(VENDOR_FAMILIES)))
    frame = VENDOR_FAMILIES[family](frame, draw)
    other = draw(st.sampled_from([None, None, *sorted(MUTATIONS)]))
    if other is not None:
        try:
            frame = MUTATIONS[other](frame, draw)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError):
            other = None  # a mutation that does not apply to this layout
    return family, other, frame
