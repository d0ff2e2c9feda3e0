"""Tests for meta-learning tasks (metazoo.data.tasks) and meta-batches (metazoo.data.episodes)."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from metazoo.data import MetaBatch, Task, TaskSet, TaskSplit, load_prices, make_windows
from metazoo.data.episodes import check_meta_batch
from tests.conftest import make_prices

SYMBOLS = ("AAA", "BBB", "CCC")


def _windows(horizon=2, lookback=3, n_days=68, features=("log_return",), target="return"):
    """Windows from early 2020: about three full months and a few days of April per symbol."""
    frame = load_prices(make_prices(n_days, SYMBOLS))
    return make_windows(
        frame, lookback=lookback, horizon=horizon, features=list(features), target=target
    )


def _numbered(windows):
    """The same samples with X and y holding each sample's index, to trace where it went."""
    index = np.arange(len(windows), dtype=np.float32)
    return replace(
        windows,
        X=np.broadcast_to(index[:, None, None], windows.X.shape).copy(),
        y=np.broadcast_to(index[:, None], windows.y.shape).copy(),
    )


@pytest.fixture
def windows():
    return _windows()


@pytest.fixture
def tasks(windows):
    return TaskSet.from_windows(windows, period="M")


# --- building tasks ------------------------------------------------------------------------


def test_from_windows_makes_one_task_per_symbol_and_month(windows, tasks):
    months = pd.DatetimeIndex(windows.times).to_period("M")
    groups = set(zip(windows.symbols, months, strict=True))
    assert {(task.symbol, task.period) for task in tasks} == groups
    assert len(tasks) == len(groups)
    assert sum(len(task) for task in tasks) == len(windows)
    for task in tasks:
        assert (task.windows.symbols == task.symbol).all()
        assert (np.diff(task.windows.times) > np.timedelta64(0)).all()
        assert (pd.DatetimeIndex(task.windows.times).to_period("M") == task.period).all()
        assert task.name == f"{task.symbol}@{task.period}"
    assert tasks.symbols == list(SYMBOLS)


def test_from_windows_min_samples_drops_short_tasks(windows, tasks):
    sizes = sorted(len(task) for task in tasks)
    assert sizes[0] < 10 <= sizes[-1]
    kept = TaskSet.from_windows(windows, period="M", min_samples=10)
    assert sorted(len(task) for task in kept) == [size for size in sizes if size >= 10]


def test_from_windows_errors(windows):
    with pytest.raises(ValueError, match="period must be a pandas period alias"):
        TaskSet.from_windows(windows, period="fortnight")
    with pytest.raises(TypeError, match="must be a WindowSet"):
        TaskSet.from_windows(windows.X)


def test_taskset_refuses_other_items_and_mixed_tasks(tasks):
    with pytest.raises(TypeError, match="TaskSet holds Task objects"):
        TaskSet([tasks[0], tasks[1].windows])
    other = _windows(features=("log_return", "range"))
    with pytest.raises(ValueError, match="differs in shapes, features, targets or horizon"):
        TaskSet([tasks[0], Task("AAA", None, other[:30])])
    longer = _windows(horizon=3)
    with pytest.raises(ValueError, match="differs in shapes, features, targets or horizon"):
        TaskSet([tasks[0], Task("AAA", None, longer[:30])])


def test_taskset_refuses_tasks_with_other_targets(tasks):
    variance = _windows(target="variance")
    with pytest.raises(ValueError, match="differs in shapes, features, targets or horizon"):
        TaskSet([tasks[0], Task("AAA", None, variance[:30])])


# --- splitting one task --------------------------------------------------------------------


@pytest.mark.parametrize("horizon", [1, 3])
@pytest.mark.parametrize("offset", [0, 4])
def test_task_split_purges_overlapping_targets(horizon, offset):
    task = TaskSet.from_windows(_windows(horizon=horizon), period="M")[1]
    support, query = task.split(5, 6, offset=offset)
    np.testing.assert_array_equal(support.times, task.windows.times[offset : offset + 5])
    start = offset + 5 + horizon - 1
    np.testing.assert_array_equal(query.times, task.windows.times[start : start + 6])
    np.testing.assert_array_equal(query.X, task.windows.X[start : start + 6])
    assert support.times[-1] < query.times[0]
    assert support.label_end[-1] == query.times[0]
    assert task.episode_length(5, 6) == 5 + horizon - 1 + 6


