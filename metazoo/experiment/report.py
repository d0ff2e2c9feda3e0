"""The run folder: results, forecasts, config, and a Markdown report with plots."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from metazoo.experiment import breakdown
from metazoo.experiment.environment import describe_machine
from metazoo.experiment.html_report import write_html
from metazoo.experiment.targets import target_horizon, target_kind
from metazoo.experiment.variance_scoring import (
    DM_REFERENCES,
    MCS_REPS,
    MCS_SIZE,
    SIGNIFICANCE,
    TARGET_VOL,
    TRACKING_WINDOW,
)

# Columns of the leaderboard tables (terminal and report), per kind of target, in order
# (where present).
TABLE_COLUMNS = {
    "return": ["mse", "r2_oos", "hit_rate", "ic", "rank_ic", "icir", "sharpe", "sharpe_vol_scaled",
               "max_drawdown", "turnover", "portfolio_sharpe"],
    "variance": ["qlike", "mse_log", "dm_p_har", "dm_p_garch", "in_mcs", "var1_breach",
                 "var1_kupiec_p", "var1t_breach", "var1t_kupiec_p", "var1c_breach", "var1c_kupiec_p"],
    "direction": ["mse", "hit_rate", "ic", "rank_ic", "sharpe", "max_drawdown"],
}  # fmt: skip
# The report's variance tables: errors and significance, then risk (1-day targets).
VARIANCE_COLUMNS = ["qlike", "mse_log", "mse", "r2_oos", "dm_p_har", "dm_p_garch", "in_mcs",
                    "mcs_p"]  # fmt: skip
RISK_COLUMNS = ["var1_breach", "var1_kupiec_p", "var1_cc_p", "es1_forecast", "es1_realized",
                "var1t_breach", "var1t_kupiec_p", "var1t_cc_p", "es1t_forecast",
                "es1t_realized", "var5_breach", "var5_kupiec_p", "var5_cc_p", "es5_forecast",
                "es5_realized", "var5t_breach", "var5t_kupiec_p", "var5t_cc_p",
                "var1c_breach", "var1c_kupiec_p", "var1c_cc_p", "es1c_forecast",
                "es1c_realized", "var5c_breach", "var5c_kupiec_p", "var5c_cc_p",
                "vt_vol_ratio", "vt_tracking", "ivp_vol_ratio", "ivp_tracking"]  # fmt: skip
BREAKDOWN_BOOTSTRAP = 1000


PLOTS_NOTE = (
    "Plots: bars carry their value and a 95% interval: for `r2_oos` (`qlike` for variance "
    "targets) a percentile bootstrap "
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
    fast = {"method": "gzip", "compresslevel": 1}  # 2/3 of the time of level 9, 12% larger
    result.predictions.to_csv(run_dir / "predictions.csv.gz", index=False, compression=fast)
    result.strategies.to_csv(run_dir / "strategies.csv.gz", index=False, compression=fast)
    if len(result.calibration):
        result.calibration.to_csv(run_dir / "calibration.csv.gz", index=False, compression=fast)
    (run_dir / "config.json").write_text(json.dumps(result.config.to_dict(), indent=2) + "\n")
    plots = {}
    for target in result.config.targets:
        plots[target] = result.plots.get(target) or write_plots(
            run_dir,
            target,
            result.leaderboard[result.leaderboard["target"] == target],
            result.predictions[result.predictions["target"] == target],
            result.strategies,
        )
    (run_dir / "report.md").write_text(markdown(result, plots))
    wait_for(result.drawing)
    write_html(run_dir)


def leaderboard_table(leaderboard: pd.DataFrame, target: str, columns=None) -> pd.DataFrame:
    """The leaderboard of one target as a display table (evaluation set, model, metrics).

    Args:
        leaderboard: the run's leaderboard.
        target: a target of the run (`variance:5` is shown as a variance target).
        columns: the metrics shown, where present (default: `TABLE_COLUMNS` of the kind).

    Returns:
        A frame with `eval_set`, `model`, `kind` and the metrics; `in_mcs` as yes / no.
    """
    rows = leaderboard[leaderboard["target"] == target]
    wanted = TABLE_COLUMNS[target_kind(target)] if columns is None else columns
    columns = [c for c in wanted if c in rows and rows[c].notna().any()]
    table = rows[["eval_set", "model", "kind", *columns]].reset_index(drop=True)
    if "in_mcs" in table:
        table["in_mcs"] = [_yes_no(v) for v in table["in_mcs"]]
    return table


def _yes_no(value) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    return ""


def mark_significance(table: pd.DataFrame, leaderboard: pd.DataFrame, target: str):
    """`table` with each `qlike` written out and marked: `*` where the model's QLIKE is
    significantly lower than `har_rv`'s (one-sided DM p < `SIGNIFICANCE`), `+` than
    `garch11`'s."""
    rows = leaderboard[leaderboard["target"] == target].set_index(["eval_set", "model"])
    marked = table.copy()
    cells = []
    for eval_set, model, value in zip(
        table["eval_set"], table["model"], table["qlike"], strict=True
    ):
        marks = ""
        for column, sign in (("dm_p_har", "*"), ("dm_p_garch", "+")):
            p = rows.at[(eval_set, model), column] if column in rows else np.nan
            marks += sign if np.isfinite(p) and p < SIGNIFICANCE else ""
        cells.append("" if not np.isfinite(value) else f"{value:.4g}{marks}")
    marked["qlike"] = cells
    return marked


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
        f"Wall time {result.seconds:.0f} s on {result.machine or describe_machine()}.",
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
        if target_kind(target) == "variance":
            parts += variance_section(result, target)
        else:
            parts += ["", f"## Target: {target}", ""]
            parts.append(markdown_table(leaderboard_table(result.leaderboard, target)))
        parts += breakdown_section(result, target)
        for title, name in plots[target]:
            parts += ["", f"### {title}", "", f"![{title}]({name})"]
    return "\n".join(parts) + "\n"


