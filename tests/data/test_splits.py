"""Tests for the time-series splitters in metazoo.data.splits."""

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import sklearn
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    TimeSeriesSplit,
    check_cv,
    cross_val_score,
)

from metazoo.data.splits import PurgedKFold, WalkForward


def _folds_of(splits):
    return [(train.tolist(), test.tolist()) for train, test in splits]


def _folds(splitter, n_times):
    return _folds_of(splitter.split(np.zeros(n_times)))


def _one_line(value):
    return " ".join(repr(value).split())


def _span(first, last):
    return list(range(first, last + 1))


# --- exact indices -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "n_times", "expected"),
    [
        (
            {"n_splits": 3},
            12,
            [(_span(0, 2), [3, 4, 5]), (_span(0, 5), [6, 7, 8]), (_span(0, 8), [9, 10, 11])],
        ),
        (
            {"n_splits": 3, "test_size": 2, "gap": 1, "horizon": 2},
            12,
            [(_span(0, 3), [6, 7]), (_span(0, 5), [8, 9]), (_span(0, 7), [10, 11])],
        ),
        (
            {"n_splits": 3, "mode": "rolling", "train_size": 4, "test_size": 2},
            12,
            [([2, 3, 4, 5], [6, 7]), ([4, 5, 6, 7], [8, 9]), ([6, 7, 8, 9], [10, 11])],
        ),
        (
            {"n_splits": 2, "mode": "rolling", "train_size": 3, "test_size": 3, "horizon": 3},
            12,
            [([1, 2, 3], [6, 7, 8]), ([4, 5, 6], [9, 10, 11])],
        ),
        (
            {"n_splits": 2, "mode": "rolling", "train_size": 5, "test_size": 2, "gap": 2},
            10,
            [([0, 1, 2, 3], [6, 7]), ([1, 2, 3, 4, 5], [8, 9])],
        ),
    ],
)
def test_walk_forward_exact_indices(kwargs, n_times, expected):
    assert _folds(WalkForward(**kwargs), n_times) == expected


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"n_splits": 3},
            [
                (_span(4, 9), [0, 1, 2, 3]),
                ([0, 1, 2, 3, 7, 8, 9], [4, 5, 6]),
                (_span(0, 6), [7, 8, 9]),
            ],
        ),
        (
            {"n_splits": 3, "horizon": 3},
            [
                ([6, 7, 8, 9], [0, 1, 2, 3]),
                ([0, 1, 9], [4, 5, 6]),
                (_span(0, 4), [7, 8, 9]),
            ],
        ),
        (
            {"n_splits": 3, "embargo": 2},
            [
                ([6, 7, 8, 9], [0, 1, 2, 3]),
                ([0, 1, 2, 3, 9], [4, 5, 6]),
                (_span(0, 6), [7, 8, 9]),
            ],
        ),
        (
            {"n_splits": 5, "horizon": 2, "embargo": 0.15},
            [
                (_span(5, 9), [0, 1]),
                ([0, 7, 8, 9], [2, 3]),
                ([0, 1, 2, 9], [4, 5]),
                (_span(0, 4), [6, 7]),
                (_span(0, 6), [8, 9]),
            ],
        ),
    ],
)
def test_purged_k_fold_exact_indices(kwargs, expected):
    assert _folds(PurgedKFold(**kwargs), 10) == expected


def test_float_embargo_rounds_up_a_fraction_of_the_unique_times():
    # 0.3 of 10 times is 3 steps; 0.25 of 10 is 2.5, rounded up to 3.
    for embargo in (0.3, 0.25, 3):
        train, test = next(PurgedKFold(n_splits=5, embargo=embargo).split(np.zeros(10)))
        assert test.tolist() == [0, 1]
        assert train.tolist() == [5, 6, 7, 8, 9]


# --- properties ----------------------------------------------------------------------------


def _assert_no_label_overlap(train, test, horizon):
    # Labels [k + 1, k + horizon] and [t + 1, t + horizon] overlap iff |k - t| < horizon.
    distance = np.abs(np.subtract.outer(train, test))
    assert distance.min() >= horizon


