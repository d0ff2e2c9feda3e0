"""Meta-train the shipped 1-day variance forecaster on the bundled universe.

    python scripts/build_forecaster.py --seed 0
        writes metazoo/forecasters/variance_1d (trained on every asset and every date)
    python scripts/build_forecaster.py --seed 0 --evaluate-from 2015-01-01
        trains on the labels that end before 2015 only, writes nothing, and prints held-out
        QLIKE on every asset's quarters from 2015 on (each quarter adapts on its first 20
        days and is scored on the rest) against the same network without adaptation, the
        log-HAR regression it starts from, and the HAR-RV baseline (OLS on variances)

The recipe: a log-HAR network (`models.build("har", (1, 3), 1)` on `HAR_FEATURES`, lookback
1) forecasting the log of the next day's squared return (`rv:squared_return`), trained with
`QLIKE(log_pred=True)`, so that `exp` of its output is the variance forecast; features
standardized with the training statistics; the head started at a log-HAR fit (OLS of the
log squared return on the standardized features, plus the log smearing factor so that it
forecasts the mean); a short pooled QLIKE fit; then Meta-SGD (inner learning rate 0.005,
as `metazoo run`'s variance section chose on validation periods, one inner step) on meta-batches of 16 tasks of one quarter (support 20 days).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd

import metazoo
from metazoo import data as mdata
from metazoo import models
from metazoo.experiment.learners import log_har_fit
from metazoo.forecasting import SHIPPED, Forecaster
from metazoo.trainers import MAML, MetaSGD

TARGET = "rv:squared_return"
K, QUERY, TASKS = 20, 40, 16
INNER_LR = 0.005  # the experiment's variance_inner_lr, chosen on validation periods


ALGORITHMS = {"meta_sgd": MetaSGD, "maml": MAML}


def train(windows, seed: int, meta_steps: int, pooled_epochs: int, algorithm="meta_sgd"):
    """The scaler, the log-HAR network it starts from, and the meta-trained learner."""
    keras.utils.set_random_seed(seed)
    scaler = mdata.WindowScaler().fit(windows)
    scaled = scaler.transform(windows)
    intercept, coef = log_har_fit(scaled)
    start = models.build("har", (1, len(models.HAR_FEATURES)), 1, seed=seed)
    models.set_har_coefficients(start, intercept, coef)
    network = keras.models.clone_model(start)
    network.set_weights(start.get_weights())
    loss = models.QLIKE(log_pred=True)
    network.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
    network.fit(scaled.X, scaled.y, epochs=pooled_epochs, batch_size=256, verbose=0)
    pooled = keras.models.clone_model(network)
    pooled.set_weights(network.get_weights())
    learner = ALGORITHMS[algorithm](network, inner_lr=INNER_LR, inner_steps=1)
    learner.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    tasks = mdata.TaskSet.from_windows(scaled, period="Q")
    batches = tasks.meta_batches(TASKS, K, QUERY, n_batches=meta_steps, seed=seed)
    learner.fit(batches, epochs=1, verbose=0)
    return scaler, start, pooled, learner


def evaluate(prices, windows, start_date: str, seed: int, meta_steps: int, epochs: int, algorithm):
    """Held-out QLIKE from `start_date` on (see the module docstring)."""
    from metazoo.baselines import HARRV, forecasts_at
    from metazoo.experiment.learners import chunked
    from metazoo.metrics import qlike

    cut = pd.Timestamp(start_date)
    scaler, start, pooled, learner = train(
        windows.select(label_end_before=cut), seed, meta_steps, epochs, algorithm
    )
    tasks = mdata.TaskSet.from_windows(scaler.transform(windows), period="Q").select(start=cut)
    episodes = mdata.EvaluationEpisodes.from_tasks("later periods", tasks, K)
    query = episodes.query_windows()
    truth = query.y[:, 0].astype(np.float64)
    flat = query.X.reshape(len(query), -1, query.X.shape[-1])
    forecasts = {
        f"{algorithm}:har (adapted on 20 days)": np.exp(
            episodes.unpad(chunked(learner.predict_tasks, episodes.batch))[:, 0]
        ),
        "pooled har, QLIKE (no adaptation)": np.exp(pooled.predict(flat, verbose=0)[:, 0]),
        "log-HAR OLS + smearing (its start)": np.exp(start.predict(flat, verbose=0)[:, 0]),
    }
    har = HARRV()
    har.fit(prices[prices["date"] < cut], "variance", 1, cumulative=True)
    levels = forecasts_at(har.predict(prices), query, list(har.target_names_))
    forecasts["HAR-RV (OLS on variances)"] = levels[:, 0]
    print(f"held out: {len(truth)} forecasts, {episodes.batch.support_x.shape[0]} quarters")
    symbols = query.symbols.astype(str)
    table = {}
    for name, h in forecasts.items():
        h = np.maximum(np.asarray(h, dtype=np.float64), 1e-12)
        row = {"all": qlike(truth, h)}
        row.update({s: qlike(truth[symbols == s], h[symbols == s]) for s in np.unique(symbols)})
        table[name] = row
    scores = pd.DataFrame(table).T
    seen = set(windows.select(end=cut - pd.Timedelta(days=1)).symbols)
    scores.columns = [c if c == "all" or c in seen else f"{c}*" for c in scores.columns]
    print("QLIKE (lower is better; * an asset with no training data before the cut):")
    print(scores.to_string(float_format=lambda v: f"{v:.4f}"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--meta-steps", type=int, default=300)
    parser.add_argument("--pooled-epochs", type=int, default=5)
    parser.add_argument("--algorithm", choices=sorted(ALGORITHMS), default="meta_sgd")
    parser.add_argument("--output", default=str(SHIPPED))
    parser.add_argument("--evaluate-from", help="train before this date and score after it")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    prices = mdata.load_markets()
    windows = mdata.make_windows(prices, 1, 1, models.HAR_FEATURES, TARGET, cumulative=True)
    if args.evaluate_from:
        evaluate(
            prices,
            windows,
            args.evaluate_from,
            args.seed,
            args.meta_steps,
            args.pooled_epochs,
            args.algorithm,
        )
        print(f"{time.perf_counter() - began:.0f}s")
        return 0
    scaler, _, _, learner = train(
        windows, args.seed, args.meta_steps, args.pooled_epochs, args.algorithm
    )
    symbols = sorted(prices["symbol"].unique())
    info = {
        "trained_by": "scripts/build_forecaster.py",
        "seed": args.seed,
        "trained_on": f"{len(symbols)} bundled assets (metazoo.data.load_markets()), "
        f"{prices['date'].min():%Y-%m-%d} to {prices['date'].max():%Y-%m-%d}",
        "symbols": symbols,
        "recipe": f"{args.algorithm} on har, inner_lr={INNER_LR}, 1 inner step, {args.meta_steps} "
        f"meta-steps of {TASKS} quarter tasks (support {K}, query {QUERY}), "
        f"QLIKE(log_pred=True), head started at a log-HAR fit, {args.pooled_epochs} pooled "
        "epochs",
        "metazoo": metazoo.__version__,
    }
    forecaster = Forecaster.from_scaler(
        learner, scaler, windows, K, target=TARGET, cumulative=True, output="exp", info=info
    )
    folder = forecaster.save(args.output)
    size = sum(p.stat().st_size for p in Path(folder).iterdir())
    print(f"wrote {folder} ({size / 1024:.1f} KiB) in {time.perf_counter() - began:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