def test_task_split_query_none_takes_the_rest(tasks):
    task = tasks[0]
    support, query = task.split(4, offset=2)
    assert len(query) == len(task) - 2 - 4 - 1
    np.testing.assert_array_equal(query.times, task.windows.times[2 + 4 + 1 :])


@pytest.mark.parametrize(
    ("support_size", "query_size", "offset"),
    [(0, 3, 0), (3, 0, 0), (3, 3, -1), (10, 10, 0), (5, 5, 15), (30, None, 0)],
)
def test_task_split_refuses_episodes_that_do_not_fit(tasks, support_size, query_size, offset):
    assert len(tasks[0]) == 20
    with pytest.raises(ValueError, match="does not fit"):
        tasks[0].split(support_size, query_size, offset=offset)


# --- train and test tasks ------------------------------------------------------------------


def test_split_by_date_and_symbol(windows, tasks):
    test_start = pd.Timestamp("2020-03-02")
    split = tasks.split(test_start=test_start, held_out=["CCC"])
    assert isinstance(split, TaskSplit)
    train = [task.windows for task in split.train]
    assert "CCC" not in split.train.symbols
    assert all((w.label_end < test_start).all() for w in train)
    expected = windows.select(symbols=["AAA", "BBB"], label_end_before=test_start)
    assert sum(len(w) for w in train) == len(expected)
    assert max(w.label_end.max() for w in train) == expected.label_end.max()
    later = [task.windows for task in split.later_periods]
    assert split.later_periods.symbols == ["AAA", "BBB"]
    assert all((w.times >= test_start).all() for w in later)
    assert sum(len(w) for w in later) == len(
        windows.select(symbols=["AAA", "BBB"], start=test_start)
    )
    held = [task.windows for task in split.held_out_assets]
    assert split.held_out_assets.symbols == ["CCC"]
    assert all((w.times >= test_start).all() for w in held)
    assert sum(len(w) for w in held) == len(windows.select(symbols="CCC", start=test_start))


def test_split_by_symbol_only_keeps_all_dates(windows, tasks):
    train, later, held = tasks.split(held_out="BBB")
    assert train.symbols == ["AAA", "CCC"]
    assert sum(len(task) for task in train) == len(windows.select(symbols=["AAA", "CCC"]))
    assert len(later) == 0
    assert sum(len(task) for task in held) == len(windows.select(symbols="BBB"))


def test_former_names_of_the_held_out_assets_warn_and_agree(tasks):
    split = tasks.split(held_out=["CCC"])
    with pytest.warns(DeprecationWarning, match=r"use split\(held_out=\.\.\.\)"):
        former = tasks.split(test_symbols=["CCC"])
    assert [t.name for t in former.held_out_assets] == [t.name for t in split.held_out_assets]
    with pytest.warns(DeprecationWarning, match="use TaskSplit.held_out_assets"):
        assert former.held_out_symbols is former.held_out_assets
    with pytest.raises(TypeError, match="not both"), pytest.warns(DeprecationWarning):
        tasks.split(held_out=["CCC"], test_symbols=["BBB"])
    with pytest.raises(ValueError, match=r"Unknown test_symbols \['ZZZ'\]"):
        with pytest.warns(DeprecationWarning):
            tasks.split(test_symbols=["ZZZ"])


def test_split_errors(tasks):
    with pytest.raises(ValueError, match=r"Unknown held_out \['ZZZ'\]"):
        tasks.split(test_start="2020-03-02", held_out=["AAA", "ZZZ"])
    with pytest.raises(ValueError, match="split needs test_start, held_out or both"):
        tasks.split()
    with pytest.raises(ValueError, match="No training tasks"):
        tasks.split(test_start="2020-01-02")