WALK_FORWARD_CASES = [
    {"n_splits": n, "mode": mode, "train_size": size, "test_size": test, "gap": gap, "horizon": h}
    for n, (mode, size), test, gap, h in itertools.product(
        [1, 2, 4],
        [("expanding", None), ("rolling", 1), ("rolling", 5)],
        [None, 3],
        [0, 2],
        [1, 3],
    )
]


@pytest.mark.parametrize("n_times", [30, 37])
@pytest.mark.parametrize("kwargs", WALK_FORWARD_CASES)
def test_walk_forward_properties(kwargs, n_times):
    splitter = WalkForward(**kwargs)
    folds = list(splitter.split(np.zeros(n_times)))
    test_size = kwargs["test_size"] or n_times // (kwargs["n_splits"] + 1)
    assert len(folds) == splitter.get_n_splits() == kwargs["n_splits"]
    tests = np.concatenate([test for _, test in folds])
    np.testing.assert_array_equal(tests, np.arange(n_times - tests.size, n_times))
    for train, test in folds:
        assert test.size == test_size
        assert train.size > 0
        assert train.max() + kwargs["horizon"] + kwargs["gap"] <= test.min()
        np.testing.assert_array_equal(train, np.arange(train.min(), train.max() + 1))
        if kwargs["mode"] == "rolling":
            assert train.size <= kwargs["train_size"]
        else:
            assert train.min() == 0
        _assert_no_label_overlap(train, test, kwargs["horizon"])


@pytest.mark.parametrize(
    ("n_splits", "horizon", "embargo", "n_times"),
    list(itertools.product([2, 3, 5], [1, 2, 4], [0, 1, 3, 0.05, 0.1], [31, 50])),
)
def test_purged_k_fold_properties(n_splits, horizon, embargo, n_times):
    folds = list(PurgedKFold(n_splits, horizon, embargo).split(np.zeros(n_times)))
    steps = embargo if isinstance(embargo, int) else int(np.ceil(round(embargo * n_times, 9)))
    tests = [test for _, test in folds]
    np.testing.assert_array_equal(np.concatenate(tests), np.arange(n_times))
    assert max(t.size for t in tests) - min(t.size for t in tests) <= 1
    for train, test in folds:
        _assert_no_label_overlap(train, test, horizon)
        later = train[train > test.max()]
        if later.size:
            assert later.min() >= test.max() + horizon + steps
        # Nothing is dropped beyond the purge and the embargo.
        kept = (np.arange(n_times) <= test.min() - horizon) | (
            np.arange(n_times) >= test.max() + horizon + steps
        )
        np.testing.assert_array_equal(train, np.flatnonzero(kept))


@pytest.mark.parametrize("n_splits", [2, 3, 7])
@pytest.mark.parametrize("gap", [0, 2])
@pytest.mark.parametrize("train_size", [None, 4])
def test_walk_forward_with_horizon_one_matches_time_series_split(n_splits, gap, train_size):
    mode = "expanding" if train_size is None else "rolling"
    ours = WalkForward(n_splits, mode=mode, train_size=train_size, gap=gap)
    theirs = TimeSeriesSplit(n_splits, max_train_size=train_size, gap=gap)
    assert _folds(ours, 40) == _folds(theirs, 40)


@pytest.mark.parametrize("n_splits", [2, 3, 7])
def test_purged_k_fold_without_purge_or_embargo_matches_k_fold(n_splits):
    assert _folds(PurgedKFold(n_splits), 23) == _folds(KFold(n_splits), 23)


# --- panels --------------------------------------------------------------------------------

SPLITTERS = [
    WalkForward(n_splits=3),
    WalkForward(n_splits=2, mode="rolling", train_size=3, test_size=2, gap=1, horizon=2),
    PurgedKFold(n_splits=3, horizon=2, embargo=1),
    PurgedKFold(n_splits=4, embargo=0.1),
]


