"""The run folder: results, forecasts, config, and a Markdown report with plots."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from metazoo.experiment.environment import describe_machine

R2_CLIP = -1.0

# Columns of the report's leaderboard tables, per target, in order (where present).
TABLE_COLUMNS = {
    "return": ["mse", "r2_oos", "hit_rate", "ic", "rank_ic", "icir", "sharpe", "sharpe_vol_scaled",
               "max_drawdown", "turnover", "portfolio_sharpe"],
    "variance": ["mse", "r2_oos", "qlike", "n_floored", "ic", "rank_ic", "var_breach_rate",
                 "var_kupiec_p"],
    "direction": ["mse", "hit_rate", "ic", "rank_ic", "sharpe", "max_drawdown"],
}  # fmt: skip


def write_run(result) -> None:
    """Write `results.csv`, `predictions.csv.gz`, `strategies.csv.gz`, `config.json` and
    `report.md` (with PNG plots) into `result.run_dir`."""
    run_dir = result.run_dir
    result.leaderboard.to_csv(run_dir / "results.csv", index=False)
    result.predictions.to_csv(run_dir / "predictions.csv.gz", index=False)
    result.strategies.to_csv(run_dir / "strategies.csv.gz", index=False)
    (run_dir / "config.json").write_text(json.dumps(result.config.to_dict(), indent=2) + "\n")
    plots = {}
    for target in result.config.targets:
        plots[target] = _plots(result, target)
    (run_dir / "report.md").write_text(markdown(result, plots))


def leaderboard_table(leaderboard: pd.DataFrame, target: str) -> pd.DataFrame:
    """The leaderboard of one target as a display table (evaluation set, model, metrics)."""
    rows = leaderboard[leaderboard["target"] == target]
    columns = [c for c in TABLE_COLUMNS[target] if c in rows and rows[c].notna().any()]
    return rows[["eval_set", "model", "kind", *columns]].reset_index(drop=True)


def markdown_table(frame: pd.DataFrame) -> str:
    """A Markdown table of `frame` (floats to 4 significant digits, NaN as blank)."""

    def cell(value):
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |"]
    lines.append("|" + "---|" * len(frame.columns))
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)


def markdown(result, plots) -> str:
    """The text of `report.md`: settings, protocol, leaderboards and plots."""
    c = result.config
    first = result.predictions.drop_duplicates("fold")
    held_rows = result.predictions[result.predictions["eval_set"] == "held_out_assets"]
    groups = held_rows.groupby("fold", sort=False)["symbol"].unique()
    held = "; ".join(f"{fold}: {', '.join(sorted(s))}" for fold, s in groups.items())
    held = held or ", ".join(first["fold"])
    if c.test_start is not None:
        periods = f"evaluation from {c.test_start} to {c.test_end or 'the end'}"
    else:
        periods = (
            f"evaluation on the last {c.test_fraction:.0%} of each asset's own history "
            f"(the {c.history_years or 'all'} last years used), after an embargo of "
            f"{c.embargo} trading days"
        )
    parts = [
        "# metazoo run",
        "",
        f"Seed {c.seed}; data: {c.data or 'bundled markets'}; targets {', '.join(c.targets)} "
        f"over {c.horizon} day(s) from {c.lookback}-day windows; tasks: one per asset and "
        f"period '{c.period}'; {periods}; "
        f"held-out asset groups (each held out once): {held}; K = {c.support_size} support samples per "
        f"evaluation task; costs {c.cost_bps:g} bp per unit of turnover. "
        f"Wall time {result.seconds:.0f} s on {describe_machine()}.",
        "",
        "Metrics are computed on the query samples of every evaluation task (what follows "
        "each task's first K samples). `r2_oos` is 1 - MSE / MSE of the historical mean. "
        "Strategies: `sharpe` trades the sign of the next-day forecast in each task "
        "(flat on support days), net of costs; `sharpe_vol_scaled` sizes the same signs to 10% "
        "annualized volatility from the trailing 21-day volatility; `portfolio_sharpe` holds "
        "the long-short "
        "portfolio of normalized forecasts across the assets of each date. Baselines "
        "(`kind` baseline) and `buy_and_hold` stand beside every model.",
    ]
    for target in c.targets:
        parts += ["", f"## Target: {target}", ""]
        parts.append(markdown_table(leaderboard_table(result.leaderboard, target)))
        for title, name in plots[target]:
            parts += ["", f"### {title}", "", f"![{title}]({name})"]
    return "\n".join(parts) + "\n"


def _plots(result, target) -> list:
    """Write the plots of one target; return `(title, file name)` pairs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    board = result.leaderboard[result.leaderboard["target"] == target]
    metric = "r2_oos" if "r2_oos" in board and board["r2_oos"].notna().any() else "mse"
    sets = list(dict.fromkeys(board["eval_set"]))
    height = 0.3 * board.groupby("eval_set").size().max() + 1.5
    fig, axes = plt.subplots(1, len(sets), figsize=(6 * len(sets), height), squeeze=False)
    for ax, name in zip(axes[0], sets, strict=True):
        rows = board[(board["eval_set"] == name) & board[metric].notna()].sort_values(metric)
        colors = ["tab:gray" if k != "learner" else "tab:blue" for k in rows["kind"]]
        values = rows[metric].to_numpy()
        if metric == "r2_oos":  # one poor model should not flatten the others' bars
            values = np.maximum(values, R2_CLIP)
        ax.barh(rows["model"], values, color=colors)
        ax.axvline(0, color="black", linewidth=0.8)
        clipped = " (bars cut at -1)" if metric == "r2_oos" and rows[metric].min() < R2_CLIP else ""
        ax.set_title(f"{name}: {metric}{clipped}; gray: baselines", fontsize=9)
    fig.tight_layout()
    made.append(_save(fig, result.run_dir, f"leaderboard_{target}.png", "Leaderboard chart"))

    strategies = result.strategies
    signal = strategies[(strategies["target"] == target) & (strategies["strategy"] == "signal")]
    if len(signal):
        fig, axes = plt.subplots(1, len(sets), figsize=(6 * len(sets), 4), squeeze=False)
        for ax, name in zip(axes[0], sets, strict=True):
            part = signal[signal["eval_set"] == name]
            for model, rows in part.groupby("model", sort=True):
                kind = board.loc[board["model"] == model, "kind"]
                style = "--" if len(kind) and kind.iloc[0] != "learner" else "-"
                equity = np.cumprod(1 + rows.sort_values("date")["net_return"].to_numpy())
                ax.plot(np.sort(rows["date"].to_numpy()), equity, style, label=model, lw=1)
            ax.set_title(f"{name}: equity of the sign strategy, net of costs")
            ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        made.append(_save(fig, result.run_dir, f"equity_{target}.png", "Equity curves"))

    made.append(_forecast_plot(result, target, board, plt))
    return made


