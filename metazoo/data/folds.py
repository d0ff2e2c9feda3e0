"""Folds over a universe of assets whose histories have different spans.

One calendar date cannot split a universe in which one asset ends in 1987 and another
starts in 2015. Two kinds of folds replace it:

* **Per-asset chronology** (`chronological_cutoffs`, `split_at_cutoffs`): each asset's
  evaluation period is the last part of its own history (by default its last 30% of rows),
  and its training samples are those whose labels end before that period, less an embargo.
* **Held-out assets** (`asset_group_folds`): the symbols are dealt into a few groups, each
  asset class spread across them; each group is held out once while the learner trains on
  the others. `held_out_class=` instead holds out a whole asset class (train without the
  currencies, test on them).

Both work on the long price frames of `metazoo.data.datasets` and on `WindowSet`s.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from metazoo.data.windows import WindowSet
from metazoo.validation import check_count, check_in_range, check_seed

CUTOFF_COLUMNS = (
    "first",
    "last",
    "rows",
    "train_cutoff",
    "label_cutoff",
    "eval_start",
    "train_rows",
    "eval_rows",
)


class AssetFold(NamedTuple):
    """One held-out-asset fold: train on `train`, evaluate on `test` (sorted symbols)."""

    name: str
    train: tuple
    test: tuple


def _dates_and_symbols(data) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Forecast dates, symbols and (when known) label end dates of a frame or WindowSet."""
    if isinstance(data, WindowSet):
        return data.times, data.symbols, data.label_end
    if isinstance(data, pd.DataFrame):
        missing = [c for c in ("date", "symbol") if c not in data.columns]
        if missing:
            raise ValueError(
                "`data` expected a frame with 'date' and 'symbol' columns. "
                f"Received columns: {list(data.columns)}"
            )
        dates = pd.to_datetime(data["date"]).to_numpy(dtype="datetime64[ns]")
        label_end = data["label_end"].to_numpy("datetime64[ns]") if "label_end" in data else None
        return dates, data["symbol"].astype(str).to_numpy(), label_end
    raise TypeError(
        "`data` expected a long price frame or a WindowSet. "
        f"Received: data of type {type(data).__name__}"
    )


def chronological_cutoffs(data, test_fraction=0.3, purge=0, embargo=0) -> pd.DataFrame:
    """Each asset's evaluation start and training cutoffs, in the asset's own chronology.

    For each symbol, the evaluation period is its last `test_fraction` of forecast dates
    (rows of a price frame, samples of a `WindowSet`). Counting back on that symbol's own
    trading days from the evaluation start: training labels must end `embargo` days before
    it (`label_cutoff`), and training forecast dates must come another `purge` days earlier
    (`train_cutoff`). With labels that span `horizon` days, `purge=horizon` makes the
    forecast-date rule alone guarantee that no training label reaches `label_cutoff`;
    `split_at_cutoffs` checks the label end dates too wherever they are known.

    Args:
        data: long price frame with `date` and `symbol` columns, or a `WindowSet`.
        test_fraction: share of each symbol's forecast dates that is evaluated,
            strictly between 0 and 1 (at least one date is).
        purge: trading days between the last training forecast date and `label_cutoff`
            (set it to the label horizon when only forecast dates are known).
        embargo: trading days between `label_cutoff` and the evaluation start, left out
            of both sides so that inputs of evaluation samples do not overlap training
            labels.

    Returns:
        Frame indexed by symbol with `first`, `last`, `rows` (its forecast dates),
        `train_cutoff` (training forecast dates are strictly before it), `label_cutoff`
        (training labels end strictly before it), `eval_start` (first evaluated forecast
        date), `train_rows` and `eval_rows`.

    Raises:
        ValueError: on bad arguments, or a symbol too short to leave a training row.

    Example:
    >>> cutoffs = chronological_cutoffs(prices, test_fraction=0.3, purge=1, embargo=5)
    >>> train, evaluation = split_at_cutoffs(windows, cutoffs)
    """
    test_fraction = check_in_range("test_fraction", test_fraction, 0.0, 1.0)
    purge = check_count("purge", purge, 0, allow_float=False)
    embargo = check_count("embargo", embargo, 0, allow_float=False)
    dates, symbols, label_end = _dates_and_symbols(data)
    if len(dates) == 0:
        raise ValueError("`data` expected at least one row. Received: an empty data set")
    rows, short = {}, []
    for symbol in sorted(set(symbols.tolist())):
        mine = symbols == symbol
        times = np.unique(dates[mine])
        calendar = times if label_end is None else np.union1d(times, label_end[mine])
        n_eval = max(1, math.ceil(test_fraction * len(times) - 1e-9))
        eval_start = times[len(times) - n_eval]
        at = int(np.searchsorted(calendar, eval_start))
        label_at, train_at = at - embargo, at - embargo - purge
        n_train = int(np.searchsorted(times, calendar[max(train_at, 0)]))
        if train_at < 1 or n_train < 1:
            short.append(symbol)
            continue
        rows[symbol] = (
            times[0],
            times[-1],
            len(times),
            calendar[train_at],
            calendar[label_at],
            eval_start,
            n_train,
            n_eval,
        )
    if short:
        raise ValueError(
            "Every symbol needs training dates before its evaluation period, purge and "
            f"embargo. Received too short a history for {short} with "
            f"test_fraction={test_fraction}, purge={purge}, embargo={embargo}"
        )
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(CUTOFF_COLUMNS))
    return table.rename_axis("symbol")


