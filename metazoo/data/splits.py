"""Time-series cross-validation splitters that keep forecast labels out of the test folds.

A sample at time position `k` is a forecast made at `k` whose label covers the positions
`[k + 1, k + horizon]`. The splitters choose folds among the sorted unique times given as
`groups` (or the sample order when `groups` is None), so all samples of one timestamp, such as
every symbol of a panel on one date, land on the same side of a split. Both follow the
scikit-learn splitter interface and can be passed as `cv=` to `cross_val_score` and friends.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator

from metazoo.validation import check_choice, check_count

__all__ = ["PurgedKFold", "WalkForward"]

_MODES = ("expanding", "rolling")

Fold = tuple[np.ndarray, np.ndarray]


def _time_positions(X, groups) -> tuple[np.ndarray, int]:
    """Each sample's position among the sorted unique times, and the number of unique times."""
    n_samples = X.shape[0] if hasattr(X, "shape") else len(X)
    if groups is None:
        return np.arange(n_samples), n_samples
    times = np.asarray(groups)
    if times.shape != (n_samples,):
        raise ValueError(
            f"groups must hold one time per sample, with shape ({n_samples},). "
            f"Received: groups.shape={times.shape}"
        )
    if pd.isna(times).any():
        raise ValueError(
            f"groups must not hold NaN or NaT times. Received: {times[pd.isna(times)][:3]}"
        )
    try:
        unique, positions = np.unique(times, return_inverse=True)
    except TypeError as error:
        raise TypeError(
            f"groups must be times of one sortable kind. Received: {error} ({times[:3]}...)"
        ) from error
    return positions.reshape(-1), len(unique)


class _TimeSplitter(BaseCrossValidator):
    """Shared `split` for splitters whose folds are chosen among unique time positions."""

    # Under scikit-learn metadata routing, ask for `groups` (the sample times) in `split`.
    __metadata_request__split = {"groups": True}

    def split(self, X, y=None, groups=None) -> Iterator[Fold]:
        """Yield the train and test indices of each fold.

        Args:
            X: Array-like `(n_samples, ...)`; only its length is used.
            y: Ignored; present for compatibility with scikit-learn.
            groups: Optional `(n_samples,)` time of each sample: ints, `datetime64`, Timestamps
                or any sortable values. If None, sample `i` is at time position `i`.

        Yields:
            `(train, test)`: sorted int arrays of indices into `X`.

        Raises:
            ValueError: If a parameter is invalid or there are too few unique times.
        """
        positions, n_times = _time_positions(X, groups)
        for train, test in self._position_folds(n_times):
            yield np.flatnonzero(train[positions]), np.flatnonzero(test[positions])

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """The number of folds, `n_splits`, after checking the parameters."""
        self._check_params()
        return int(self.n_splits)

    def _check_params(self) -> None:
        raise NotImplementedError

    def _position_folds(self, n_times: int) -> list[Fold]:
        """`(train, test)` boolean masks over the `n_times` time positions, one pair a fold."""
        raise NotImplementedError


class WalkForward(_TimeSplitter):
    """Walk-forward validation: each fold tests a later block of time and trains on its past.

    The test folds are the last `n_splits * test_size` time positions, cut into consecutive
    blocks of `test_size`. For a test block starting at position `a`, training uses positions
    `k <= a - horizon - gap`, so every training label ends before the first test forecast is
    made, with `gap` more positions left out. With `horizon=1` this matches scikit-learn's
    `TimeSeriesSplit`, applied to unique times rather than samples.

    Args:
        n_splits: Number of folds, >= 1.
        mode: `"expanding"` trains on all the past; `"rolling"` on its last `train_size`
            time positions.
        train_size: Training time positions per fold; required for `"rolling"`, not allowed
            for `"expanding"`. Early folds may have fewer.
        test_size: Time positions per test fold; if None, `n_times // (n_splits + 1)`.
        gap: Extra time positions dropped between the training labels and the test block.
        horizon: Time steps each label looks ahead, >= 1.

    Example:
        >>> splitter = WalkForward(n_splits=2, test_size=2, horizon=2)
        >>> [(train.tolist(), test.tolist()) for train, test in splitter.split(range(8))]
        [([0, 1, 2], [4, 5]), ([0, 1, 2, 3, 4], [6, 7])]

    References:
        Pardo, R. (2008). The Evaluation and Optimization of Trading Strategies, 2nd ed.
        Wiley. (Walk-forward analysis.)
    """

    def __init__(
        self, n_splits=5, mode="expanding", train_size=None, test_size=None, gap=0, horizon=1
    ):
        self.n_splits = n_splits
        self.mode = mode
        self.train_size = train_size
        self.test_size = test_size
        self.gap = gap
        self.horizon = horizon

    def _check_params(self) -> None:
        check_count("n_splits", self.n_splits, 1, allow_float=False)
        check_choice("mode", self.mode, _MODES)
        if self.mode == "rolling" and self.train_size is None:
            raise ValueError(
                'mode="rolling" needs train_size, an int >= 1. Received: train_size=None'
            )
        if self.mode == "rolling":
            check_count("train_size", self.train_size, 1, allow_float=False)
        elif self.train_size is not None:
            raise ValueError(
                'train_size is only used with mode="rolling"; mode="expanding" trains on all '
                f"the past. Received: train_size={self.train_size!r}"
            )
        if self.test_size is not None:
            check_count("test_size", self.test_size, 1, allow_float=False)
        check_count("gap", self.gap, 0, allow_float=False)
        check_count("horizon", self.horizon, 1, allow_float=False)

    def _fold_test_size(self, n_times: int) -> int:
        if self.test_size is not None:
            return int(self.test_size)
        test_size = n_times // (self.n_splits + 1)
        if test_size < 1:
            raise ValueError(
                f"{self.n_splits} walk-forward folds need at least n_splits + 1 = "
                f"{self.n_splits + 1} unique times, or an explicit test_size. "
                f"Received: n_times={n_times}"
            )
        return test_size

    def _position_folds(self, n_times: int) -> list[Fold]:
        self._check_params()
        test_size = self._fold_test_size(n_times)
        first_test = n_times - self.n_splits * test_size
        needed = self.n_splits * test_size + self.horizon + self.gap
        if n_times < needed:
            raise ValueError(
                "The first walk-forward fold would have an empty training set: it needs "
                f"n_times >= n_splits * test_size + horizon + gap = {needed}. "
                f"Received: n_times={n_times}, n_splits={self.n_splits}, "
                f"test_size={test_size}, horizon={self.horizon}, gap={self.gap}"
            )
        positions = np.arange(n_times)
        folds = []
        for start in range(first_test, n_times, test_size):
            last_train = start - self.horizon - self.gap
            first_train = 0 if self.mode == "expanding" else last_train - self.train_size + 1
            train = (positions >= first_train) & (positions <= last_train)
            test = (positions >= start) & (positions < start + test_size)
            folds.append((train, test))
        return folds


