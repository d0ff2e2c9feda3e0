import math

import numpy as np
import pandas as pd
import pytest

from metazoo.data import (
    asset_group_folds,
    chronological_cutoffs,
    cutoff_masks,
    make_windows,
    split_at_cutoffs,
    universe,
)
from tests.conftest import make_prices


@pytest.fixture
def staggered():
    """Three assets with different spans: one ends before another starts."""
    parts = [
        make_prices(n_days=200, symbols=("OLD",), seed=1, start="1990-01-01"),
        make_prices(n_days=150, symbols=("MID",), seed=2, start="1990-06-01"),
        make_prices(n_days=120, symbols=("NEW",), seed=3, start="2001-01-01"),
    ]
    return pd.concat(parts, ignore_index=True).sort_values(["symbol", "date"], ignore_index=True)


def _calendar(frame, symbol):
    return np.sort(frame.loc[frame["symbol"] == symbol, "date"].to_numpy("datetime64[ns]"))


def test_each_asset_is_evaluated_on_the_last_part_of_its_own_history(staggered):
    cutoffs = chronological_cutoffs(staggered, test_fraction=0.3, purge=2, embargo=5)
    assert list(cutoffs.index) == ["MID", "NEW", "OLD"]
    for symbol, row in cutoffs.iterrows():
        days = _calendar(staggered, symbol)
        n_eval = math.ceil(0.3 * len(days))
        at = len(days) - n_eval
        assert row["eval_start"] == days[at]
        assert row["label_cutoff"] == days[at - 5]
        assert row["train_cutoff"] == days[at - 5 - 2]
        assert (row["rows"], row["eval_rows"], row["train_rows"]) == (len(days), n_eval, at - 7)
        assert (row["first"], row["last"]) == (days[0], days[-1])
    # Each asset in its own chronology: NEW's evaluation starts after OLD's history ends.
    assert cutoffs.loc["NEW", "eval_start"] > cutoffs.loc["OLD", "last"]


@pytest.mark.parametrize("horizon, purge, embargo", [(1, 0, 0), (3, 0, 5), (5, 2, 10)])
def test_no_training_label_reaches_the_evaluation_start_minus_embargo(
    staggered, horizon, purge, embargo
):
    windows = make_windows(staggered, lookback=5, horizon=horizon, features=["log_return"])
    cutoffs = chronological_cutoffs(windows, test_fraction=0.3, purge=purge, embargo=embargo)
    train, evaluation = split_at_cutoffs(windows, cutoffs)
    train_mask, eval_mask = cutoff_masks(windows, cutoffs)
    assert not (train_mask & eval_mask).any()
    assert len(train) == train_mask.sum() and len(evaluation) == eval_mask.sum()
    for symbol, row in cutoffs.iterrows():
        days = _calendar(staggered, symbol)
        at = int(np.searchsorted(days, np.datetime64(row["eval_start"], "ns")))
        mine = train.symbols == symbol
        assert mine.any()
        # Labels end before the day `embargo` trading days ahead of the evaluation start.
        assert (train.label_end[mine] < days[at - embargo]).all()
        assert (train.times[mine] < days[at - embargo - purge]).all()
        # The evaluation set is the symbol's last 30% of windows, and nothing later trains.
        times = np.sort(windows.times[windows.symbols == symbol])
        expected = times[len(times) - math.ceil(0.3 * len(times)) :]
        np.testing.assert_array_equal(
            np.sort(evaluation.times[evaluation.symbols == symbol]), expected
        )
        # Maximal: the first window left out of training breaks one of the two rules.
        left = windows[(windows.symbols == symbol) & ~train_mask & ~eval_mask]
        if len(left):
            first = np.argmin(left.times)
            assert (
                left.label_end[first] >= row["label_cutoff"]
                or left.times[first] >= row["train_cutoff"]
            )


def test_training_windows_do_not_change_when_the_future_does(staggered):
    windows = make_windows(staggered, lookback=5, horizon=2)
    cutoffs = chronological_cutoffs(windows, purge=0, embargo=3)
    train, _ = split_at_cutoffs(windows, cutoffs)

    changed = staggered.copy()
    after = (
        changed["date"].to_numpy() >= cutoffs["label_cutoff"].reindex(changed["symbol"]).to_numpy()
    )
    for column in ("open", "high", "low", "close"):
        changed.loc[after, column] *= 1.5
    changed_windows = make_windows(changed, lookback=5, horizon=2)
    assert chronological_cutoffs(changed_windows, purge=0, embargo=3).equals(cutoffs)
    changed_train, _ = split_at_cutoffs(changed_windows, cutoffs)
    np.testing.assert_array_equal(changed_train.times, train.times)
    np.testing.assert_allclose(changed_train.X, train.X)
    np.testing.assert_allclose(changed_train.y, train.y)


def test_a_price_frame_is_split_by_forecast_dates(staggered):
    cutoffs = chronological_cutoffs(staggered, test_fraction=0.25, purge=1)
    train, evaluation = split_at_cutoffs(staggered, cutoffs)
    assert len(train) + len(evaluation) == len(staggered) - len(cutoffs)  # one purged row each
    assert (evaluation.groupby("symbol").size() == cutoffs["eval_rows"]).all()
    assert (train.groupby("symbol")["date"].max() < cutoffs["train_cutoff"]).all()


