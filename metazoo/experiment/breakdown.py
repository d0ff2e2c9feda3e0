"""The main metric of a target per fold and per asset class, with 95% intervals over tasks.

The main metric is `r2_oos` for return and direction targets and `qlike` for variance
targets. Within each group (a fold, or the assets of one class) it is recomputed over the
group's query samples, as the leaderboard computes it over all of them, and its interval
is the percentile bootstrap over the group's evaluation tasks of
`metazoo.experiment.plots.task_intervals`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metazoo.experiment.plots import point_values, task_intervals
from metazoo.experiment.targets import target_kind

COLUMNS = ["eval_set", "group", "model", "value", "low", "high", "n_tasks", "n_obs"]


def main_metric(target: str) -> str:
    """`qlike` for a variance target, `r2_oos` for the others."""
    return "qlike" if target_kind(target) == "variance" else "r2_oos"


def group_scores(
    predictions: pd.DataFrame,
    groups,
    metric: str,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """`metric` with its 95% interval over tasks, per evaluation set, group and model.

    Args:
        predictions: rows of one target (see `task_intervals`).
        groups: the group of each row: a column name (`"fold"`), or a Series or dict from
            symbol to group (e.g. the asset classes of `asset_classes`); a symbol it does
            not name raises.
        metric: `"r2_oos"`, `"qlike"` or `"mse"`.
        n_bootstrap: resamples per group.
        seed: seed of the resampling (the same seed gives the same intervals).

    Returns:
        A frame with `eval_set`, `group`, `model`, `value`, `low`, `high`, `n_tasks` (the
        model's evaluation tasks in the group) and `n_obs` (its query samples), groups in
        sorted order.
    """
    if isinstance(groups, str):
        if groups not in predictions:
            raise ValueError(
                f"`groups` expected a column of predictions. Received: groups={groups!r}"
            )
        labels = predictions[groups].astype(str)
    else:
        mapping = pd.Series(groups)
        labels = predictions["symbol"].map(mapping)
        if labels.isna().any():
            missing = sorted(predictions.loc[labels.isna(), "symbol"].unique())
            raise ValueError(
                f"`groups` expected a group for every symbol. Received: lacks {missing}"
            )
    out = []
    for group in sorted(labels.unique()):
        part = predictions[(labels == group).to_numpy()]
        values = point_values(part, metric).rename("value")
        intervals = task_intervals(part, metric, n_bootstrap=n_bootstrap, seed=seed)
        counts = part.groupby(["eval_set", "model"], sort=False).size().rename("n_obs")
        table = intervals.join(values, on=["eval_set", "model"]).join(
            counts, on=["eval_set", "model"]
        )
        out.append(table.assign(group=group))
    if not out:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(out, ignore_index=True)[COLUMNS]


def wide_table(scores: pd.DataFrame, models=None, eval_sets=None) -> pd.DataFrame:
    """`group_scores` as a display table: one row per (evaluation set, model), a column per
    group with `value [low, high]`, and first, per evaluation set, a `(tasks)` row with
    each group's number of evaluation tasks. `models` and `eval_sets` give the order of
    the rows (default: as in `scores`)."""
    models = list(dict.fromkeys(scores["model"] if models is None else models))
    eval_sets = list(dict.fromkeys(scores["eval_set"] if eval_sets is None else eval_sets))
    groups = sorted(scores["group"].unique())
    rows = []
    for eval_set in eval_sets:
        part = scores[scores["eval_set"] == eval_set]
        if not len(part):
            continue
        cells = part.set_index(["model", "group"])
        tasks = part.groupby("group")["n_tasks"].max()
        rows.append(
            {"eval_set": eval_set, "model": "(tasks)"}
            | {g: str(int(tasks[g])) if g in tasks else "" for g in groups}
        )
        for model in models:
            if model not in cells.index.get_level_values("model"):
                continue
            row = {"eval_set": eval_set, "model": model}
            for group in groups:
                row[group] = _cell(cells, model, group)
            rows.append(row)
    return pd.DataFrame(rows, columns=["eval_set", "model", *groups])


def _cell(cells, model, group) -> str:
    if (model, group) not in cells.index:
        return ""
    value, low, high = cells.loc[(model, group), ["value", "low", "high"]]
    if not np.isfinite(value):
        return ""
    interval = f" [{low:.3g}, {high:.3g}]" if np.isfinite(low) and np.isfinite(high) else ""
    return f"{value:.3g}{interval}"