class PurgedKFold(_TimeSplitter):
    """K-fold over contiguous blocks of time, purged of label overlap, with an embargo.

    The unique times are cut into `n_splits` contiguous blocks, as `KFold` without shuffling
    does (the first `n_times % n_splits` blocks get one position more), and each block is the
    test fold once. Training uses both earlier and later data, minus every position whose label
    span overlaps the test labels (purging): for a test block `[a, b]`, training keeps positions
    `k <= a - horizon` or `k >= b + horizon + embargo_steps`. The embargo drops later positions
    whose features may still carry information from the test period.

    Args:
        n_splits: Number of folds, >= 2.
        horizon: Time steps each label looks ahead, >= 1.
        embargo: Time positions dropped after each test block on top of the purge: an int >= 0,
            or a float in `[0, 1)` for that fraction of the unique times, rounded up.

    Example:
        >>> splitter = PurgedKFold(n_splits=3, horizon=2)
        >>> [train.tolist() for train, _ in splitter.split(range(9))]
        [[4, 5, 6, 7, 8], [0, 1, 7, 8], [0, 1, 2, 3, 4]]

    References:
        Lopez de Prado, M. (2018). Advances in Financial Machine Learning, ch. 7
        "Cross-Validation in Finance". Wiley.
    """

    def __init__(self, n_splits=5, horizon=1, embargo=0):
        self.n_splits = n_splits
        self.horizon = horizon
        self.embargo = embargo

    def _check_params(self) -> None:
        check_count("n_splits", self.n_splits, 2, allow_float=False)
        check_count("horizon", self.horizon, 1, allow_float=False)
        self._embargo_steps(n_times=0)

    def _embargo_steps(self, n_times: int) -> int:
        embargo = self.embargo
        if isinstance(embargo, Integral) and not isinstance(embargo, bool) and embargo >= 0:
            return int(embargo)
        if isinstance(embargo, Real) and not isinstance(embargo, Integral) and 0 <= embargo < 1:
            # Round off float noise first, so that 0.3 of 10 times is 3 steps, not 4.
            return math.ceil(round(embargo * n_times, 9))
        raise ValueError(
            "embargo expected an integer >= 0 (time steps) or a float in [0, 1) (a fraction of the "
            f"unique times). Received: embargo={embargo!r}"
        )

    def _position_folds(self, n_times: int) -> list[Fold]:
        self._check_params()
        if self.n_splits > n_times:
            raise ValueError(
                "n_splits cannot be larger than the number of unique times. "
                f"Received: n_splits={self.n_splits}, n_times={n_times}"
            )
        embargo = self._embargo_steps(n_times)
        sizes = np.full(self.n_splits, n_times // self.n_splits)
        sizes[: n_times % self.n_splits] += 1
        stops = np.cumsum(sizes)
        positions = np.arange(n_times)
        folds = []
        for start, stop in zip(stops - sizes, stops, strict=True):
            first, last = int(start), int(stop) - 1
            before = positions <= first - self.horizon
            after = positions >= last + self.horizon + embargo
            if not (before | after).any():
                raise ValueError(
                    f"The fold testing time positions [{first}, {last}] has an empty training "
                    "set after purging and embargo. Use fewer folds, a shorter horizon or "
                    f"embargo, or more data. Received: n_times={n_times}, "
                    f"n_splits={self.n_splits}, horizon={self.horizon}, embargo={embargo}"
                )
            folds.append((before | after, (positions >= first) & (positions <= last)))
        return folds