# --- episodic sampling ---------------------------------------------------------------------


def test_sample_shapes(tasks):
    batch = tasks.sample(4, 5, 3, np.random.default_rng(0))
    assert isinstance(batch, MetaBatch)
    assert batch.support_x.shape == (4, 5, 3, 1)
    assert batch.support_y.shape == (4, 5, 2)
    assert batch.query_x.shape == (4, 3, 3, 1)
    assert batch.query_y.shape == (4, 3, 2)
    assert batch.n_tasks == 4
    assert batch.task(2).query_y.shape == (1, 3, 2)
    np.testing.assert_array_equal(batch.task(2).query_y[0], batch.query_y[2])


@pytest.mark.parametrize("random_offset", [True, False])
def test_each_episode_is_consecutive_samples_of_one_task(windows, random_offset):
    tasks = TaskSet.from_windows(_numbered(windows), period="M")
    where = {
        int(i): (task, position)
        for task in tasks
        for position, i in enumerate(task.windows.y[:, 0])
    }
    eligible = tasks.eligible(6, 4)
    batch = tasks.sample(len(eligible), 6, 4, np.random.default_rng(3), random_offset)
    gap = windows.horizon - 1
    names, at_start = [], []
    for support, query in zip(batch.support_y[..., 0], batch.query_y[..., 0], strict=True):
        task = where[int(support[0])][0]
        assert all(where[int(i)][0] is task for i in np.concatenate([support, query]))
        first = where[int(support[0])][1]
        assert [where[int(i)][1] for i in support] == list(range(first, first + 6))
        assert [where[int(i)][1] for i in query] == list(range(first + 6 + gap, first + 10 + gap))
        assert (windows.symbols[query.astype(int)] == task.symbol).all()
        names.append(task.name)
        at_start.append(first == 0)
    assert sorted(names) == sorted(task.name for task in eligible)
    assert all(at_start) == (not random_offset)


def test_without_random_offset_episodes_start_at_each_tasks_first_sample(tasks):
    batch = tasks.sample(5, 4, 3, np.random.default_rng(1), random_offset=False)
    starts = {task.name: task.windows for task in tasks.eligible(4, 3)}
    for support_x, query_x in zip(batch.support_x, batch.query_x, strict=True):
        matches = [w for w in starts.values() if np.array_equal(support_x, w.X[:4])]
        assert len(matches) == 1
        np.testing.assert_array_equal(query_x, matches[0].X[5:8])


def test_meta_batches_reproducible_and_new_each_pass(tasks):
    def passes(dataset):
        return [[tuple(part.numpy() for part in batch) for batch in dataset] for _ in range(2)]

    first = passes(tasks.meta_batches(3, 4, 2, n_batches=2, seed=11))
    again = passes(tasks.meta_batches(3, 4, 2, n_batches=2, seed=11))
    assert [len(one_pass) for one_pass in first] == [2, 2]
    shapes = [part.shape for part in first[0][0]]
    assert shapes == [(3, 4, 3, 1), (3, 4, 2), (3, 2, 3, 1), (3, 2, 2)]
    assert all(part.dtype == np.float32 for part in first[0][0])
    for batch, twin in zip(sum(first, []), sum(again, []), strict=True):
        for part, other in zip(batch, twin, strict=True):
            np.testing.assert_array_equal(part, other)
    assert not np.array_equal(first[0][0][0], first[1][0][0])


def test_sampling_errors(tasks):
    with pytest.raises(ValueError, match="No task holds"):
        tasks.eligible(20, 5)
    with pytest.raises(ValueError, match="support_size expected an integer >= 1"):
        tasks.eligible(0, 5)
    with pytest.raises(ValueError, match="meta_batch_size expected an integer >= 1"):
        tasks.meta_batches(0, 4, 2)
    with pytest.raises(ValueError, match="No task holds"):
        tasks.meta_batches(2, 40, 2)