def variance_section(result, target) -> list:
    """Lines of a variance target's section: errors and significance, what is inside the
    noise, and (1-day targets) risk."""
    c, board = result.config, result.leaderboard
    days = target_horizon(target, c.horizon)
    what = "1 day" if days == 1 else f"mean daily variance over {days} days"
    references = " and ".join(f"`{m}`" for m in DM_REFERENCES.values())
    lines = ["", f"## Target: {target} ({what})", ""]
    lines.append(
        "Forecasts of the mean daily variance (squared log returns) over the horizon, scored "
        "against its realized value: `qlike` (lower is better), `mse_log` (squared error of "
        "the log variance), `mse`, `r2_oos`. `dm_p_har` and `dm_p_garch`: the one-sided "
        f"Diebold-Mariano p-value that the model's QLIKE is lower than that of {references}, "
        "on the daily mean losses across assets over the rows both forecast, with HAC "
        f"(Bartlett) standard errors over {days - 1} lag(s). In the `qlike` column `*` marks "
        f"p < {SIGNIFICANCE:g} against `har_rv` and `+` against `garch11`. `in_mcs`: in the "
        f"{1 - MCS_SIZE:.0%} model confidence set of all models (Hansen, Lunde and Nason 2011, "
        f"`arch.bootstrap.MCS`, {MCS_REPS} bootstrap replications, seed {c.seed}); `mcs_p`: "
        "its p-value."
    )
    table = leaderboard_table(board, target, VARIANCE_COLUMNS)
    lines += ["", markdown_table(mark_significance(table, board, target))]
    rows = board[board["target"] == target]
    for eval_set, part in rows.groupby("eval_set", sort=False):
        lines += ["", significance_text(part, eval_set)]
    lines += ["", "### Risk from the forecasts", ""]
    if days != 1:
        lines.append(
            "VaR, expected shortfall and the volatility-targeted books are scored on the "
            "1-day target only: a prediction row carries the next day's return, not the "
            f"return over {days} days."
        )
        return lines
    lines.append(
        "Normal VaR `-z sqrt(h)` of each forecast `h` against the next day's log return: "
        "`var1_breach` and `var5_breach`, the share of days below the 1% and 5% VaR; "
        "`_kupiec_p`, Kupiec's test of that rate; `_cc_p`, Christoffersen's conditional "
        "coverage (rate and independence; transitions within each evaluation task). "
        "Columns with a `t` after the level (`var1t_breach`) take the VaR and ES of a "
        "Student t with 5 degrees of freedom of variance `h` (fixed, not fitted); with a "
        "`c` (`var1c_breach`), the calibrated VaR `-q sqrt(h)`, `q` the empirical quantile "
        "of the model's own standardized returns `r / sqrt(h)` on its in-sample forecasts "
        "of the fold's training tasks (their last 8 periods per asset: filtered historical "
        "simulation, nothing from the evaluation periods). "
        "`es1_forecast` is the mean forecast expected shortfall on the breach days, "
        "`es1_realized` the mean loss on them (equal if the ES is right). Books sized from "
        f"the forecasts, net of costs, to {TARGET_VOL:.0%} annualized volatility: `vt_`, a "
        "long position per asset; `ivp_`, per fold, the inverse-volatility portfolio of its "
        "assets (taken as uncorrelated). `_vol_ratio`: realized volatility / target (1 is "
        f"perfect); `_tracking`: mean `abs(log(vol / target))` over {TRACKING_WINDOW}-day "
        "windows (0 is perfect)."
    )
    lines += ["", markdown_table(leaderboard_table(board, target, RISK_COLUMNS))]
    return lines


