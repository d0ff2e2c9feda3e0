"""Tests for lookback windows and their scaler in metazoo.data.windows."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from metazoo.data import (
    WindowScaler,
    compute_features,
    compute_targets,
    load_prices,
    make_windows,
)
from tests.conftest import make_prices

FEATURES = ["log_return", "rv_cc:5", "momentum:3", "range", "volume_z:4"]


def _frame(n_days=60, symbols=("AAA", "BBB"), seed=0, drop_from=None):
    """A validated frame; `drop_from` removes a few dates of that symbol so calendars differ."""
    raw = make_prices(n_days, symbols, seed)
    if drop_from is not None:
        rows = np.flatnonzero(raw["symbol"].to_numpy() == drop_from)
        raw = raw.drop(index=raw.index[rows[[7, 8, 20, 33]]])
    return load_prices(raw)


def _symbol_rows(frame):
    """`{symbol: (dates, position of each date)}` in each symbol's own trading calendar."""
    out = {}
    for symbol, rows in frame.groupby("symbol").indices.items():
        dates = frame["date"].to_numpy()[rows]
        out[symbol] = (dates, {date: i for i, date in enumerate(dates)})
    return out


def _shift_after(frame, cut, factor=1.3):
    """Prices and volumes scaled by `factor` on every date after `cut`."""
    moved = frame.copy()
    after = moved["date"] > cut
    for column in ("open", "high", "low", "close", "volume"):
        moved.loc[after, column] *= factor
    return moved


# --- shapes and order ----------------------------------------------------------------------


@pytest.mark.parametrize(("lookback", "horizon"), [(1, 1), (4, 3), (10, 2)])
def test_shapes_dtypes_and_order(lookback, horizon):
    windows = make_windows(_frame(), lookback=lookback, horizon=horizon, features=FEATURES)
    n = len(windows)
    assert n > 0
    assert windows.X.shape == (n, lookback, len(FEATURES))
    assert windows.X.dtype == np.float32
    assert windows.y.shape == (n, horizon)
    assert windows.y.dtype == np.float32
    assert windows.times.shape == windows.symbols.shape == windows.label_end.shape == (n,)
    assert windows.feature_names == tuple(FEATURES)
    assert windows.target_names == tuple(f"return_{step}" for step in range(1, horizon + 1))
    assert windows.lookback == lookback
    assert windows.horizon == horizon
    assert np.isfinite(windows.X).all() and np.isfinite(windows.y).all()
    keys = list(zip(windows.times, windows.symbols, strict=True))
    assert keys == sorted(keys)
    assert len(set(keys)) == n


def test_cumulative_target_is_the_sum_over_the_horizon():
    frame = _frame()
    daily = make_windows(frame, lookback=3, horizon=4, features=FEATURES)
    total = make_windows(frame, lookback=3, horizon=4, features=FEATURES, cumulative=True)
    assert total.y.shape == (len(daily), 1)
    assert total.target_names == ("return_sum_4",)
    np.testing.assert_array_equal(total.times, daily.times)
    np.testing.assert_allclose(total.y[:, 0], daily.y.sum(axis=1), rtol=1e-5, atol=1e-7)


# --- alignment with features and targets ---------------------------------------------------


@pytest.mark.parametrize(("lookback", "horizon"), [(1, 1), (5, 3)])
def test_windows_align_with_features_targets_and_calendar(lookback, horizon):
    frame = _frame(drop_from="BBB")
    windows = make_windows(frame, lookback=lookback, horizon=horizon, features=FEATURES)
    feats = compute_features(frame, FEATURES).set_index(["symbol", "date"])
    targets = compute_targets(frame, "return", horizon).set_index(["symbol", "date"])
    calendars = _symbol_rows(frame)
    assert set(windows.symbols) == {"AAA", "BBB"}
    for i in range(len(windows)):
        symbol, time = windows.symbols[i], windows.times[i]
        dates, position = calendars[symbol]
        row = position[time]
        first = (symbol, pd.Timestamp(dates[row - lookback + 1]))
        np.testing.assert_allclose(
            windows.X[i, -1], feats.loc[(symbol, pd.Timestamp(time))], rtol=1e-6
        )
        np.testing.assert_allclose(windows.X[i, 0], feats.loc[first], rtol=1e-6)
        np.testing.assert_allclose(
            windows.y[i], targets.loc[(symbol, pd.Timestamp(time))], rtol=1e-6
        )
        assert windows.label_end[i] == dates[row + horizon]


