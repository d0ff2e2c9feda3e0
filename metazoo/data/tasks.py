"""Meta-learning tasks from market windows: one task per symbol and period.

A task is the run of consecutive samples of one symbol in one calendar period (a quarter by
default: a regime). An episode of a task is split in time: `support_size` samples to adapt
on, then, after a gap of `horizon - 1` samples so that no support target overlaps a query
target, `query_size` samples to score the adapted model on.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from metazoo.data.episodes import MetaBatch, meta_batch_dataset
from metazoo.data.windows import WindowSet
from metazoo.validation import check_count


@dataclass(frozen=True)
class Task:
    """One symbol over one period.

    Attributes:
        symbol: the instrument.
        period: the calendar period (a `pandas.Period`), or None for a custom task.
        windows: the task's samples, consecutive in time.
    """

    symbol: str
    period: pd.Period | None
    windows: WindowSet

    def __len__(self) -> int:
        return len(self.windows)

    @property
    def name(self) -> str:
        """`symbol@period`, e.g. `MSFT@2015Q3` (the symbol alone for a custom task)."""
        return f"{self.symbol}@{self.period}" if self.period is not None else self.symbol

    def episode_length(self, support_size: int, query_size: int) -> int:
        """Samples an episode spans: support, the purge gap, query."""
        return support_size + self.windows.horizon - 1 + query_size

    def split(self, support_size: int, query_size: int | None = None, offset: int = 0):
        """Support and query `WindowSet`s of the episode starting at sample `offset`.

        `query_size=None` takes every sample after the gap (the rest of the task).
        """
        support, query = self.episode_slices(support_size, query_size, offset)
        return self.windows[support], self.windows[query]

    def episode_slices(self, support_size: int, query_size: int | None = None, offset: int = 0):
        """The `(support, query)` slices of the task's samples that `split` takes."""
        gap = self.windows.horizon - 1
        if query_size is None:
            query_size = len(self) - offset - support_size - gap
        need = self.episode_length(support_size, query_size)
        if support_size < 1 or query_size < 1 or offset < 0 or offset + need > len(self):
            raise ValueError(
                f"Task {self.name} has {len(self)} samples; an episode at offset={offset} with "
                f"support_size={support_size}, gap={gap} and query_size={query_size} "
                "does not fit."
            )
        start = offset + support_size + gap
        return slice(offset, offset + support_size), slice(start, start + query_size)