def _forecast_plot(result, target, board, plt):
    """Forecasts against actuals on one held-out task (the last one), for the best learner,
    the pooled network and the first baseline."""
    rows = result.predictions[
        (result.predictions["target"] == target)
        & (result.predictions["eval_set"] == "held_out_assets")
    ]
    task = sorted(rows["task"].unique())[-1]
    rows = rows[rows["task"] == task]
    learners = board[(board["kind"] == "learner") & (board["eval_set"] == "held_out_assets")]
    best = learners.sort_values("mse")["model"].iloc[0]
    chosen = [best, *[m for m in rows["model"].unique() if m.startswith("pooled:")][:1]]
    chosen += [m for m in board.loc[board["kind"] == "baseline", "model"].unique()][:2]
    fig, ax = plt.subplots(figsize=(9, 4))
    truth = rows[rows["model"] == chosen[0]].sort_values("date")
    ax.plot(truth["date"], truth["true_1"], color="black", lw=1, label="actual")
    for model in dict.fromkeys(chosen):
        part = rows[rows["model"] == model].sort_values("date")
        ax.plot(part["date"], part["pred_1"], lw=1, label=model)
    ax.set_title(f"{task} ({target}, day 1 ahead): forecasts against actuals")
    ax.legend(fontsize=7)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _save(fig, result.run_dir, f"forecasts_{target}.png", "Forecasts against actuals")


def _save(fig, run_dir, name, title):
    import matplotlib.pyplot as plt

    fig.savefig(run_dir / name, dpi=110)
    plt.close(fig)
    return (f"{title} ({name.split('_')[1].split('.')[0]})", name)