@pytest.mark.parametrize("horizon", [1, 3])
@pytest.mark.parametrize("lookback", [1, 4, 9])
def test_no_look_ahead(lookback, horizon):
    frame = _frame(n_days=70, symbols=("AAA", "BBB", "CCC"), seed=lookback + horizon)
    dates = np.sort(frame["date"].unique())
    cut = dates[np.random.default_rng(lookback * 10 + horizon).integers(35, 55)]
    before = make_windows(frame, lookback=lookback, horizon=horizon, features=FEATURES)
    after = make_windows(
        _shift_after(frame, cut), lookback=lookback, horizon=horizon, features=FEATURES
    )
    np.testing.assert_array_equal(before.times, after.times)
    np.testing.assert_array_equal(before.symbols, after.symbols)
    past = before.times <= cut
    known = before.label_end <= cut
    assert past.any() and known.any()
    np.testing.assert_array_equal(before.X[past], after.X[past])
    np.testing.assert_array_equal(before.y[known], after.y[known])
    assert not np.array_equal(before.X[~past], after.X[~past])
    assert not np.array_equal(before.y[~known], after.y[~known])
    for name, kept in (("truth", known), ("next_return", known), ("trailing_vol", past)):
        np.testing.assert_array_equal(before.annotations[name][kept], after.annotations[name][kept])


def _lookup(frame_rows, column, windows):
    """`column` of `frame_rows` (date, symbol, ...) at every sample's date and symbol."""
    table = frame_rows.set_index(["symbol", "date"])[column]
    return table.reindex(pd.MultiIndex.from_arrays([windows.symbols, windows.times])).to_numpy()


@pytest.mark.parametrize("horizon", [1, 3])
def test_annotations_are_the_exact_truth_next_return_and_trailing_vol(horizon):
    frame = _frame(n_days=70, drop_from="BBB")
    windows = make_windows(frame, lookback=2, horizon=horizon, features=FEATURES)
    notes = windows.annotations
    assert set(notes) == {"truth", "next_return", "trailing_vol"}
    targets = compute_targets(frame, "return", horizon)
    truth = np.stack([_lookup(targets, c, windows) for c in targets.columns[2:]], axis=1)
    assert notes["truth"].dtype == np.float64 and notes["truth"].shape == windows.y.shape
    np.testing.assert_array_equal(notes["truth"], truth)
    np.testing.assert_array_equal(notes["truth"].astype(np.float32), windows.y)
    next_return = compute_targets(frame, "return", 1)
    np.testing.assert_array_equal(notes["next_return"], _lookup(next_return, "return_1", windows))
    vol = compute_features(frame, ["rv_cc:21"])
    np.testing.assert_array_equal(notes["trailing_vol"], _lookup(vol, "rv_cc:21", windows))
    assert np.isnan(notes["trailing_vol"]).any()  # its warm-up is longer than the features'
    assert np.isfinite(notes["trailing_vol"][-10:]).all()


def test_annotations_travel_with_selection_scaling_and_evaluation_episodes():
    from metazoo.data import EvaluationEpisodes, TaskSet

    frame = _frame(n_days=90, symbols=("AAA", "BBB", "CCC"))
    windows = make_windows(frame, lookback=3, horizon=2, features=FEATURES)
    vol = compute_features(frame, ["rv_cc:21"])
    targets = compute_targets(frame, "return", 2)

    def check(part):
        np.testing.assert_array_equal(
            part.annotations["trailing_vol"], _lookup(vol, "rv_cc:21", part)
        )
        np.testing.assert_array_equal(
            part.annotations["truth"][:, 1], _lookup(targets, "return_2", part)
        )

    check(windows.select(symbols=["BBB", "CCC"], start=windows.times[30]))
    check(windows[np.arange(len(windows))[::-3]])
    scaled = WindowScaler(scale_targets=True).fit(windows[:40]).transform(windows)
    assert not np.allclose(scaled.y, windows.y)  # the targets are scaled, the truth is not
    check(scaled)
    tasks = TaskSet.from_windows(scaled, period="M")
    episodes = EvaluationEpisodes.from_tasks("later_periods", tasks, support_size=3)
    query = episodes.query_windows()
    assert len(query) == len(episodes.unpad(episodes.batch.query_y))
    check(query)


@pytest.mark.parametrize(("lookback", "horizon"), [(1, 1), (4, 1), (6, 3)])
def test_samples_start_after_warm_up_and_end_before_horizon(lookback, horizon):
    frame = _frame(n_days=40, drop_from="BBB")
    windows = make_windows(frame, lookback=lookback, horizon=horizon, features=["log_return"])
    for symbol, (dates, _) in _symbol_rows(frame).items():
        times = windows.select(symbols=symbol).times
        np.testing.assert_array_equal(times, dates[lookback : len(dates) - horizon])


# --- selection and indexing ----------------------------------------------------------------


@pytest.fixture
def windows():
    return make_windows(
        _frame(symbols=("AAA", "BBB", "CCC")), lookback=3, horizon=2, features=FEATURES
    )


