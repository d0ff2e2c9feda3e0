"""Checks of arguments and data shared by the whole package.

Every check raises `ValueError` or `TypeError` naming the argument, in the form
"`name` expected ... Received: ...", and returns the value in its canonical type, so that
callers write `steps = check_count("steps", steps)`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real

import numpy as np

META_BATCH_PARTS = ("support_x", "support_y", "query_x", "query_y")
NONFINITE_POLICIES = ("raise", "skip")


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def check_count(
    name: str, value, minimum: int = 1, allow_none: bool = False, allow_float: bool = True
):
    """`value` as an `int` >= `minimum` (None passes through when `allow_none`).

    Python and NumPy integers are accepted, booleans, fractions and non-numbers are not.
    Integral floats (`3.0`, as a configuration file may hold) are accepted unless
    `allow_float=False`, scikit-learn's rule for estimator parameters.
    """
    if value is None and allow_none:
        return None
    whole = _is_int(value) or (
        allow_float
        and isinstance(value, Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value == int(value)
    )
    if not whole or value < minimum:
        none = " or None" if allow_none else ""
        raise ValueError(
            f"{name} expected an integer >= {minimum}{none}. Received: {name}={value!r}"
        )
    return int(value)


def check_positive(name: str, value, allow_none: bool = False, allow_zero: bool = False):
    """`value` as a finite `float` > 0 (>= 0 with `allow_zero`; None with `allow_none`)."""
    if value is None and allow_none:
        return None
    number = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if not number or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        none = " or None" if allow_none else ""
        raise ValueError(
            f"{name} expected a finite number {bound}{none}. Received: {name}={value!r}"
        )
    return float(value)


_CLOSED = {"neither": "()", "left": "[)", "right": "(]", "both": "[]"}


def check_in_range(name: str, value, low=-math.inf, high=math.inf, closed: str = "neither"):
    """`value` as a finite `float` in the interval from `low` to `high`.

    `closed` says which ends belong to it, as in `pandas.Interval`: `"neither"` (the
    default), `"left"`, `"right"` or `"both"`; an infinite end never does.
    """
    left, right = _CLOSED[closed]
    number = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    above = number and (value >= low if left == "[" else value > low)
    below = number and (value <= high if right == "]" else value < high)
    if not (above and below):
        if high == math.inf:
            where = f"{'>=' if left == '[' else '>'} {low:g}"
        elif low == -math.inf:
            where = f"{'<=' if right == ']' else '<'} {high:g}"
        else:
            where = f"in {left}{low:g}, {high:g}{right}"
        raise ValueError(f"{name} expected a finite number {where}. Received: {name}={value!r}")
    return float(value)


def check_interval(name: str, value, lower=-math.inf) -> tuple[float, float]:
    """`value` as a float pair `(low, high)` of finite numbers with `lower <= low <= high`."""
    pair = np.asarray(value, dtype=np.float64) if _is_sequence(value) else np.empty(0)
    ok = pair.shape == (2,) and bool(np.isfinite(pair).all())
    if not ok or not lower <= pair[0] <= pair[1]:
        bound = "" if lower == -math.inf else f"{lower:g} <= "
        raise ValueError(
            f"{name} expected a pair (low, high) of finite numbers with {bound}low <= high. "
            f"Received: {name}={value!r}"
        )
    return float(pair[0]), float(pair[1])


def _is_sequence(value) -> bool:
    if isinstance(value, str | bytes):
        return False
    try:
        return np.asarray(value).dtype.kind in "iuf"
    except (TypeError, ValueError):
        return False


def check_bool(name: str, value) -> bool:
    """`value` if it is `True` or `False` (NumPy booleans too; not 0 or 1)."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} expected True or False. Received: {name}={value!r}")
    return bool(value)