def _table(classes):
    symbols = [f"{c[:3].upper()}{i}" for c, n in classes.items() for i in range(n)]
    labels = [c for c, n in classes.items() for _ in range(n)]
    return pd.DataFrame({"symbol": symbols, "asset_class": labels})


def test_group_folds_hold_every_asset_out_once_and_spread_each_class():
    table = _table({"equity_index": 7, "stock": 6, "currency": 6, "commodity": 3})
    folds = asset_group_folds(table, n_groups=5, seed=0)
    assert len(folds) == 5
    tested = [s for fold in folds for s in fold.test]
    assert sorted(tested) == sorted(table["symbol"])  # each symbol in exactly one group
    for fold in folds:
        assert set(fold.train) == set(table["symbol"]) - set(fold.test)
    sizes = [len(fold.test) for fold in folds]
    assert max(sizes) - min(sizes) <= 1
    cls = table.set_index("symbol")["asset_class"]
    for name, count in cls.value_counts().items():
        per_group = [sum(cls[s] == name for s in fold.test) for fold in folds]
        assert sum(g > 0 for g in per_group) == min(count, 5), name
        assert max(per_group) - min(per_group) <= 1, name


def test_group_folds_are_reproducible_by_seed_and_independent_of_row_order():
    table = universe()
    folds = asset_group_folds(table, seed=3)
    assert asset_group_folds(table, seed=3) == folds
    assert asset_group_folds(table.sample(frac=1.0, random_state=1), seed=3) == folds
    assert any(asset_group_folds(table, seed=s) != folds for s in range(4, 8))
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    asset_group_folds(table, seed=0)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002


def test_held_out_class_trains_without_it_and_tests_on_it():
    table = universe()
    [fold] = asset_group_folds(table, held_out_class="currency")
    currencies = set(table.index[table["asset_class"] == "currency"])
    assert set(fold.test) == currencies and len(currencies) >= 5
    assert not set(fold.train) & currencies
    assert set(fold.train) | set(fold.test) == set(table.index)


def test_unstratified_folds_still_cover_every_symbol():
    table = _table({"a": 4, "b": 4})
    folds = asset_group_folds(table, n_groups=4, stratify=None, seed=1)
    assert sorted(s for f in folds for s in f.test) == sorted(table["symbol"])
    assert [len(f.test) for f in folds] == [2, 2, 2, 2]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"test_fraction": 0.0}, ValueError, "test_fraction expected"),
        ({"test_fraction": 1.0}, ValueError, "test_fraction expected"),
        ({"test_fraction": "0.3"}, ValueError, "test_fraction expected"),
        ({"purge": -1}, ValueError, "purge expected an integer >= 0"),
        ({"embargo": 1.5}, ValueError, "embargo expected an integer >= 0"),
        ({"embargo": 500}, ValueError, "too short a history for \\['MID', 'NEW', 'OLD'\\]"),
    ],
)
def test_cutoffs_refuse_bad_arguments(staggered, kwargs, error, message):
    with pytest.raises(error, match=message):
        chronological_cutoffs(staggered, **kwargs)


def test_cutoffs_refuse_bad_data(staggered):
    with pytest.raises(TypeError, match="`data` expected a long price frame or a WindowSet"):
        chronological_cutoffs(staggered.to_numpy())
    with pytest.raises(ValueError, match="'date' and 'symbol' columns"):
        chronological_cutoffs(staggered.drop(columns="symbol"))
    cutoffs = chronological_cutoffs(staggered[staggered["symbol"] != "NEW"])
    with pytest.raises(ValueError, match="Missing: \\['NEW'\\]"):
        split_at_cutoffs(staggered, cutoffs)
    with pytest.raises(TypeError, match="`cutoffs` expected the frame"):
        split_at_cutoffs(staggered, {"NEW": "2001-01-01"})


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"n_groups": 1}, ValueError, "n_groups expected an integer >= 2"),
        ({"n_groups": 9}, ValueError, "at most the number of symbols \\(8\\)"),
        ({"stratify": "sector"}, ValueError, "`stratify` expected a column"),
        ({"held_out_class": "crypto"}, ValueError, "`held_out_class` expected one of"),
        ({"held_out_class": "a", "stratify": None}, ValueError, "`held_out_class` expected"),
        ({"seed": 0.5}, ValueError, "seed expected an integer >= 0. Received: seed=0.5"),
    ],
)
def test_group_folds_refuse_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        asset_group_folds(_table({"a": 4, "b": 4}), **kwargs)


def test_group_folds_refuse_bad_tables():
    with pytest.raises(TypeError, match="`table` expected a DataFrame"):
        asset_group_folds(["A", "B"])
    with pytest.raises(ValueError, match="Received duplicates: \\['A'\\]"):
        asset_group_folds(pd.DataFrame({"symbol": ["A", "A", "B"], "asset_class": "x"}))
    with pytest.raises(ValueError, match="'symbol' column or index"):
        asset_group_folds(pd.DataFrame({"ticker": ["A", "B"], "asset_class": "x"}), n_groups=2)
