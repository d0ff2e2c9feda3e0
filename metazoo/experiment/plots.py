"""The report's plots: leaderboard charts with intervals, equity curves, forecasts.

Every function takes the tables of a run (leaderboard, predictions, strategies) and returns
a matplotlib figure whose title says which asset and period it shows and why that one.

* `leaderboard_chart`: out-of-sample R^2 (QLIKE for variance targets) per model and
  evaluation set, with its value and a 95% percentile-bootstrap interval over the
  evaluation tasks (`task_intervals`).
* `sharpe_chart`: the sign strategy's Sharpe ratio per model, with the 95% interval of
  Lo (2002) from the strategy's daily net returns.
* `equity_chart`: equity curves of the best learners by held-out Sharpe, the baselines and
  buy-and-hold.
* `forecast_chart`: forecasts against actuals on the held-out quarter with the largest
  return variance, for the best learner, the best meta-learner, the pooled network and
  the best baseline; variance on a log scale.

References:
    Lo, A. W. (2002). The statistics of Sharpe ratios. Financial Analysts Journal 58(4).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from metazoo.data import EVAL_SETS
from metazoo.experiment.targets import target_kind
from metazoo.trainers import registry

N_BOOTSTRAP = 2000
BOOTSTRAP_SEED = 0
R2_CLIP = -1.0  # bars of R^2 oos below this are cut, so one poor model leaves the others legible
TOP_LEARNERS = 3
DAYS_PER_YEAR = 252
VARIANCE_DISPLAY_FLOOR = 1e-6  # realized variances of 0 (an unchanged close) drawn here
HELD_OUT = EVAL_SETS[-1]
LEARNER_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
BASELINE_COLORS = ("tab:gray", "tab:olive", "tab:cyan", "tab:pink", "darkgoldenrod", "slateblue")


def held_out_set(eval_sets) -> str:
    """The held-out evaluation set (`EVAL_SETS`' last) if `eval_sets` has it, else the last."""
    eval_sets = list(eval_sets)
    return HELD_OUT if HELD_OUT in eval_sets else eval_sets[-1]


def is_meta_learner(model: str) -> bool:
    """Whether a leaderboard model (`kind:base`) adapts by meta-learning: a registered
    trainer that trains on episodes."""
    kind = model.split(":")[0]
    return kind in registry.available() and registry.get(kind).trains_on == "episodes"


def describe_set(predictions: pd.DataFrame, eval_set: str) -> str:
    """`'held-out assets MSFT, 2015-02-02 to 2016-12-30'`: the assets and dates of a set."""
    rows = predictions[predictions["eval_set"] == eval_set]
    symbols = ", ".join(sorted(rows["symbol"].unique()))
    dates = pd.to_datetime(rows["date"])
    label = eval_set.replace("_", " ").replace("held out", "held-out")
    return f"{label} {symbols}, {dates.min():%Y-%m-%d} to {dates.max():%Y-%m-%d}"


METRICS = ("mse", "r2_oos", "qlike")


def task_sums(predictions: pd.DataFrame, metric: str = "r2_oos") -> pd.DataFrame:
    """Per (eval_set, model, fold, task): the sum `sse` of the losses behind `metric` over
    the task's query samples and their count `n` (squared errors over every target column
    for `mse` and `r2_oos`; QLIKE of `pred_1` for `qlike`)."""
    if metric not in METRICS:
        raise ValueError(f"`metric` expected one of {METRICS}. Received: metric={metric!r}")
    if metric == "qlike":
        from metazoo.metrics.significance import qlike_losses

        losses = qlike_losses(predictions["true_1"].to_numpy(), predictions["pred_1"].to_numpy())
        losses = losses[:, None]
    else:
        pred_cols = sorted(c for c in predictions if c.startswith("pred_"))
        pred_cols = [c for c in pred_cols if predictions[c].notna().any()]
        true_cols = [c.replace("pred_", "true_") for c in pred_cols]
        losses = (predictions[true_cols].to_numpy() - predictions[pred_cols].to_numpy()) ** 2
    frame = predictions[["eval_set", "model", "fold", "task"]].assign(
        sse=np.nansum(losses, axis=1), n=np.sum(np.isfinite(losses), axis=1)
    )
    return frame.groupby(["eval_set", "model", "fold", "task"], sort=True)[["sse", "n"]].sum()


def point_values(predictions: pd.DataFrame, metric: str = "r2_oos") -> pd.Series:
    """`metric` per (eval_set, model) over all query samples, as the leaderboard has it
    (`r2_oos` against the historical mean of the same rows)."""
    sums = task_sums(predictions, metric).groupby(level=["eval_set", "model"], sort=False).sum()
    values = sums["sse"] / sums["n"]
    if metric != "r2_oos":
        return values
    out = {}
    for eval_set, part in values.groupby(level="eval_set", sort=False):
        part = part.droplevel("eval_set")
        reference = part.get("historical_mean", np.nan)
        for model, value in part.items():
            out[(eval_set, model)] = 1 - value / reference
    return pd.Series(out, dtype=np.float64).rename_axis(["eval_set", "model"])


def task_intervals(
    predictions: pd.DataFrame,
    metric: str = "r2_oos",
    level: float = 0.95,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
) -> pd.DataFrame:
    """Percentile-bootstrap intervals of `mse`, `r2_oos` or `qlike` over evaluation tasks.

    The unit resampled is an evaluation task (fold x asset x period): tasks are drawn with
    replacement, and the metric is recomputed over all query samples of the drawn tasks as
    the leaderboard computes it (`r2_oos` against the historical mean of the same tasks).
    The generator is seeded locally; the global RNG is untouched.

    Args:
        predictions: rows of one target: `eval_set`, `model`, `fold`, `task`, `pred_*` and
            `true_*` columns.
        metric: `"mse"`, `"r2_oos"` or `"qlike"` (variance targets; see `task_sums`).
        level: coverage of the interval, in (0, 1).
        n_bootstrap: resamples.
        seed: seed of the resampling.

    Returns:
        A frame with `eval_set`, `model`, `low`, `high` and `n_tasks`.
    """
    if not 0 < level < 1:
        raise ValueError(f"`level` expected a number in (0, 1). Received: level={level!r}")
    sums = task_sums(predictions, metric)
    rng = np.random.default_rng(seed)
    out = []
    for eval_set, part in sums.groupby(level="eval_set", sort=False):
        part = part.droplevel("eval_set")
        tasks = part.index.droplevel("model").unique()
        weights = rng.multinomial(len(tasks), np.full(len(tasks), 1 / len(tasks)), n_bootstrap)

        def boot_mse(model, part=part, tasks=tasks, weights=weights):
            cell = part.xs(model, level="model").reindex(tasks, fill_value=0)
            return (weights @ cell["sse"].to_numpy()) / (weights @ cell["n"].to_numpy())

        models = part.index.get_level_values("model").unique()
        reference = boot_mse("historical_mean") if "historical_mean" in models else None
        for model in models:
            with np.errstate(divide="ignore", invalid="ignore"):
                values = boot_mse(model)
                if metric == "r2_oos":
                    values = 1 - values / reference if reference is not None else values * np.nan
            values = values[np.isfinite(values)]
            low, high = (
                np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
                if len(values)
                else (np.nan,) * 2
            )
            n_tasks = len(part.xs(model, level="model"))
            out.append(
                {"eval_set": eval_set, "model": model, "low": low, "high": high, "n_tasks": n_tasks}
            )
    return pd.DataFrame(out, columns=["eval_set", "model", "low", "high", "n_tasks"])


def sharpe_interval(daily_returns, level: float = 0.95) -> tuple[float, float, float]:
    """Annualized Sharpe ratio of `daily_returns` with its interval under iid returns.

    The standard error of the daily ratio `s` over `T` days is `sqrt((1 + s^2 / 2) / T)`
    (Lo, 2002); ratio and error are annualized with `sqrt(252)`.

    Returns:
        `(sharpe, low, high)`; NaNs if the returns do not vary or there are fewer than 2.
    """
    from scipy import stats

    r = np.asarray(daily_returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    if len(r) < 2 or np.ptp(r) == 0:
        return (np.nan,) * 3
    daily = r.mean() / r.std(ddof=1)
    half = stats.norm.ppf((1 + level) / 2) * np.sqrt((1 + daily**2 / 2) / len(r))
    scale = np.sqrt(DAYS_PER_YEAR)
    return daily * scale, (daily - half) * scale, (daily + half) * scale


def _kind(board, model) -> str:
    kinds = board.loc[board["model"] == model, "kind"]
    return kinds.iloc[0] if len(kinds) else "baseline"


def _set_room(ax, low, high):
    """x limits around `[low, high]` and 0, with room for the value labels."""
    low, high = min(low, 0.0), max(high, 0.0)
    pad = 0.3 * max(high - low, 1e-12)
    ax.set_xlim(low - (pad if low < 0 else 0.05 * pad), high + (pad if high > 0 else 0.05 * pad))


def _bar_colors(board, models) -> list:
    return ["tab:blue" if _kind(board, m) == "learner" else "tab:gray" for m in models]


def _annotate_bars(ax, positions, values, low, high):
    """Write each bar's value beyond the far end of its interval (the true value where the
    bar is cut), so that text and error bars never overlap."""
    span = np.ptp(ax.get_xlim())
    for y, value, lo, hi in zip(positions, values, low, high, strict=True):
        if not np.isfinite(value):
            continue
        right = value >= 0
        end = hi if right else lo
        end = end if np.isfinite(end) else value
        x = end + (0.01 if right else -0.01) * span
        ax.text(x, y, f"{value:.3g}", va="center", ha="left" if right else "right", fontsize=7)


def leaderboard_chart(board: pd.DataFrame, predictions: pd.DataFrame, target: str):
    """Horizontal bars of `r2_oos` (`qlike` for a variance target, `mse` without a
    historical mean) per evaluation set, the best on top, each with its value and a 95%
    bootstrap interval over the evaluation tasks."""
    import matplotlib.pyplot as plt

    if target_kind(target) == "variance":
        metric = "qlike"
    elif "r2_oos" in board and board["r2_oos"].notna().any():
        metric = "r2_oos"
    else:
        metric = "mse"
    intervals = task_intervals(predictions, metric=metric).set_index(["eval_set", "model"])
    sets = list(dict.fromkeys(board["eval_set"]))
    height = 0.32 * board.groupby("eval_set").size().max() + 2
    fig, axes = plt.subplots(1, len(sets), figsize=(6.5 * len(sets), height), squeeze=False)
    for ax, name in zip(axes[0], sets, strict=True):
        rows = board[(board["eval_set"] == name) & board[metric].notna()]
        rows = rows.sort_values(metric, ascending=metric == "r2_oos")  # the best on top
        values = rows[metric].to_numpy(dtype=np.float64)
        keys = [(name, m) for m in rows["model"]]
        low = intervals["low"].reindex(keys).to_numpy(dtype=np.float64)
        high = intervals["high"].reindex(keys).to_numpy(dtype=np.float64)
        floor = R2_CLIP if metric == "r2_oos" else -np.inf
        shown = np.maximum(values, floor)
        lo, hi = np.maximum(low, floor), np.maximum(high, floor)
        error = np.vstack([np.clip(shown - lo, 0, None), np.clip(hi - shown, 0, None)])
        error = np.nan_to_num(error)
        y = np.arange(len(rows))
        ax.barh(y, shown, color=_bar_colors(board, rows["model"]), xerr=error, capsize=2,
                error_kw={"elinewidth": 0.8, "ecolor": "black"})  # fmt: skip
        ax.set_yticks(y, rows["model"], fontsize=8)
        ax.axvline(0, color="black", linewidth=0.8)
        ahead = f"mean daily variance over {target.split(':')[1]} days" if ":" in target else ""
        ax.set_xlabel(f"{metric} ({target}, {ahead or 'day 1 ahead'})")
        _set_room(ax, np.nanmin(np.append(lo, shown)), np.nanmax(np.append(hi, shown)))
        _annotate_bars(ax, y, values, np.minimum(lo, shown), np.maximum(hi, shown))
        cut = " (bars cut at -1)" if metric == "r2_oos" and values.min() < R2_CLIP else ""
        ax.set_title(
            f"{describe_set(predictions, name)}\n{metric}{cut}, all models; "
            "blue: learners, gray: baselines", fontsize=9
        )  # fmt: skip
    fig.suptitle(
        f"Leaderboard, {target}: values with 95% intervals (bootstrap over evaluation tasks)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def sharpe_chart(board: pd.DataFrame, strategies: pd.DataFrame, predictions, target: str):
    """Bars of the sign strategy's Sharpe ratio per evaluation set, with its value and the
    95% interval of Lo (2002) from the strategy's daily net returns."""
    import matplotlib.pyplot as plt

    signal = strategies[(strategies["target"] == target) & (strategies["strategy"] == "signal")]
    sets = list(dict.fromkeys(signal["eval_set"]))
    height = 0.32 * signal.groupby("eval_set")["model"].nunique().max() + 2
    fig, axes = plt.subplots(1, len(sets), figsize=(6.5 * len(sets), height), squeeze=False)
    for ax, name in zip(axes[0], sets, strict=True):
        stats = {
            model: sharpe_interval(rows.sort_values("date")["net_return"])
            for model, rows in signal[signal["eval_set"] == name].groupby("model")
        }
        table = pd.DataFrame(stats, index=["sharpe", "low", "high"]).T.dropna()
        table = table.sort_values("sharpe")
        y = np.arange(len(table))
        error = np.vstack([table["sharpe"] - table["low"], table["high"] - table["sharpe"]])
        ax.barh(y, table["sharpe"], color=_bar_colors(board, table.index), xerr=error,
                capsize=2, error_kw={"elinewidth": 0.8, "ecolor": "black"})  # fmt: skip
        ax.set_yticks(y, table.index, fontsize=8)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlabel("annualized Sharpe ratio, net of costs")
        _set_room(ax, table["low"].min(), table["high"].max())
        _annotate_bars(ax, y, table["sharpe"].to_numpy(), table["low"], table["high"])
        ax.set_title(
            f"{describe_set(predictions, name)}\nsign strategy, all models with a position",
            fontsize=9,
        )
    fig.suptitle(
        f"Sharpe ratios, {target}: values with 95% intervals (Lo 2002, over days)", fontsize=10
    )
    fig.tight_layout()
    return fig


def best_learners(board: pd.DataFrame, metric: str = "sharpe", n: int = TOP_LEARNERS) -> list:
    """The `n` learners with the highest held-out `metric` (lowest if it is an error)."""
    held = held_out_set(board["eval_set"].unique())
    rows = board[(board["eval_set"] == held) & (board["kind"] == "learner")]
    rows = rows[rows[metric].notna()]
    ascending = metric in ("mse", "mae", "qlike")
    return rows.sort_values([metric, "model"], ascending=[ascending, True])["model"][:n].tolist()


def equity_chart(board: pd.DataFrame, strategies: pd.DataFrame, predictions, target: str):
    """Equity curves of the sign strategy: the best learners by held-out Sharpe, the
    baselines that take positions, and buy-and-hold; one panel per evaluation set."""
    import matplotlib.pyplot as plt

    signal = strategies[(strategies["target"] == target) & (strategies["strategy"] == "signal")]
    learners = best_learners(board[board["target"] == target] if "target" in board else board)
    baselines = sorted(
        m for m in board.loc[board["kind"] != "learner", "model"].unique()
        if m != "buy_and_hold" and board.loc[board["model"] == m, "sharpe"].notna().any()
    )  # fmt: skip
    styles = {m: {"color": c, "lw": 1.6} for m, c in zip(learners, LEARNER_COLORS, strict=False)}
    styles |= {
        m: {"color": c, "lw": 1.0, "ls": "--"}
        for m, c in zip(baselines, BASELINE_COLORS, strict=False)
    }
    styles["buy_and_hold"] = {"color": "black", "lw": 1.4, "ls": ":"}
    sets = list(dict.fromkeys(signal["eval_set"]))
    fig, axes = plt.subplots(len(sets), 1, figsize=(11, 3.6 * len(sets)), squeeze=False)
    for ax, name in zip(axes[:, 0], sets, strict=True):
        part = signal[signal["eval_set"] == name]
        hold = part[part["model"] == "buy_and_hold"].sort_values("date")["net_return"]
        for model, style in styles.items():
            rows = part[part["model"] == model].sort_values("date")
            if not len(rows):
                continue
            returns = rows["net_return"].to_numpy()
            sharpe = board.loc[(board["model"] == model) & (board["eval_set"] == name), "sharpe"]
            label = f"{model} (Sharpe {sharpe.iloc[0]:.2f})" if len(sharpe) else model
            if model != "buy_and_hold" and len(hold) == len(returns):
                if np.allclose(hold.to_numpy(), returns):  # a curve hidden under buy-and-hold
                    label = label.replace(" (", " (= buy-and-hold, ")
            ax.plot(pd.to_datetime(rows["date"]), np.cumprod(1 + returns), label=label, **style)
        ax.axhline(1.0, color="black", lw=0.5)
        ax.set_ylabel("equity (start = 1)")
        ax.set_xlabel("date")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        ax.set_title(
            f"{describe_set(predictions, name)}: sign strategy net of costs; the top "
            f"{len(learners)} learners by held-out Sharpe, baselines, buy-and-hold",
            fontsize=9,
        )
    fig.tight_layout()
    return fig


def stress_task(predictions: pd.DataFrame) -> tuple[str, str]:
    """`(fold, task)` of the held-out task with the largest variance of daily returns."""
    held = held_out_set(predictions["eval_set"].unique())
    rows = predictions[predictions["eval_set"] == held]
    first = rows[rows["model"] == rows["model"].iloc[0]]
    variance = first.groupby(["fold", "task"], sort=True)["next_return"].var()
    return variance.idxmax()


def forecast_models(board: pd.DataFrame, metric: str = "mse") -> list:
    """The best learner and the best meta-learner by held-out `metric` (an error: lower
    is better), the pooled network and the best baseline by it (each once)."""
    held = held_out_set(board["eval_set"].unique())
    rows = board[(board["eval_set"] == held) & (board["model"] != "buy_and_hold")]
    rows = rows[rows[metric].notna()].sort_values([metric, "model"])
    learners = rows[rows["kind"] == "learner"]["model"].tolist()
    meta = [m for m in learners if is_meta_learner(m)]
    pooled = [m for m in learners if m.split(":")[0] == "pooled"]
    baselines = rows[rows["kind"] != "learner"]["model"].tolist()
    chosen = learners[:1] + meta[:1] + pooled[:1] + baselines[:1]
    return list(dict.fromkeys(chosen))


def _period_word(period: str) -> str:
    if re.fullmatch(r"\d{4}Q\d", period):
        return "quarter"
    if re.fullmatch(r"\d{4}-\d{2}", period):
        return "month"
    return "year" if re.fullmatch(r"\d{4}", period) else "period"


def forecast_chart(board: pd.DataFrame, predictions: pd.DataFrame, target: str):
    """Day-1 forecasts against actuals on the held-out task with the largest return
    variance, for the models of `forecast_models` (by MSE, or QLIKE for variance);
    variance on a log scale."""
    import matplotlib.pyplot as plt

    fold, task = stress_task(predictions)
    rows = predictions[(predictions["fold"] == fold) & (predictions["task"] == task)]
    log = target_kind(target) == "variance"
    metric = "qlike" if log else "mse"
    models = forecast_models(board, metric)
    fig, ax = plt.subplots(figsize=(11, 4))
    truth = rows[rows["model"] == models[0]].sort_values("date")

    def shown(values):
        values = np.asarray(values, dtype=np.float64)
        return np.maximum(values, VARIANCE_DISPLAY_FLOOR) if log else values

    ax.plot(pd.to_datetime(truth["date"]), shown(truth["true_1"]), "o-", color="black",
            ms=3, lw=0.8, label="actual")  # fmt: skip
    for model, color in zip(models, LEARNER_COLORS, strict=False):
        part = rows[rows["model"] == model].sort_values("date")
        ls = "-" if _kind(board, model) == "learner" else "--"
        ax.plot(pd.to_datetime(part["date"]), shown(part["pred_1"]), ls=ls, color=color,
                lw=1.3, label=model)  # fmt: skip
    if log:
        ax.set_yscale("log")
        ax.set_ylabel(f"variance, log scale (floor {VARIANCE_DISPLAY_FLOOR:g})")
    else:
        ax.axhline(0.0, color="black", lw=0.5)
        ax.set_ylabel(f"{target} (day 1 ahead)")
    ax.set_xlabel("date")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    symbol, period = task.split("@") if "@" in task else (task, "")
    ax.set_title(
        f"Held-out {symbol}, {period}: the held-out {_period_word(period)} with the largest "
        "return variance\n"
        f"{target} forecasts against actuals on its query days: best learner, best "
        f"meta-learner, pooled, best baseline (by held-out {metric.upper()})",
        fontsize=9,
    )
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