def check_seed(name: str, value):
    """`value` as an `int` >= 0, a seed."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} expected an integer >= 0. Received: {name}={value!r}")
    return int(value)


def check_choice(name: str, value, allowed: Iterable):
    """`value` if it is one of `allowed`."""
    allowed = tuple(allowed)
    if not isinstance(value, str | bool | int | type(None)) or value not in allowed:
        raise ValueError(f"{name} expected one of {allowed}. Received: {name}={value!r}")
    return value


def check_subset(name: str, values, allowed: Iterable) -> list:
    """`values` as a list, if every one of them is among `allowed`."""
    allowed = tuple(allowed)
    values = list(values)
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"{name} expected names among {allowed}. Received unknown: {unknown}")
    return values


def check_finite_array(name: str, value, dtype="float32") -> np.ndarray:
    """`value` as a finite NumPy array of `dtype`."""
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric. Received: {error}") from None
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise ValueError(f"{name} must be finite. Received: {bad} NaN or infinite value(s)")
    return array


# -- meta-batches --------------------------------------------------------------------------
def unwrap_meta_batch(data) -> tuple:
    """A meta-batch as a 4-tuple, unwrapping what `train_on_batch` and friends pass
    (`(batch, None, None)`)."""
    if isinstance(data, tuple | list) and 1 <= len(data) <= 3 and all(d is None for d in data[1:]):
        data = data[0]
    if not isinstance(data, tuple | list) or len(data) != 4:
        length = len(data) if hasattr(data, "__len__") else "?"
        raise ValueError(
            "Meta-learners train on meta-batches (support_x, support_y, query_x, query_y): "
            f"expected four parts. Received: {type(data).__name__} of length {length}"
        )
    return tuple(data)


def check_meta_batch_shapes(data, sample_shape, target_shape) -> tuple:
    """Check a meta-batch's structure and static shapes against a learner's sample and
    target shapes; return it as a 4-tuple (of whatever arrays or tensors it holds).

    Args:
        data: `(support_x, support_y, query_x, query_y)` (or as `train_on_batch` wraps it).
        sample_shape: the inputs' shape per sample, e.g. `(lookback, n_features)`.
        target_shape: the targets' shape per sample, e.g. `(horizon,)`.
    """
    batch = unwrap_meta_batch(data)
    shapes = [tuple(part.shape) for part in batch]
    received = ", ".join(f"{n}={s}" for n, s in zip(META_BATCH_PARTS, shapes, strict=True))
    expected = [sample_shape, target_shape, sample_shape, target_shape]
    for shape, trailing in zip(shapes, expected, strict=True):
        if len(shape) != 2 + len(trailing) or tuple(shape[2:]) != tuple(trailing):
            raise ValueError(
                "A meta-batch expected (n_tasks, n_samples, ...) parts with samples "
                f"x {sample_shape} and y {target_shape}. Received: {received}"
            )
    for axis, what in ((0, "number of tasks"), (1, "number of samples")):
        pairs = ((0, 1), (2, 3)) if axis else ((0, 1), (0, 2), (0, 3))
        for a, b in pairs:
            known = None not in (shapes[a][axis], shapes[b][axis])
            if known and shapes[a][axis] != shapes[b][axis]:
                raise ValueError(
                    f"Meta-batch parts disagree in their {what}: expected one. Received: {received}"
                )
    if shapes[0][0] == 0:
        raise ValueError(f"A meta-batch expected at least one task. Received: {received}")
    for index, name in ((0, "support"), (2, "query")):
        if shapes[index][1] == 0:
            raise ValueError(
                f"Every {name} set expected at least one sample (K >= 1). Received: {received}"
            )
    return batch


def check_meta_batch_arrays(batch):
    """Check that a meta-batch's four NumPy-convertible parts agree in their task and
    sample axes; return them as float32 arrays (a tuple in the order of `META_BATCH_PARTS`)."""
    if not isinstance(batch, tuple | list) or len(batch) != 4:
        length = len(batch) if hasattr(batch, "__len__") else "?"
        raise ValueError(
            "A meta-batch expected four parts (support_x, support_y, query_x, query_y). "
            f"Received: {length} parts"
        )
    parts = [np.asarray(part, dtype=np.float32) for part in batch]
    sx, sy, qx, qy = parts
    shapes = f"support_x={sx.shape}, support_y={sy.shape}, query_x={qx.shape}, query_y={qy.shape}"
    if min(part.ndim for part in parts) < 3:
        raise ValueError(
            f"A meta-batch expected (n_tasks, n_samples, ...) parts. Received: {shapes}"
        )
    if len({part.shape[0] for part in parts}) != 1:
        raise ValueError(
            f"A meta-batch expected the same number of tasks in every part. Received: {shapes}"
        )
    if sx.shape[1] != sy.shape[1] or qx.shape[1] != qy.shape[1]:
        raise ValueError(
            f"A meta-batch expected as many samples of inputs as of targets. Received: {shapes}"
        )
    if sx.shape[2:] != qx.shape[2:] or sy.shape[2:] != qy.shape[2:]:
        raise ValueError(
            f"A meta-batch expected support and query to share sample shapes. Received: {shapes}"
        )
    return tuple(parts)


def check_nonfinite_policy(value) -> str:
    """What a trainer does with a non-finite meta-batch: `"raise"` or `"skip"`."""
    return check_choice("nonfinite", value, NONFINITE_POLICIES)


def nonfinite_parts(batch) -> list[str]:
    """The names of a meta-batch's parts that hold NaN or infinite values (NumPy)."""
    return [
        name
        for name, part in zip(META_BATCH_PARTS, batch, strict=True)
        if not np.isfinite(np.asarray(part)).all()
    ]


def check_built_model(name: str, value):
    """`value` if it is a built `keras.Model` (a network whose weights exist)."""
    import keras

    if not isinstance(value, keras.Model) or not value.built:
        raise TypeError(f"{name} expected a built keras.Model. Received: {type(value).__name__}")
    return value