def test_eligible_keeps_only_tasks_long_enough(tasks):
    eligible = tasks.eligible(10, 9)
    assert [task.name for task in eligible] == [t.name for t in tasks if len(t) >= 10 + 1 + 9]
    assert 0 < len(eligible) < len(tasks)


# --- evaluation episodes -------------------------------------------------------------------


def test_episodes_take_the_rest_and_skip_short_tasks(tasks):
    yielded = list(tasks.episodes(5))
    names = [task.name for task, _, _ in yielded]
    assert names == [task.name for task in tasks if len(task) >= 5 + 1 + 1]
    assert len(names) < len(tasks)
    for task, support, query in yielded:
        np.testing.assert_array_equal(support.times, task.windows.times[:5])
        np.testing.assert_array_equal(query.times, task.windows.times[6:])


def test_episodes_with_query_size(tasks):
    for task, support, query in tasks.episodes(5, query_size=13):
        assert len(task) >= 5 + 1 + 13
        assert len(support) == 5
        np.testing.assert_array_equal(query.times, task.windows.times[6:19])
    assert len(list(tasks.episodes(5, query_size=13))) == sum(len(t) >= 19 for t in tasks)


def test_episode_batch_stacks_episodes_and_pads_query_sets(tasks):
    batch, lengths, episodes = tasks.episode_batch(5)
    assert batch.n_tasks == len(episodes) == len(lengths)
    assert batch.query_x.shape[1] == lengths.max() > lengths.min()
    for i, (_, support, query) in enumerate(episodes):
        np.testing.assert_array_equal(batch.support_x[i], support.X)
        np.testing.assert_array_equal(batch.query_y[i, : lengths[i]], query.y)
        padding = batch.query_x[i, lengths[i] :]
        np.testing.assert_array_equal(padding, np.broadcast_to(query.X[-1], padding.shape))
    fixed, lengths, _ = tasks.episode_batch(5, query_size=3)
    assert fixed.query_x.shape[1] == 3 and set(lengths) == {3}


# --- meta-batch checks ---------------------------------------------------------------------


def _parts(n_tasks=2, support=5, query=3, x_shape=(4, 2), y_shape=(1,)):
    return [
        np.zeros((n_tasks, support, *x_shape)),
        np.zeros((n_tasks, support, *y_shape)),
        np.zeros((n_tasks, query, *x_shape)),
        np.zeros((n_tasks, query, *y_shape)),
    ]


def test_check_meta_batch_returns_float32_parts():
    batch = check_meta_batch(MetaBatch(*_parts()))
    assert isinstance(batch, MetaBatch)
    assert [part.dtype for part in batch] == [np.float32] * 4
    assert batch.query_x.shape == (2, 3, 4, 2)


def test_check_meta_batch_errors():
    sx, sy, qx, qy = _parts()
    with pytest.raises(ValueError, match="four parts"):
        check_meta_batch((sx, sy, qx))
    with pytest.raises(ValueError, match=r"n_tasks, n_samples"):
        check_meta_batch((sx, sy, qx, qy[:, :, 0]))
    with pytest.raises(ValueError, match="same number of tasks"):
        check_meta_batch((sx, sy, _parts(n_tasks=3)[2], _parts(n_tasks=3)[3]))
    with pytest.raises(ValueError, match="as many samples"):
        check_meta_batch((sx, sy[:, :4], qx, qy))
    with pytest.raises(ValueError, match="as many samples"):
        check_meta_batch((sx, sy, qx, qy[:, :2]))
    with pytest.raises(ValueError, match="share sample shapes"):
        check_meta_batch((sx, sy, _parts(x_shape=(4, 3))[2], qy))
    with pytest.raises(ValueError, match="share sample shapes"):
        check_meta_batch((sx, sy, qx, _parts(y_shape=(2,))[3]))


def test_sample_and_episodes_refuse_empty_sizes(tasks):
    with pytest.raises(ValueError, match="meta_batch_size expected an integer >= 1"):
        tasks.sample(0, 5, 5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="query_size expected an integer >= 1"):
        list(tasks.episodes(5, query_size=0))
