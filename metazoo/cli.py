"""The `metazoo` command."""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np
import pandas as pd

from metazoo import data
from metazoo.experiment.command import add_options, add_run_parser, run_command

# The `tasks` subcommand's flags, from the option table of `metazoo run`.
TASK_OPTIONS = ("lookback", "horizon", "period", "test_start", "held_out", "support_size", "seed")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metazoo",
        description="Keras model zoo and meta-learning trainers for financial time series.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    summary = commands.add_parser(
        "data",
        help="list the bundled universe by asset class, or summarize a CSV of prices",
    )
    run = commands.add_parser(
        "tasks", help="summarize the windows and the meta-learning tasks of a data set"
    )
    for sub in (summary, run):
        sub.add_argument(
            "--data", help="CSV file of prices (long or wide); default: the bundled markets"
        )
        _data_options(sub)
    run.add_argument("--target", choices=data.features.TARGETS, default="return")
    add_options(
        run, TASK_OPTIONS, defaults={"held_out": "MSFT", "test_start": "2015-01-01"}
    )  # the flags of `run`
    add_run_parser(commands)
    forecast = commands.add_parser(
        "forecast",
        help="forecast every asset of a CSV with a saved forecaster (adapting on its last days)",
        description=(
            "Adapt a saved forecaster on each asset's last --support-days labelled days and "
            "forecast the next horizon from its last date. Prints the forecasts and writes "
            "them to --output."
        ),
    )
    forecast.add_argument(
        "--model",
        help="forecaster folder (models/<target>/<fold>/<learner>/ of a run folder, or a "
        "run folder to choose from); default: the shipped 1-day variance forecaster",
    )
    forecast.add_argument("--data", required=True, help="CSV file of prices (long, single, wide)")
    _data_options(forecast)
    forecast.add_argument(
        "--support-days", type=int, help="labelled days to adapt on [the forecaster's own]"
    )
    forecast.add_argument(
        "--output", default="forecasts.csv", help="CSV file of the forecasts [forecasts.csv]"
    )
    return parser


def _data_options(parser) -> None:
    parser.add_argument(
        "--missing",
        choices=data.datasets.MISSING_POLICIES,
        default="raise",
        help="what to do with missing values in --data (default: raise)",
    )
    parser.add_argument(
        "--layout",
        choices=data.datasets.LAYOUTS,
        default="auto",
        help="layout of --data: long (date, symbol, fields), single (one asset, e.g. a "
        "Yahoo download), wide (one close column per asset) [auto: from the columns]",
    )


def _load(args) -> pd.DataFrame:
    if args.data is None:
        return data.load_markets()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", data.MissingDataWarning)
        frame = data.load_prices(args.data, missing=args.missing, layout=args.layout)
    for warning in caught:
        print(f"note: {warning.message}")
    return frame


def _data_summary(frame: pd.DataFrame) -> pd.DataFrame:
    returns = frame.groupby("symbol")["close"].transform(lambda c: np.log(c).diff())
    table = (
        frame.assign(r=returns)
        .groupby("symbol")
        .agg(
            first=("date", "min"),
            last=("date", "max"),
            rows=("date", "size"),
            last_close=("close", "last"),
            ann_return=("r", lambda r: 252 * r.mean()),
            ann_vol=("r", lambda r: np.sqrt(252) * r.std()),
        )
    )
    report = frame.attrs.get("cleaning_report")
    if report is not None:
        table["unavailable"] = [", ".join(report.unavailable.get(s, [])) for s in table.index]
    table["first"] = table["first"].dt.date
    table["last"] = table["last"].dt.date
    return table.round(4)


def _universe_summary() -> str:
    """The bundled universe grouped by asset class: span, rows, fields and return stats."""
    table = data.universe()
    stats = _data_summary(data.load_markets())[["ann_return", "ann_vol"]]
    table = table.join(stats)
    table["first"] = table["first"].dt.date
    table["last"] = table["last"].dt.date
    columns = ["name", "first", "last", "rows", "fields", "currency", "ann_return", "ann_vol"]
    classes = [c for c in data.ASSET_CLASSES if c in set(table["asset_class"])]
    lines = [
        f"Bundled universe: {len(table)} daily series in {len(classes)} asset classes, "
        f"{table['rows'].sum():,} rows (sources and licenses: metazoo/data/_bundled/MARKETS.md)"
    ]
    for name in classes:
        part = table.loc[table["asset_class"] == name, columns]
        lines += ["", f"{name} ({len(part)})", part.to_string()]
    return "\n".join(lines)


def _tasks(args) -> None:
    frame = _load(args)
    print("Data\n" + _data_summary(frame).to_string() + "\n")
    windows = data.make_windows(
        frame, lookback=args.lookback, horizon=args.horizon, target=args.target
    )
    print(
        f"Windows: {len(windows)} samples of {windows.lookback} days x "
        f"{len(windows.feature_names)} features {list(windows.feature_names)}; "
        f"targets {list(windows.target_names)}"
    )
    tasks = data.TaskSet.from_windows(windows, period=args.period)
    held = [s for s in (args.held_out or "").split(",") if s]
    split = tasks.split(test_start=args.test_start, held_out=held)
    rows = []
    for name, part in zip(split._fields, split, strict=True):
        episodes = list(part.episodes(args.support_size))
        rows.append(
            {
                "task set": name,
                "tasks": len(part),
                "samples": sum(len(t) for t in part),
                f"tasks with K={args.support_size}": len(episodes),
                "symbols": ", ".join(part.symbols),
            }
        )
    print("\nTasks (symbol x period; training labels end before the test period)")
    print(pd.DataFrame(rows).set_index("task set").to_string())


def _forecast(args) -> None:
    from metazoo.experiment.environment import import_tensorflow_quietly

    frame = _load(args)
    import_tensorflow_quietly()
    from metazoo import forecasting

    path = forecasting.find_forecaster(args.model)
    forecaster = forecasting.load_forecaster(path)
    table = forecaster.forecast(frame, support_days=args.support_days)
    k = args.support_days or forecaster.support_size
    print(
        f"Forecaster {path} ({forecaster.get_config()['learner']}, target "
        f"{forecaster.target!r}, horizon {forecaster.horizon}); support: the last {k} "
        "labelled days of each asset"
    )
    shown = table
    if forecaster.target == "variance" or forecaster.target.startswith("rv:"):
        summed = forecaster.cumulative and forecaster.target == "variance"  # h days' sum
        daily = table["forecast"].clip(lower=0) / (forecaster.horizon if summed else 1)
        shown = table.assign(annual_vol=np.sqrt(252 * daily))
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    print(f"lower, upper: {forecasting.interval_note(forecaster.target)}")
    table.to_csv(args.output, index=False)
    print(f"forecasts: {args.output}")


def main(argv=None) -> int:
    """Run the `metazoo` command with `argv` (default: the process arguments); return the
    exit status: 0 on success, 2 on bad input (the message goes to stderr)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "data" and args.data is None:
            print(_universe_summary())
        elif args.command == "data":
            print(_data_summary(_load(args)).to_string())
        elif args.command == "tasks":
            _tasks(args)
        elif args.command == "forecast":
            _forecast(args)
        else:
            run_command(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"metazoo: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