def test_select_by_symbols_and_dates(windows):
    start, end = windows.times[30], windows.times[90]
    picked = windows.select(symbols=["AAA", "CCC"], start=start, end=end)
    expected = (
        np.isin(windows.symbols, ["AAA", "CCC"]) & (windows.times >= start) & (windows.times <= end)
    )
    np.testing.assert_array_equal(picked.times, windows.times[expected])
    np.testing.assert_array_equal(picked.symbols, windows.symbols[expected])
    np.testing.assert_array_equal(picked.X, windows.X[expected])
    assert picked.times[0] == start and picked.times[-1] == end
    assert set(windows.select(symbols="BBB").symbols) == {"BBB"}


def test_select_label_end_before_is_strict(windows):
    bound = windows.label_end[50]
    kept = windows.select(label_end_before=bound)
    np.testing.assert_array_equal(kept.times, windows.times[windows.label_end < bound])
    assert (kept.label_end < bound).all()
    assert len(kept) < len(windows[windows.label_end <= bound])


def test_indexing_by_mask_slice_and_array(windows):
    mask = windows.symbols == "BBB"
    np.testing.assert_array_equal(windows[mask].y, windows.y[mask])
    np.testing.assert_array_equal(windows[list(mask)].times, windows.times[mask])
    part = windows[5:12]
    assert len(part) == 7
    np.testing.assert_array_equal(part.label_end, windows.label_end[5:12])
    order = np.array([9, 2, 4])
    picked = windows[order]
    np.testing.assert_array_equal(picked.X, windows.X[order])
    np.testing.assert_array_equal(picked.symbols, windows.symbols[order])
    assert picked.feature_names == windows.feature_names
    assert picked.horizon == windows.horizon
    with pytest.raises(IndexError, match="mask needs"):
        windows[mask[:-1]]


def test_to_frame_with_and_without_predictions(windows):
    frame = windows.to_frame()
    assert list(frame.columns) == ["date", "symbol", "return_1", "return_2"]
    np.testing.assert_array_equal(frame["return_2"].to_numpy(), windows.y[:, 1])
    np.testing.assert_array_equal(frame["symbol"].to_numpy(), windows.symbols)
    predictions = windows.y * 2 + 1
    with_pred = windows.to_frame(predictions)
    np.testing.assert_array_equal(with_pred["return_1_pred"].to_numpy(), predictions[:, 0])
    np.testing.assert_array_equal(with_pred["return_2_pred"].to_numpy(), predictions[:, 1])
    with pytest.raises(ValueError, match="predictions must have shape"):
        windows.to_frame(predictions[:, :1])
    one_day = make_windows(_frame(), lookback=2, horizon=1, features=["log_return"])
    flat = one_day.to_frame(np.arange(len(one_day), dtype=float))
    np.testing.assert_array_equal(flat["return_1_pred"].to_numpy(), np.arange(len(one_day)))


# --- scaler --------------------------------------------------------------------------------


def test_scaler_standardizes_train_with_train_statistics(windows):
    train, test = windows[:100], windows[100:]
    scaler = WindowScaler().fit(train)
    scaled = scaler.transform(train).X[:, -1]
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(axis=0), 1, atol=1e-4)
    mean = train.X[:, -1].mean(axis=0)
    std = train.X[:, -1].std(axis=0)
    np.testing.assert_allclose(
        scaler.transform(test).X, (test.X - mean) / std, rtol=1e-5, atol=1e-5
    )
    assert scaler.transform(test).X.dtype == np.float32
    np.testing.assert_array_equal(scaler.transform(test).y, test.y)


def test_scaler_statistics_ignore_the_transformed_data(windows):
    train, test = windows[:100], windows[100:]
    scaler = WindowScaler().fit(train)
    mean, scale = scaler.mean_.copy(), scaler.scale_.copy()
    changed = replace(test, X=test.X * 5 + 3)
    scaler.transform(changed)
    np.testing.assert_array_equal(scaler.mean_, mean)
    np.testing.assert_array_equal(scaler.scale_, scale)
    refit = WindowScaler().fit(windows[:100])
    np.testing.assert_array_equal(scaler.transform(test).X, refit.transform(test).X)