def cutoff_masks(data, cutoffs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the training and evaluation samples of `data` under `cutoffs`.

    A sample trains when its forecast date is before its symbol's `train_cutoff` and, where
    label end dates are known (a `WindowSet`, or a frame with a `label_end` column), its
    label ends before the symbol's `label_cutoff`. It is evaluated when its forecast date
    is on or after the symbol's `eval_start`. Samples in between (purge and embargo) are in
    neither.

    Args:
        data: long frame with `date` and `symbol` columns, or a `WindowSet`.
        cutoffs: the frame of `chronological_cutoffs`.

    Returns:
        `(train, evaluation)`, two `(n,)` boolean arrays.
    """
    dates, symbols, label_end = _dates_and_symbols(data)
    _check_cutoffs(cutoffs, symbols)
    table = cutoffs.reindex(symbols)
    train_cutoff = table["train_cutoff"].to_numpy("datetime64[ns]")
    train = dates < train_cutoff
    if label_end is not None:
        train &= label_end < table["label_cutoff"].to_numpy("datetime64[ns]")
    evaluation = dates >= table["eval_start"].to_numpy("datetime64[ns]")
    return train, evaluation


def split_at_cutoffs(data, cutoffs: pd.DataFrame):
    """The training and evaluation parts of `data` (a `WindowSet` or a frame).

    See `cutoff_masks` for the rules. Returns `(train, evaluation)` of the type of `data`.
    """
    train, evaluation = cutoff_masks(data, cutoffs)
    if isinstance(data, WindowSet):
        return data[train], data[evaluation]
    return data[train].reset_index(drop=True), data[evaluation].reset_index(drop=True)


def _check_cutoffs(cutoffs, symbols: np.ndarray) -> None:
    if not isinstance(cutoffs, pd.DataFrame) or not {
        "train_cutoff",
        "label_cutoff",
        "eval_start",
    } <= set(cutoffs.columns):
        raise TypeError(
            "`cutoffs` expected the frame of chronological_cutoffs. "
            f"Received: {type(cutoffs).__name__}"
        )
    unknown = sorted(set(symbols.tolist()) - set(cutoffs.index))
    if unknown:
        raise ValueError(
            f"`cutoffs` expected a row for every symbol of the data. Missing: {unknown}"
        )


def _symbol_classes(table, column: str | None) -> pd.Series:
    """Symbol -> class (or one shared class when `column` is None), sorted by symbol."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            "`table` expected a DataFrame of symbols (e.g. metazoo.data.universe()). "
            f"Received: table of type {type(table).__name__}"
        )
    frame = table.reset_index() if "symbol" not in table.columns else table
    if "symbol" not in frame.columns:
        raise ValueError(
            f"`table` expected a 'symbol' column or index. Received columns: {list(table.columns)}"
        )
    if column is not None and column not in frame.columns:
        raise ValueError(
            f"`stratify` expected a column of `table` {list(table.columns)}. "
            f"Received: stratify={column!r}"
        )
    symbols = frame["symbol"].astype(str)
    if symbols.duplicated().any():
        raise ValueError(
            "`table` expected each symbol once. "
            f"Received duplicates: {sorted(set(symbols[symbols.duplicated()]))}"
        )
    classes = frame[column].astype(str) if column is not None else pd.Series("", frame.index)
    return pd.Series(classes.to_numpy(), index=symbols.to_numpy()).sort_index()