def _renamed(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated; use {new}.", DeprecationWarning, stacklevel=3)


def _layout(windows: WindowSet) -> tuple:
    return (windows.X.shape[1:], windows.feature_names, windows.target_names, windows.horizon)


EVAL_SETS = ("later_periods", "held_out_assets")  # the evaluation sets, named as in TaskSplit


class TaskSplit(NamedTuple):
    """Meta-training tasks and the two evaluation sets (`EVAL_SETS`): later periods of the
    training assets, and the held-out assets."""

    train: TaskSet
    later_periods: TaskSet
    held_out_assets: TaskSet

    @property
    def held_out_symbols(self) -> TaskSet:
        """Deprecated: the former name of `held_out_assets`."""
        _renamed("TaskSplit.held_out_symbols", "TaskSplit.held_out_assets")
        return self.held_out_assets

    def evaluation_sets(self) -> dict:
        """`{name: TaskSet}` of the evaluation sets, in the order of `EVAL_SETS`."""
        return {name: getattr(self, name) for name in EVAL_SETS}


class TaskSet:
    """An ordered collection of `Task`s with episodic sampling.

    Args:
        tasks: the tasks; all must share lookback, features, targets and horizon.
    """

    def __init__(self, tasks):
        self.tasks = list(tasks)
        for task in self.tasks:
            if not isinstance(task, Task):
                raise TypeError(f"TaskSet holds Task objects. Received: {type(task).__name__}")
        if self.tasks:
            first = self.tasks[0].windows
            for task in self.tasks[1:]:
                w = task.windows
                if _layout(w) != _layout(first):
                    raise ValueError(
                        f"Task {task.name} differs in shapes, features, targets or horizon "
                        f"from {self.tasks[0].name}: {_layout(w)} != {_layout(first)}"
                    )

    @classmethod
    def from_windows(cls, windows: WindowSet, period: str = "Q", min_samples: int = 1) -> TaskSet:
        """One task per symbol and calendar period (`"Q"` quarters, `"M"` months, `"Y"` years).

        Args:
            windows: samples of one or more symbols.
            period: a pandas period alias.
            min_samples: leave out tasks with fewer samples than this.
        """
        if not isinstance(windows, WindowSet):
            raise TypeError(f"windows must be a WindowSet. Received: {type(windows).__name__}")
        min_samples = check_count("min_samples", min_samples)
        try:
            periods = pd.DatetimeIndex(windows.times).to_period(period)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"period must be a pandas period alias such as 'Q', 'M' or 'Y'. Received: {period!r}"
            ) from error
        frame = pd.DataFrame({"symbol": windows.symbols, "period": periods})
        tasks = []
        for (symbol, when), rows in frame.groupby(["symbol", "period"], sort=True).indices.items():
            if len(rows) >= min_samples:
                tasks.append(Task(str(symbol), when, windows[np.sort(rows)]))
        return cls(tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self):
        return iter(self.tasks)

    def __getitem__(self, index) -> Task:
        return self.tasks[index]

    def __repr__(self) -> str:
        return f"TaskSet({len(self)} tasks, symbols={self.symbols})"

    @property
    def symbols(self) -> list[str]:
        """The sorted symbols of the tasks."""
        return sorted({task.symbol for task in self.tasks})

    def summary(self) -> pd.DataFrame:
        """One row per task: symbol, period, samples, first and last forecast date."""
        return pd.DataFrame(
            [
                {
                    "task": t.name,
                    "symbol": t.symbol,
                    "period": t.period,
                    "samples": len(t),
                    "first": pd.Timestamp(t.windows.times[0]) if len(t) else pd.NaT,
                    "last": pd.Timestamp(t.windows.times[-1]) if len(t) else pd.NaT,
                }
                for t in self.tasks
            ]
        )

    def select(self, symbols=None, exclude_symbols=(), start=None, end=None, label_end_before=None):
        """Tasks restricted to some symbols and dates (see `WindowSet.select`); empty ones go."""
        wanted = (
            None if symbols is None else set([symbols] if isinstance(symbols, str) else symbols)
        )
        excluded = {exclude_symbols} if isinstance(exclude_symbols, str) else set(exclude_symbols)
        tasks = []
        for task in self.tasks:
            if (wanted is not None and task.symbol not in wanted) or task.symbol in excluded:
                continue
            kept = task.windows.select(start=start, end=end, label_end_before=label_end_before)
            if len(kept):
                tasks.append(Task(task.symbol, task.period, kept))
        return TaskSet(tasks)

    def split(
        self, test_start=None, held_out=(), *, label_end_before=None, test_symbols=None
    ) -> TaskSplit:
        """Meta-training tasks and the evaluation sets: later periods and held-out assets.

        Args:
            test_start: first date of the test period, or a symbol -> date mapping where
                each asset has its own (see `metazoo.data.chronological_cutoffs`).
                Held-out tasks of either kind start on or after it.
            held_out: symbols held out entirely from training (the held-out assets).
            label_end_before: training keeps only samples whose targets end before this
                date or mapping (default `test_start`: purged, so no training label
                reaches into the test period; an earlier date adds an embargo).
            test_symbols: deprecated, the former name of `held_out`.

        Returns:
            `TaskSplit(train, later_periods, held_out_assets)`.
        """
        name = "held_out" if test_symbols is None else "test_symbols"
        if test_symbols is not None:
            _renamed("split(test_symbols=...)", "split(held_out=...)")
            if len(held_out):
                raise TypeError(
                    "split expected held_out or its former name test_symbols, not both. "
                    f"Received: held_out={held_out!r}, test_symbols={test_symbols!r}"
                )
            held_out = test_symbols
        held = {held_out} if isinstance(held_out, str) else set(held_out)
        unknown = held - set(self.symbols)
        if unknown:
            raise ValueError(
                f"Unknown {name} {sorted(unknown)}: expected symbols among {self.symbols}. "
                f"Received: {name}={sorted(held)}"
            )
        if test_start is None and not held:
            raise ValueError(f"split needs test_start, {name} or both. Received: neither")
        cut = test_start if label_end_before is None else label_end_before
        train = self.select(exclude_symbols=held, label_end_before=cut)
        dated = test_start is not None
        later = self.select(exclude_symbols=held, start=test_start) if dated else TaskSet([])
        by_symbol = self.select(symbols=held, start=test_start) if held else TaskSet([])
        if not len(train):
            raise ValueError(f"No training tasks are left before test_start={test_start}.")
        return TaskSplit(train, later, by_symbol)

    def sample(self, meta_batch_size, support_size, query_size, rng, random_offset=True):
        """One `MetaBatch` of `meta_batch_size` episodes from tasks long enough to hold one.

        Tasks are drawn uniformly (without replacement when there are enough); with
        `random_offset` each episode starts at a random sample of its task, otherwise at
        the first.
        """
        meta_batch_size = check_count("meta_batch_size", meta_batch_size)
        eligible = self._eligible(support_size, query_size)
        picks = rng.choice(
            len(eligible), size=meta_batch_size, replace=meta_batch_size > len(eligible)
        )
        parts = []
        for pick in picks:  # the episodes of `Task.split`, sliced from the arrays directly
            task = eligible[pick]
            x, y = task.windows.X, task.windows.y
            room = len(task) - task.episode_length(support_size, query_size)
            offset = int(rng.integers(0, room + 1)) if random_offset else 0
            support, query = task.episode_slices(support_size, query_size, offset)
            parts.append((x[support], y[support], x[query], y[query]))
        return MetaBatch(*(np.stack(column) for column in zip(*parts, strict=True)))

    def _eligible(self, support_size: int, query_size: int) -> list[Task]:
        """`eligible`, remembered per episode size (sampling asks for it every batch)."""
        key = (support_size, query_size, len(self.tasks))
        cache = self.__dict__.setdefault("_eligible_cache", {})
        if key not in cache:
            cache[key] = self.eligible(support_size, query_size)
        return cache[key]

    def eligible(self, support_size: int, query_size: int) -> list[Task]:
        """Tasks with enough samples for an episode of these sizes."""
        support_size = check_count("support_size", support_size)
        query_size = check_count("query_size", query_size)
        tasks = [t for t in self.tasks if len(t) >= t.episode_length(support_size, query_size)]
        if not tasks:
            longest = max((len(t) for t in self.tasks), default=0)
            raise ValueError(
                f"No task holds support_size={support_size} + gap + query_size={query_size} "
                f"samples; the longest has {longest}. Use smaller sizes or longer periods."
            )
        return tasks

    def meta_batches(
        self,
        meta_batch_size: int,
        support_size: int,
        query_size: int,
        n_batches: int | None = None,
        seed: int = 0,
        random_offset: bool = True,
    ):
        """A reproducible `tf.data.Dataset` of episodes with a leading task axis.

        Each element is `(support_x, support_y, query_x, query_y)` with shapes
        `(meta_batch_size, support_size, lookback, n_features)`,
        `(meta_batch_size, support_size, n_targets)` and the same with `query_size`.
        """
        self.sample(meta_batch_size, support_size, query_size, np.random.default_rng(0))
        return meta_batch_dataset(
            lambda rng: self.sample(meta_batch_size, support_size, query_size, rng, random_offset),
            n_batches=n_batches,
            seed=seed,
        )

    def episode_batch(self, support_size: int, query_size: int | None = None):
        """Every task's evaluation episode (see `episodes`) stacked into one `MetaBatch`.

        With `query_size=None` the query sets (the rest of each task) differ in length:
        each is padded to the longest by repeating its last sample, and `lengths` says how
        many samples are real.

        Returns:
            `(batch, lengths, episodes)`: the `MetaBatch`, `(n_tasks,)` query lengths, and
            the `(task, support, query)` triples of `episodes`.
        """
        episodes = list(self.episodes(support_size, query_size))
        lengths = np.array([len(query) for _, _, query in episodes])
        longest = int(lengths.max())

        def padded(a):
            return np.concatenate([a, np.repeat(a[-1:], longest - len(a), axis=0)])

        batch = MetaBatch(
            np.stack([support.X for _, support, _ in episodes]),
            np.stack([support.y for _, support, _ in episodes]),
            np.stack([padded(query.X) for _, _, query in episodes]),
            np.stack([padded(query.y) for _, _, query in episodes]),
        )
        return batch, lengths, episodes

    def episodes(self, support_size: int, query_size: int | None = None):
        """Yield `(task, support, query)` for evaluation: support is the first samples of
        each task, query the next `query_size` (default all the rest). Tasks too short for
        one query sample are skipped."""
        self.eligible(support_size, 1 if query_size is None else query_size)
        for task in self.tasks:
            if len(task) >= task.episode_length(support_size, query_size or 1):
                yield (task, *task.split(support_size, query_size))


