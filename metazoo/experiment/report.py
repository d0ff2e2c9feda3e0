"""The run folder: results, forecasts, config, and a Markdown report with plots."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from metazoo.experiment.environment import describe_machine
from metazoo.experiment.html_report import write_html

# Columns of the report's leaderboard tables, per target, in order (where present).
TABLE_COLUMNS = {
    "return": ["mse", "r2_oos", "hit_rate", "ic", "rank_ic", "icir", "sharpe", "sharpe_vol_scaled",
               "max_drawdown", "turnover", "portfolio_sharpe"],
    "variance": ["mse", "r2_oos", "qlike", "n_floored", "ic", "rank_ic", "var_breach_rate",
                 "var_kupiec_p"],
    "direction": ["mse", "hit_rate", "ic", "rank_ic", "sharpe", "max_drawdown"],
}  # fmt: skip


PLOTS_NOTE = (
    "Plots: bars carry their value and a 95% interval: for `r2_oos` a percentile bootstrap "
    "over the evaluation tasks (tasks drawn with replacement, the metric recomputed over "
    "their query samples), for `sharpe` the interval of Lo (2002) from the daily net "
    "returns. Equity curves show the three learners with the best held-out `sharpe`, the "
    "baselines that take positions and `buy_and_hold`. Forecasts are shown on the held-out "
    "task with the largest variance of daily returns, for the best learner, the best "
    "meta-learner, the pooled network and the best baseline by held-out `mse`."
)


def write_run(result) -> None:
    """Write `results.csv`, `predictions.csv.gz`, `strategies.csv.gz`, `config.json` and
    `report.md` (with PNG plots) into `result.run_dir`, and `report.html`: the same report
    as one self-contained page."""
    run_dir = result.run_dir
    result.leaderboard.to_csv(run_dir / "results.csv", index=False)
    result.predictions.to_csv(run_dir / "predictions.csv.gz", index=False)
    result.strategies.to_csv(run_dir / "strategies.csv.gz", index=False)
    (run_dir / "config.json").write_text(json.dumps(result.config.to_dict(), indent=2) + "\n")
    plots = {}
    for target in result.config.targets:
        plots[target] = _plots(result, target)
    (run_dir / "report.md").write_text(markdown(result, plots))
    write_html(run_dir)


def leaderboard_table(leaderboard: pd.DataFrame, target: str) -> pd.DataFrame:
    """The leaderboard of one target as a display table (evaluation set, model, metrics)."""
    rows = leaderboard[leaderboard["target"] == target]
    kind = target.split(":")[0]  # a token such as variance:5 has the columns of its kind
    columns = [c for c in TABLE_COLUMNS[kind] if c in rows and rows[c].notna().any()]
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
        "",
        PLOTS_NOTE,
    ]
    for target in c.targets:
        parts += ["", f"## Target: {target}", ""]
        parts.append(markdown_table(leaderboard_table(result.leaderboard, target)))
        for title, name in plots[target]:
            parts += ["", f"### {title}", "", f"![{title}]({name})"]
    return "\n".join(parts) + "\n"


def _plots(result, target) -> list:
    """Write the plots of one target (see `metazoo.experiment.plots`); return
    `(title, file name)` pairs."""
    import matplotlib

    matplotlib.use("Agg")
    from metazoo.experiment import plots

    board = result.leaderboard[result.leaderboard["target"] == target]
    predictions = result.predictions[result.predictions["target"] == target]
    made = [
        _save(plots.leaderboard_chart(board, predictions, target), result.run_dir,
              f"leaderboard_{target}.png", "Leaderboard chart")
    ]  # fmt: skip
    strategies = result.strategies
    if len(strategies) and (strategies["target"] == target).any():
        for chart, name, title in (
            (plots.sharpe_chart, "sharpe", "Sharpe ratios"),
            (plots.equity_chart, "equity", "Equity curves"),
        ):
            fig = chart(board, strategies, predictions, target)
            made.append(_save(fig, result.run_dir, f"{name}_{target}.png", title))
    fig = plots.forecast_chart(board, predictions, target)
    made.append(_save(fig, result.run_dir, f"forecasts_{target}.png", "Forecasts against actuals"))
    return made


def _save(fig, run_dir, name, title):
    import matplotlib.pyplot as plt

    fig.savefig(run_dir / name, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return (f"{title} ({name.split('_')[1].split('.')[0]})", name)
