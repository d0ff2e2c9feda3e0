"""Benchmark model averaging and model selection on the bundled market data.

Usage::

    python scripts/averaging_selection.py [--target {variance,return}] [--epochs N]
                                          [--seed S] [--quick]

Forecasts one trading day ahead (the squared log return, or the log return) of the S&P 500,
the NASDAQ Composite and Microsoft from windows of 20 days of causal features. The protocol
is leak-free:

* train: forecasts made up to 2012-12-31 whose labels end before 2013-01-01;
* validation: forecasts of 2013-2014 whose labels end before 2015-01-01 (early stopping and
  the `inverse_error` weights only);
* test: forecasts from 2015-01-01 on, seen once, for the table.

Features are standardized per symbol with training statistics (`WindowScaler`); models
train on targets standardized with the training mean and standard deviation
(`TargetScaling`) and their forecasts are mapped back before scoring.

`ModelSelection` scores a small grid of zoo models by walk-forward cross-validation on the
training windows and refits the best on all of them. `ModelAveraging` combines several zoo
members (three seeds of an MLP, an LSTM, a GRU and a linear model) with each weighting:
uniform, inverse validation error, stacking on walk-forward out-of-fold forecasts, and
weights learned by gradient descent. Every model is judged beside the library's naive
baselines on the test period: each symbol's mean target up to 2012 (`HistoricalMean`), and
the zero forecast for returns (`ZeroForecast`) or the trailing 21-day mean of squared returns
for variance (`HistoricalMean(window=21)`). The scores are the experiment's: MSE, MAE, IC,
rank IC, `r2_oos` against the historical mean, the hit rate (returns) and QLIKE (variance).
The same seed gives the same numbers.

The default run takes a few minutes on a 2-core CPU; `--quick` (one symbol, one epoch, two
candidates) is a smoke run of well under a minute.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from metazoo import data, metrics, models
from metazoo.baselines import HistoricalMean, ZeroForecast, forecasts_at
from metazoo.experiment.environment import describe_machine
from metazoo.experiment.scoring import forecast_metrics
from metazoo.trainers import ModelAveraging, ModelSelection
from metazoo.trainers.trial import TargetScaling, predict_model

SYMBOLS = ("SP500", "NASDAQ", "MSFT")  # WTI lacks the OHLC fields of the default features
LOOKBACK, HORIZON = 20, 1
TRAIN_END, VALID_START, TEST_START = "2012-12-31", "2013-01-01", "2015-01-01"
TRAILING_DAYS = 21
BATCH_SIZE, LEARNING_RATE = 256, 1e-3
WEIGHTINGS = ("uniform", "inverse_error", "stacking", "learned")


@dataclass(frozen=True)
class Plan:
    """What one run trains: symbols, epochs, the selection grid and the ensemble members."""

    symbols: tuple
    epochs: int
    n_splits: int
    candidates: dict
    members: tuple  # (label, zoo name, seed offset, hyperparameters)


def make_plan(quick: bool, epochs: int | None) -> Plan:
    if quick:
        return Plan(
            symbols=("SP500",),
            epochs=epochs or 1,
            n_splits=2,
            candidates={"linear": {}, "mlp": {"units": [(32,)]}},
            members=(
                ("mlp s0", "mlp", 0, {"units": (32,)}),
                ("mlp s1", "mlp", 1, {"units": (32,)}),
                ("linear", "linear", 2, {}),
            ),
        )
    return Plan(
        symbols=SYMBOLS,
        epochs=epochs or 5,
        n_splits=3,
        candidates={
            "linear": {},
            "mlp": {"units": [(32,), (64, 32)]},
            "lstm": {"units": [(16,), (32,)]},
            "gru": {"units": [(16,)]},
        },
        members=(
            ("mlp(64,32) s0", "mlp", 0, {"units": (64, 32)}),
            ("mlp(64,32) s1", "mlp", 1, {"units": (64, 32)}),
            ("mlp(64,32) s2", "mlp", 2, {"units": (64, 32)}),
            ("lstm(16)", "lstm", 3, {"units": (16,)}),
            ("gru(16)", "gru", 4, {"units": (16,)}),
            ("linear", "linear", 5, {}),
        ),
    )


# -- data ------------------------------------------------------------------------------------
def split_windows(windows: data.WindowSet) -> tuple:
    """Train, validation and test windows by time, with labels purged at each boundary."""
    train = windows.select(end=TRAIN_END, label_end_before=VALID_START)
    valid = windows.select(start=VALID_START, label_end_before=TEST_START)
    test = windows.select(start=TEST_START)
    return train, valid, test


def baselines(prices: pd.DataFrame, test, target: str) -> dict:
    """The library's naive baselines (`metazoo.baselines`) at the test windows,
    `{name: (n, n_targets)}`: fitted on the price rows up to `TRAIN_END` only (whose last
    target, the next day's, is unknown there), forecasting from each symbol's own past."""
    naive = {"historical mean": HistoricalMean()}
    if target == "return":
        naive["zero"] = ZeroForecast()
    if target == "variance":
        naive[f"trailing {TRAILING_DAYS}d mean r^2"] = HistoricalMean(window=TRAILING_DAYS)
    fit_rows = prices[prices["date"] <= TRAIN_END]
    forecasts = {}
    for name, baseline in naive.items():
        table = baseline.fit(fit_rows, target=target, horizon=HORIZON).predict(prices)
        values = forecasts_at(table, test, list(baseline.target_names_))
        if not np.isfinite(values).all():
            raise ValueError(
                f"Baseline {name!r} expected a forecast for every test window. "
                f"Received: {int(np.isnan(values).any(axis=1).sum())} windows without one"
            )
        forecasts[name] = values
    return forecasts


# -- model selection -------------------------------------------------------------------------
def run_selection(plan: Plan, train, test, seed: int) -> tuple:
    """Walk-forward model selection on the training windows; the refit best on the test."""
    search = ModelSelection(
        plan.candidates,
        cv=data.WalkForward(n_splits=plan.n_splits, horizon=train.horizon),
        scoring="mse",
        epochs=plan.epochs,
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        seed=seed,
        verbose=0,
    ).fit(train)  # groups default to train.times, so a date's symbols share a fold
    columns = ["candidate", "params", "mean_score", "std_score", "rank", "mean_fit_time"]
    table = search.cv_results_[columns].sort_values(["rank", "candidate"])
    label = f"selection -> {_describe(search.best_candidate_, search.best_params_)}"
    return table, {label: search.predict(test)}


def _describe(name: str, params: dict) -> str:
    return name + "".join(f" {k}={v}" for k, v in sorted(params.items()))


# -- model averaging -------------------------------------------------------------------------
def build_members(plan: Plan, input_shape, output_dim: int, seed: int) -> list:
    return [
        models.build(name, input_shape, output_dim, seed=seed + offset, **hparams)
        for _, name, offset, hparams in plan.members
    ]


def fit_ensemble(plan: Plan, weighting: str, train, valid, scaling, seed: int):
    """A `ModelAveraging` of fresh members, trained on standardized training targets."""
    members = build_members(plan, train.X.shape[1:], train.y.shape[1], seed)
    cv = data.WalkForward(n_splits=plan.n_splits, horizon=train.horizon)
    ensemble = ModelAveraging(members, weighting=weighting, cv=cv)
    ensemble.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss="mse")
    # No restore_best_weights: "inverse_error" weighs members by their last-epoch validation
    # loss, which must describe the weights the members end with.
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2)
    ensemble.fit(
        train.X,
        scaling.transform(train.y),
        groups=train.times,  # stacking's walk-forward folds by date, not by row
        validation_data=(valid.X, scaling.transform(valid.y)),
        epochs=plan.epochs,
        batch_size=BATCH_SIZE,
        callbacks=[stop],
        verbose=0,
    )
    return ensemble


def run_averaging(plan: Plan, train, valid, test, seed: int, start: float) -> tuple:
    """Test forecasts of each weighting's ensemble and of each member alone; the weights."""
    scaling = TargetScaling.fit(train.y)
    forecasts, weights = {}, {}
    for weighting in WEIGHTINGS:
        ensemble = fit_ensemble(plan, weighting, train, valid, scaling, seed)
        forecasts[f"averaging {weighting}"] = predict_model(ensemble, scaling, test.X)
        vector = keras.ops.convert_to_numpy(ensemble.weights_vector())
        intercept = float(keras.ops.convert_to_numpy(ensemble.intercept)[0])
        weights[weighting] = [*vector, intercept * scaling.scale[0]]
        if weighting == "uniform":
            # Members train on their own loss only (joint=False), so each is the model it
            # would be if trained alone, with the same early stopping as the ensemble.
            for (label, *_), member in zip(plan.members, ensemble.members, strict=True):
                forecasts[f"member {label}"] = predict_model(member, scaling, test.X)
        print(f"  averaging {weighting}: done at {time.perf_counter() - start:.0f}s", flush=True)
    columns = [label for label, *_ in plan.members] + ["intercept"]
    return forecasts, pd.DataFrame.from_dict(weights, orient="index", columns=columns)


# -- scoring and output ----------------------------------------------------------------------
def results_table(forecasts: dict, test, target: str) -> pd.DataFrame:
    """One row per model: the experiment's forecast metrics (`scoring.forecast_metrics`),
    `r2_oos` against the historical mean as on its leaderboard, the hit rate for returns
    and QLIKE for variances (NaN for a model with a forecast <= 0)."""
    reference = metrics.mse(test.y, forecasts["historical mean"])
    rows = {}
    for name, pred in forecasts.items():
        row = forecast_metrics(test.y, pred)
        row["r2_oos"] = 1 - row["mse"] / reference
        if target == "return":
            row["hit_rate"] = metrics.hit_rate(test.y, pred)
        if target == "variance":  # QLIKE needs positive forecasts: NaN where one is not
            row["qlike"] = metrics.qlike(test.y, pred) if (pred > 0).all() else np.nan
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index").drop(columns="n").sort_values("mse")
    return table.rename_axis("model")


def print_table(title: str, table: pd.DataFrame, formats: dict) -> None:
    print(f"\n{title}")
    print(table.to_string(formatters={c: f.format for c, f in formats.items() if c in table}))


# -- entry point -----------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Model averaging and model selection on the bundled market data, "
        "beside naive baselines, on a leak-free train / validation / test split by time."
    )
    parser.add_argument(
        "--target",
        choices=("variance", "return"),
        default="variance",
        help="next-day squared log return (variance, default) or log return",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs of every fit (default 5; 1 with --quick)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: one symbol, one epoch, two candidates, three members",
    )
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be >= 1. Received: {args.epochs}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()  # same seed, same numbers
    plan = make_plan(args.quick, args.epochs)

    prices = data.load_markets(symbols=list(plan.symbols))
    windows = data.make_windows(prices, lookback=LOOKBACK, horizon=HORIZON, target=args.target)
    raw_train, raw_valid, raw_test = split_windows(windows)
    scaler = data.WindowScaler(per_symbol=True).fit(raw_train)
    train, valid, test = (scaler.transform(w) for w in (raw_train, raw_valid, raw_test))
    print(
        f"target {args.target}, symbols {', '.join(plan.symbols)}, lookback {LOOKBACK}, "
        f"horizon {HORIZON}, epochs {plan.epochs}, seed {args.seed}\n"
        f"windows: train {len(train)} (to {TRAIN_END}), validation {len(valid)} "
        f"({VALID_START} to {TEST_START}), test {len(test)} (from {TEST_START})"
    )

    forecasts = baselines(prices, raw_test, args.target)
    cv_table, selected = run_selection(plan, train, test, args.seed)
    print(f"  selection: done at {time.perf_counter() - start:.0f}s", flush=True)
    averaged, weights = run_averaging(plan, train, valid, test, args.seed, start)
    forecasts.update(selected)
    forecasts.update(averaged)

    cv_title = (
        f"Model selection: walk-forward CV ({plan.n_splits} folds) on the training windows, "
        "score = MSE on the original scale (lower is better)"
    )
    cv_formats = {"mean_score": "{:.4g}", "std_score": "{:.2g}", "mean_fit_time": "{:.1f}s"}
    print_table(cv_title, cv_table.set_index("candidate"), cv_formats)
    weight_formats = {c: "{:.3f}" for c in weights} | {"intercept": "{:.3g}"}
    print_table("Ensemble weights (intercept on the original scale)", weights, weight_formats)
    test_formats = {"mse": "{:.4g}", "mae": "{:.4g}", "qlike": "{:.4f}"}
    test_formats |= {c: "{:.3f}" for c in ("r2_oos", "hit_rate", "ic", "rank_ic")}
    print_table(
        f"Test period from {TEST_START} ({len(test)} forecasts), sorted by MSE"
        + ("; qlike NaN: a forecast <= 0" if args.target == "variance" else ""),
        results_table(forecasts, test, args.target),
        test_formats,
    )
    print(f"\nwall time {time.perf_counter() - start:.1f}s on {describe_machine()}")


if __name__ == "__main__":
    main()