@dataclass
class EvaluationEpisodes:
    """The evaluation episodes of one task set: each task's first K samples are its support
    set, the rest (after the purge gap) its query set.

    Attributes:
        name: the evaluation set (one of `EVAL_SETS`).
        support: per task, the support `WindowSet`.
        query: per task, the query `WindowSet`.
        batch: a `MetaBatch` of every task; query sets are padded to the longest by
            repeating their last sample (padding is cut off again by `unpad`).
        lengths: `(n_tasks,)` true query lengths.
        names: `(n_tasks,)` task names (`symbol@period`).
    """

    name: str
    support: list
    query: list
    batch: MetaBatch
    lengths: np.ndarray
    names: list

    @classmethod
    def from_tasks(cls, name: str, tasks: TaskSet, support_size: int) -> EvaluationEpisodes:
        batch, lengths, episodes = tasks.episode_batch(support_size)
        support = [s for _, s, _ in episodes]
        query = [q for _, _, q in episodes]
        names = [task.name for task, _, _ in episodes]
        return cls(name, support, query, batch, lengths, names)

    def __len__(self) -> int:
        return len(self.query)

    def unpad(self, predictions) -> np.ndarray:
        """`(n_tasks, longest, n_targets)` forecasts -> `(n_query_samples, n_targets)`."""
        predictions = np.asarray(predictions)
        return np.concatenate([p[:n] for p, n in zip(predictions, self.lengths, strict=True)])

    def query_windows(self) -> WindowSet:
        """Every query sample, task after task, in the order of `unpad`."""
        parts = self.query
        first = parts[0]
        return WindowSet(
            X=np.concatenate([q.X for q in parts]),
            y=np.concatenate([q.y for q in parts]),
            times=np.concatenate([q.times for q in parts]),
            symbols=np.concatenate([q.symbols for q in parts]),
            label_end=np.concatenate([q.label_end for q in parts]),
            feature_names=first.feature_names,
            target_names=first.target_names,
            horizon=first.horizon,
            annotations={
                name: np.concatenate([q.annotations[name] for q in parts])
                for name in first.annotations
            },
        )

    def task_labels(self) -> np.ndarray:
        """Each query sample's task name, in the order of `unpad`."""
        return np.repeat(np.asarray(self.names, dtype=object), self.lengths)
