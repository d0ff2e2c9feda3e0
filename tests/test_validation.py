"""metazoo.validation: the package's one set of argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metazoo.validation import (
    check_bool,
    check_choice,
    check_count,
    check_in_range,
    check_interval,
    check_positive,
)


def test_count_takes_python_and_numpy_ints_not_bools():
    assert check_count("n", 3) == 3 and type(check_count("n", np.int64(3))) is int
    assert check_count("n", 0, minimum=0) == 0
    assert check_count("n", None, allow_none=True) is None
    for bad in (True, 0, -1, 1.5, "3", None, math.nan):
        with pytest.raises(ValueError, match=rf"n expected an integer >= 1. Received: n={bad!r}"):
            check_count("n", bad)


def test_count_takes_integral_floats_unless_told_not_to():
    assert check_count("n", 3.0) == 3
    with pytest.raises(ValueError, match=r"n expected an integer >= 1. Received: n=3\.0"):
        check_count("n", 3.0, allow_float=False)
    assert check_count("n", np.int32(2), allow_float=False) == 2


@pytest.mark.parametrize(
    ("low", "high", "closed", "inside", "outside", "shown"),
    [
        (0.0, 1.0, "neither", [0.5, 1e-9], [0.0, 1.0], r"in \(0, 1\)"),
        (0.0, 1.0, "left", [0.0, 0.5], [1.0, -1e-9], r"in \[0, 1\)"),
        (0.0, 1.0, "right", [1.0], [0.0], r"in \(0, 1\]"),
        (0.0, 1.0, "both", [0.0, 1.0], [1.5], r"in \[0, 1\]"),
        (2.0, math.inf, "neither", [2.5, 1e300], [2.0, math.inf], "> 2"),
        (-math.inf, 0.5, "right", [0.5, -1e300], [0.6, -math.inf], "<= 0.5"),
    ],
)
def test_in_range_checks_each_end(low, high, closed, inside, outside, shown):
    for value in inside:
        assert check_in_range("x", value, low, high, closed) == value
    for value in [*outside, math.nan, True, "0.5", None]:
        with pytest.raises(ValueError, match=rf"x expected a finite number {shown}. Received: x="):
            check_in_range("x", value, low, high, closed)


def test_in_range_returns_a_float_and_takes_numpy_numbers():
    value = check_in_range("alpha", np.float32(0.25), 0.0, 0.5)
    assert type(value) is float and value == 0.25


def test_interval_is_an_ordered_finite_pair_above_its_lower_bound():
    assert check_interval("r", (1, 2)) == (1.0, 2.0)
    assert check_interval("r", np.array([0.0, 0.0]), lower=0.0) == (0.0, 0.0)
    assert check_interval("r", [-3.0, 5.0]) == (-3.0, 5.0)
    for bad in ((2.0, 1.0), (1.0, 2.0, 3.0), (0.0, math.inf), (math.nan, 1.0), "ab", 1.0, None):
        with pytest.raises(ValueError, match=r"r expected a pair \(low, high\) of finite numbers"):
            check_interval("r", bad)
    with pytest.raises(ValueError, match=r"with 0 <= low <= high. Received: r=\(-1, 1\)"):
        check_interval("r", (-1, 1), lower=0.0)


def test_bool_is_true_or_false_only():
    assert check_bool("log", True) is True and check_bool("log", np.bool_(False)) is False
    for bad in (1, 0, "yes", None):
        with pytest.raises(ValueError, match=rf"log expected True or False. Received: log={bad!r}"):
            check_bool("log", bad)


def test_positive_and_choice_keep_their_messages():
    assert check_positive("lr", 0.1) == 0.1 and check_positive("c", 0, allow_zero=True) == 0.0
    with pytest.raises(ValueError, match="lr expected a finite number > 0. Received: lr=inf"):
        check_positive("lr", math.inf)
    with pytest.raises(ValueError, match=r"mode expected one of \('a', 'b'\). Received: mode='c'"):
        check_choice("mode", "c", ("a", "b"))