def asset_group_folds(
    table, n_groups=5, stratify="asset_class", seed=0, held_out_class=None
) -> list[AssetFold]:
    """Held-out-asset folds: groups of symbols, each held out once.

    Symbols are shuffled within each class and dealt in turn into `n_groups` groups, one
    class after the other, so that every class is spread over as many groups as it has
    members (at most `n_groups`) and group sizes differ by at most one. Each group is the
    test set of one fold whose training set is every other symbol.

    Args:
        table: frame with a `symbol` column or index, e.g. `metazoo.data.universe()`.
        n_groups: number of folds, from 2 to the number of symbols.
        stratify: column of `table` whose classes are spread across groups, or None to
            deal all symbols as one class.
        seed: integer seed of the shuffle (the global random state is not used).
        held_out_class: instead of groups, one fold that tests on every symbol whose
            `stratify` column equals this class and trains on all others.

    Returns:
        List of `AssetFold(name, train, test)` with sorted tuples of symbols.

    Raises:
        ValueError: on bad arguments, too few symbols, or an unknown `held_out_class`.

    Example:
    >>> folds = asset_group_folds(universe(), n_groups=5, seed=0)
    >>> [fold] = asset_group_folds(universe(), held_out_class="currency")
    """
    classes = _symbol_classes(table, stratify)
    symbols = tuple(classes.index)
    if held_out_class is not None:
        if stratify is None:
            raise ValueError("`held_out_class` expected a `stratify` column. Received: None")
        test = tuple(s for s in symbols if classes[s] == held_out_class)
        if not test or len(test) == len(symbols):
            raise ValueError(
                f"`held_out_class` expected one of {sorted(set(classes))} with symbols "
                f"outside it too. Received: held_out_class={held_out_class!r}"
            )
        train = tuple(s for s in symbols if s not in test)
        return [AssetFold(f"held-out {held_out_class}", train, test)]
    seed = check_seed("seed", seed)
    n_groups = check_count("n_groups", n_groups, 2, allow_float=False)
    if n_groups > len(symbols):
        raise ValueError(
            f"`n_groups` expected at most the number of symbols ({len(symbols)}). "
            f"Received: n_groups={n_groups}"
        )
    rng = np.random.default_rng(seed)
    groups = [[] for _ in range(n_groups)]
    turn = int(rng.integers(n_groups))
    for name in sorted(set(classes)):
        members = np.array([s for s in symbols if classes[s] == name])
        for symbol in rng.permutation(members):
            groups[turn % n_groups].append(str(symbol))
            turn += 1
    folds = []
    for number, group in enumerate(groups, start=1):
        test = tuple(sorted(group))
        train = tuple(s for s in symbols if s not in test)
        folds.append(AssetFold(f"group {number}", train, test))
    return folds