def significance_text(rows: pd.DataFrame, eval_set: str) -> str:
    """One paragraph: the best QLIKE, which models beat `har_rv` and `garch11`
    significantly, that the other differences are inside the noise, and the MCS."""
    rows = rows[rows["qlike"].notna()].sort_values(["qlike", "model"])
    label = eval_set.replace("_", " ").capitalize()
    if not len(rows):
        return f"{label}: no variance forecasts."
    best = rows.iloc[0]
    text = [f"{label}: the lowest QLIKE is `{best['model']}`'s ({best['qlike']:.4g})."]
    for column, reference in DM_REFERENCES.items():
        if column not in rows or rows[column].isna().all():
            text.append(f"`{reference}` is not in this run.")
            continue
        p = rows[column]
        better = rows[p < SIGNIFICANCE]
        if len(better):
            named = ", ".join(
                f"`{m}` (p = {v:.3g})" for m, v in zip(better["model"], better[column], strict=True)
            )
            text.append(
                f"Significantly below `{reference}` (DM p < {SIGNIFICANCE:g}): {named}; "
                f"every other difference from `{reference}` is inside the noise."
            )
        else:
            text.append(
                f"No model is significantly below `{reference}` (DM p < {SIGNIFICANCE:g}): "
                "every difference in its favour is inside the noise."
            )
    if "in_mcs" in rows and rows["in_mcs"].notna().any():
        members = rows.loc[[v is True or v is np.True_ for v in rows["in_mcs"]], "model"]
        text.append(
            f"The {1 - MCS_SIZE:.0%} model confidence set holds "
            + ", ".join(f"`{m}`" for m in members)
            + "."
        )
    return " ".join(text)


def breakdown_section(result, target) -> list:
    """Lines of the per-fold and per-asset-class tables of a target's main metric."""
    from metazoo.experiment.run import asset_classes

    predictions = result.predictions[result.predictions["target"] == target]
    metric = breakdown.main_metric(target)
    board = result.leaderboard[result.leaderboard["target"] == target]
    present = set(predictions["model"])
    models = [m for m in dict.fromkeys(board["model"]) if m in present]
    classes = asset_classes(predictions).set_index("symbol")["asset_class"]
    lines = []
    for title, groups in (("fold", "fold"), ("asset class", classes)):
        scores = breakdown.group_scores(
            predictions, groups, metric, n_bootstrap=BREAKDOWN_BOOTSTRAP, seed=result.config.seed
        )
        lines += [
            "",
            f"### {target}: {metric} per {title}, with 95% intervals over tasks",
            "",
            f"Each cell: `{metric}` over the query samples of the {title}'s evaluation tasks "
            "and its 95% percentile-bootstrap interval over those tasks; `(tasks)`: how many.",
            "",
            markdown_table(breakdown.wide_table(scores, models, board["eval_set"])),
        ]
    return lines


def write_plots(run_dir, target, board, predictions, strategies, drawing=None) -> list:
    """Write the plots of one target into `run_dir` (see `metazoo.experiment.plots`),
    from its leaderboard rows, prediction rows and the strategies (of any targets);
    return `(title, file name)` pairs.

    Given a list `drawing`, each plot is drawn in a process forked from this one, all at
    once, where fork is safe (a POSIX process with one thread that has not imported
    TensorFlow); the processes are appended to `drawing`, and `wait_for(drawing)` waits for
    them. Otherwise the plots are drawn here, one after the other.
    """
    import matplotlib

    matplotlib.use("Agg")
    from metazoo.experiment import plots

    stem = target.replace(":", "_")
    charts = [(plots.leaderboard_chart, (board, predictions, target), "leaderboard",
               "Leaderboard chart")]  # fmt: skip
    trades = target_kind(target) in ("return", "direction")
    if trades and len(strategies) and (strategies["target"] == target).any():
        for chart, name, title in (
            (plots.sharpe_chart, "sharpe", "Sharpe ratios"),
            (plots.equity_chart, "equity", "Equity curves"),
        ):
            charts.append((chart, (board, strategies, predictions, target), name, title))
    charts.append((plots.forecast_chart, (board, predictions, target), "forecasts",
                   "Forecasts against actuals"))  # fmt: skip
    jobs = [(chart, args, run_dir / f"{name}_{stem}.png") for chart, args, name, _ in charts]
    if drawing is not None and _can_fork():
        import multiprocessing

        context = multiprocessing.get_context("fork")
        for job in jobs:
            child = context.Process(target=_draw, args=job, name=job[2].name)
            child.start()
            drawing.append(child)
    else:
        for job in jobs:
            _draw(*job)
    return [(f"{title} ({target})", f"{name}_{stem}.png") for _, _, name, title in charts]


def wait_for(drawing: list) -> None:
    """Wait for the processes of `write_plots(..., drawing=...)`; raise if one failed."""
    while drawing:
        child = drawing.pop(0)
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"Drawing {child.name} failed (exit code {child.exitcode}).")


def _can_fork() -> bool:
    import multiprocessing
    import sys
    import threading

    return (
        "fork" in multiprocessing.get_all_start_methods()
        and "tensorflow" not in sys.modules
        and threading.active_count() == 1
    )


def _draw(chart, args, path) -> None:
    import matplotlib.pyplot as plt

    fig = chart(*args)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