@pytest.fixture
def panel_times():
    """Twelve dates for three symbols, with the samples in shuffled order."""
    dates = np.arange("2024-01-01", "2024-01-13", dtype="datetime64[D]")
    order = np.random.default_rng(0).permutation(3 * dates.size)
    return dates, np.tile(dates, 3)[order]


@pytest.mark.parametrize("splitter", SPLITTERS, ids=_one_line)
def test_panel_split_is_the_single_series_split_mapped_through_times(splitter, panel_times):
    dates, times = panel_times
    positions = (times - dates[0]).astype(int)
    single = list(splitter.split(np.zeros(dates.size)))
    panel = list(splitter.split(np.zeros((times.size, 2)), groups=times))
    assert len(panel) == len(single)
    for (train, test), (single_train, single_test) in zip(panel, single, strict=True):
        np.testing.assert_array_equal(train, np.flatnonzero(np.isin(positions, single_train)))
        np.testing.assert_array_equal(test, np.flatnonzero(np.isin(positions, single_test)))
        assert not set(times[train]) & set(times[test])


@pytest.mark.parametrize("splitter", SPLITTERS, ids=_one_line)
def test_groups_may_be_timestamps_or_ints(splitter, panel_times):
    dates, times = panel_times
    X = np.zeros((times.size, 2))
    expected = _folds_of(splitter.split(X, groups=times))
    timestamps = [pd.Timestamp(t) for t in times]
    day_numbers = (times - dates[0]).astype(int) * 7 + 100
    assert _folds_of(splitter.split(X, groups=timestamps)) == expected
    assert _folds_of(splitter.split(X, groups=pd.Series(times))) == expected
    assert _folds_of(splitter.split(X, groups=day_numbers)) == expected


# --- scikit-learn integration --------------------------------------------------------------


@pytest.fixture
def regression_panel():
    rng = np.random.default_rng(1)
    times = rng.permutation(np.repeat(np.arange(30), 3))
    X = rng.normal(size=(times.size, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=times.size)
    return X, y, times


@pytest.mark.parametrize(
    "splitter",
    [WalkForward(n_splits=3, horizon=2), PurgedKFold(n_splits=3, horizon=2)],
    ids=_one_line,
)
def test_cross_val_score_accepts_the_splitters(splitter, regression_panel):
    X, y, times = regression_panel
    for groups in (None, times):
        scores = cross_val_score(LinearRegression(), X, y, cv=splitter, groups=groups)
        assert scores.shape == (3,)
        assert np.all(scores > 0.9)


def test_cross_val_score_routes_groups_to_the_splitter(regression_panel):
    X, y, times = regression_panel
    with sklearn.config_context(enable_metadata_routing=True):
        scores = cross_val_score(
            LinearRegression(), X, y, cv=WalkForward(n_splits=2), params={"groups": times}
        )
    assert scores.shape == (2,)


def test_repr_and_get_n_splits():
    assert repr(PurgedKFold(4, embargo=0.01)) == "PurgedKFold(embargo=0.01, horizon=1, n_splits=4)"
    assert "mode='rolling'" in repr(WalkForward(mode="rolling", train_size=3))
    assert WalkForward(n_splits=4).get_n_splits() == 4
    assert PurgedKFold(n_splits=6).get_n_splits(np.zeros(10)) == 6


# --- bad inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("splitter", "match"),
    [
        (WalkForward(n_splits=0), r"n_splits expected an integer >= 1\. Received: n_splits=0"),
        (WalkForward(n_splits=2.0), r"n_splits expected an integer >= 1\. Received: n_splits=2\.0"),
        (WalkForward(mode="sliding"), r"mode expected one of .* Received: mode='sliding'"),
        (WalkForward(mode="rolling"), r"needs train_size.* Received: train_size=None"),
        (WalkForward(mode="rolling", train_size=0), r"Received: train_size=0"),
        (WalkForward(train_size=5), r'only used with mode="rolling".* Received: train_size=5'),
        (WalkForward(test_size=0), r"test_size expected an integer >= 1\. Received: test_size=0"),
        (WalkForward(gap=-1), r"gap expected an integer >= 0\. Received: gap=-1"),
        (WalkForward(horizon=0), r"horizon expected an integer >= 1\. Received: horizon=0"),
        (PurgedKFold(n_splits=1), r"n_splits expected an integer >= 2\. Received: n_splits=1"),
        (PurgedKFold(horizon=0), r"horizon expected an integer >= 1\. Received: horizon=0"),
        (PurgedKFold(embargo=-1), r"embargo expected an integer >= 0 .* Received: embargo=-1$"),
        (PurgedKFold(embargo=-0.1), r"Received: embargo=-0\.1$"),
        (PurgedKFold(embargo=1.0), r"Received: embargo=1\.0$"),
        (PurgedKFold(embargo=True), r"Received: embargo=True$"),
    ],
    ids=_one_line,
)
def test_invalid_parameters_raise_in_split_and_get_n_splits(splitter, match):
    with pytest.raises(ValueError, match=match):
        splitter.get_n_splits()
    with pytest.raises(ValueError, match=match):
        list(splitter.split(np.zeros(50)))