def test_per_symbol_scaler(windows):
    train = windows.select(symbols=["AAA", "BBB"])
    scaler = WindowScaler(per_symbol=True).fit(train)
    assert set(scaler.mean_) == {"AAA", "BBB"}
    assert not np.allclose(scaler.mean_["AAA"], scaler.mean_["BBB"])
    assert not np.allclose(scaler.scale_["AAA"], scaler.scale_["BBB"])
    scaled = scaler.transform(train)
    for symbol in ("AAA", "BBB"):
        last = scaled.X[scaled.symbols == symbol, -1]
        np.testing.assert_allclose(last.mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(last.std(axis=0), 1, atol=1e-4)
    with pytest.raises(ValueError, match=r"unseen symbols \['CCC'\]"):
        scaler.transform(windows)


def test_scaler_errors(windows):
    with pytest.raises(RuntimeError, match="not fitted"):
        WindowScaler().transform(windows)
    with pytest.raises(TypeError, match="takes a WindowSet"):
        WindowScaler().fit(windows.X)
    with pytest.raises(TypeError, match="takes a WindowSet"):
        WindowScaler().fit(windows).transform(windows.X)
    other = make_windows(_frame(), lookback=3, horizon=2, features=["log_return", "range"])
    with pytest.raises(ValueError, match="Features differ"):
        WindowScaler().fit(windows).transform(other)


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("lookback", [0, -2, 2.5])
def test_bad_lookback_raises(lookback):
    with pytest.raises(ValueError, match="lookback expected an integer >= 1"):
        make_windows(_frame(), lookback=lookback, features=["log_return"])


def test_unknown_feature_raises():
    with pytest.raises(ValueError, match="Unknown feature kind"):
        make_windows(_frame(), lookback=2, features=["log_return", "sentiment"])


def test_too_few_rows_raises_and_names_the_short_symbol():
    frame = load_prices(
        pd.concat([make_prices(40, ("AAA",)), make_prices(8, ("BBB",), seed=1)], ignore_index=True)
    )
    with pytest.raises(ValueError, match=r"Too few rows.*'BBB': 8"):
        make_windows(frame, lookback=10, horizon=1, features=["log_return"])
    make_windows(frame, lookback=5, horizon=1, features=["log_return"])


def test_scalar_index_is_refused_and_empty_index_is_empty():
    windows = make_windows(load_prices(make_prices(40)), lookback=3, features=["log_return"])
    with pytest.raises(IndexError, match="use ws\\[\\[i\\]\\] for one sample"):
        windows[3]
    one = windows[[3]]
    assert len(one) == 1 and one.X.shape == (1, 3, 1)
    assert len(windows[[]]) == 0


@pytest.mark.parametrize("feature, warmup", [("ma_gap:5", 4), ("rv_cc:5", 5), ("range", 0)])
def test_too_few_rows_message_states_the_exact_minimum(feature, warmup):
    lookback, horizon = 3, 2
    need = warmup + lookback + horizon
    enough = load_prices(make_prices(need, symbols=("AAA",)))
    assert len(make_windows(enough, lookback, horizon, features=[feature])) == 1
    short = load_prices(make_prices(need - 1, symbols=("AAA",)))
    with pytest.raises(ValueError, match=f"at least {need} rows per symbol"):
        make_windows(short, lookback, horizon, features=[feature])


def test_target_scaling_uses_training_statistics_and_inverts():
    windows = make_windows(
        load_prices(make_prices(80)), lookback=3, horizon=2, features=["log_return"]
    )
    train, test = windows[: len(windows) // 2], windows[len(windows) // 2 :]
    scaler = WindowScaler(scale_targets=True).fit(train)
    scaled_train, scaled_test = scaler.transform(train), scaler.transform(test)
    np.testing.assert_allclose(scaled_train.y.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(scaled_train.y.std(axis=0), 1.0, atol=1e-4)
    np.testing.assert_allclose(
        scaled_test.y, (test.y - train.y.mean(0)) / train.y.std(0), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(scaler.inverse_targets(scaled_test.y), test.y, rtol=1e-4, atol=1e-7)
    plain = WindowScaler().fit(train)
    np.testing.assert_array_equal(plain.transform(test).y, test.y)
    np.testing.assert_array_equal(plain.inverse_targets(test.y), test.y)


def test_select_takes_one_date_per_symbol():
    frame = make_prices(80, symbols=("AAA", "BBB"), seed=2)
    windows = make_windows(frame, lookback=5, horizon=3)
    starts = {"AAA": "2020-03-02", "BBB": "2020-04-01"}
    kept = windows.select(
        start=starts, label_end_before=pd.Series({"AAA": "2020-04-20", "BBB": "2020-04-20"})
    )
    for symbol, start in starts.items():
        mine = kept.symbols == symbol
        assert mine.any() and (kept.times[mine] >= np.datetime64(pd.Timestamp(start))).all()
        assert (kept.label_end[mine] < np.datetime64(pd.Timestamp("2020-04-20"))).all()
        every = windows.select(symbols=symbol)
        expected = (every.times >= np.datetime64(pd.Timestamp(start))) & (
            every.label_end < np.datetime64(pd.Timestamp("2020-04-20"))
        )
        assert mine.sum() == expected.sum()
    with pytest.raises(ValueError, match=r"`start` expected a date for every symbol.*\['BBB'\]"):
        windows.select(start={"AAA": "2020-03-02"})