@pytest.mark.parametrize(
    ("splitter", "n_times", "match"),
    [
        (WalkForward(n_splits=5), 5, r"at least n_splits \+ 1 = 6 .* Received: n_times=5"),
        (
            WalkForward(n_splits=3, test_size=3, horizon=2),
            10,
            r"empty training set.* = 11\. Received: n_times=10, n_splits=3, test_size=3",
        ),
        (
            WalkForward(n_splits=2, gap=3),
            9,
            r"= 10\. Received: n_times=9, n_splits=2, test_size=3, horizon=1, gap=3",
        ),
        (PurgedKFold(n_splits=5), 4, r"Received: n_splits=5, n_times=4"),
        (PurgedKFold(n_splits=2, horizon=5), 6, r"\[0, 2\] has an empty training set"),
        (PurgedKFold(n_splits=2, embargo=0.9), 6, r"Received: n_times=6, .* embargo=6"),
    ],
)
def test_too_few_times_for_the_folds_raise(splitter, n_times, match):
    with pytest.raises(ValueError, match=match):
        next(splitter.split(np.zeros(n_times)))


def test_groups_must_hold_one_time_per_sample():
    with pytest.raises(ValueError, match=r"shape \(6,\)\. Received: groups\.shape=\(5,\)"):
        next(WalkForward(n_splits=2).split(np.zeros(6), groups=np.arange(5)))


@pytest.mark.parametrize(
    "splitter",
    [
        WalkForward(n_splits=3, horizon=2),
        WalkForward(n_splits=2, mode="rolling", train_size=5, gap=1),
        PurgedKFold(n_splits=4, horizon=2, embargo=1),
    ],
    ids=_one_line,
)
@pytest.mark.parametrize("container", ["array", "list", "frame", "sparse"])
def test_what_check_cv_and_the_cv_loops_expect(splitter, container, regression_panel):
    X, y, times = regression_panel
    given = {
        "array": X,
        "list": X.tolist(),
        "frame": pd.DataFrame(X),
        "sparse": scipy.sparse.csr_matrix(X),
    }[container]
    assert check_cv(splitter, y) is splitter  # taken as it is, not wrapped
    for groups in (None, times, pd.Series(times)):
        folds = list(splitter.split(given, y, groups))
        assert len(folds) == splitter.get_n_splits(given, y, groups)
        for train, test in folds:
            for indices in (train, test):
                assert indices.dtype.kind == "i" and indices.ndim == 1
                assert len(indices) and np.all((indices >= 0) & (indices < len(y)))
                assert np.array_equal(indices, np.unique(indices))
            assert not np.intersect1d(train, test).size
            if groups is not None:  # a time is on one side of the split only
                assert not np.intersect1d(np.asarray(groups)[train], np.asarray(groups)[test]).size
    search = GridSearchCV(LinearRegression(), {"fit_intercept": [True, False]}, cv=splitter)
    search.fit(X, y, groups=times)
    assert len(search.cv_results_["split0_test_score"]) == 2
