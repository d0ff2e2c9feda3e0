"""How fast metazoo runs on this machine, and how costs grow: one table.

Usage::

    python scripts/benchmark.py [--quick]

Rows of the table:

* meta-training throughput, in meta-steps per second, of MAML, first-order MAML, Reptile,
  Meta-SGD and ANIL on the sinusoid setup (the 1-40-40-1 MLP, 25 tasks x (10 + 10) points,
  tasks vectorized) and on the LSTM setup (LSTM(32) over 20-day windows of the bundled
  market data, 8 quarterly tasks x (20 + 20) windows, tasks vectorized, the LSTM unrolled), measured with
  `scripts/benchmark_meta.py`'s data, learners and timing (median of repeats of
  `train_on_batch`, then of one plain `fit`, after warm-up: "train_on_batch / fit");
* model-selection wall time for 2 and 4 walk-forward folds times 2 and 4 trials (an MLP
  with 8 to 64 units, 1 epoch, batch 256, in this process) on the bundled market windows
  before 2013 (SP500, NASDAQ, MSFT; 20 days x 10 features; 10,439 windows), with the
  time per fit, to show how the cost grows;
* `model.predict` throughput, in samples per second, of the mlp, lstm and tcn zoo models on
  20 x 10 windows with batch size 1024 (median of 3 passes after one warm-up pass);
* every row also shows the peak resident memory of the process so far
  (`resource.getrusage(...).ru_maxrss`), so the growth from row to row is what that step
  needed at its peak.

The full run takes 2-5 minutes on a 2-core CPU (121 s measured on a quiet machine, 250 s on a slow one); `--quick` (MAML and
Reptile, 10 timed steps, 2 folds x 2 trials, smaller predict sets) is a smoke run of about
half a minute.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from types import SimpleNamespace

import keras
import numpy as np
from benchmark_meta import (  # scripts/ is on the path when this file runs as a script
    LEARNERS,
    QUICK_LEARNERS,
    SINUSOID,
    market_windows,
    measure,
    setups,
)

from metazoo import data, models
from metazoo.experiment.environment import describe_machine
from metazoo.trainers import ModelSelection

SELECTION_UNITS = ((8,), (16,), (32,), (64,))
PREDICT_SHAPE, PREDICT_BATCH = (20, 10), 1024


def cpu_model() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux), else the platform's."""
    try:
        with open("/proc/cpuinfo") as info:
            names = [
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            ]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class Table:
    """Rows of `(benchmark, setting, result, unit)`, each with the peak memory so far."""

    def __init__(self):
        self.rows = []

    def add(self, benchmark: str, setting: str, result: str, unit: str) -> None:
        self.rows.append((benchmark, setting, result, unit, f"{peak_rss_mib():,.0f}"))
        print(f"  {benchmark} | {setting}: {result} {unit}", flush=True)

    def markdown(self) -> str:
        header = ("benchmark", "setting", "result", "unit", "peak RSS MiB")
        widths = [max(len(str(row[i])) for row in [header, *self.rows]) for i in range(5)]

        def line(cells):
            return (
                "| "
                + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True))
                + " |"
            )

        rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        return "\n".join([line(header), rule, *(line(row) for row in self.rows)])


# -- meta-training ---------------------------------------------------------------------------
def meta_training(table: Table, args) -> None:
    timing = SimpleNamespace(steps=args.steps, repeats=args.repeats, warmup=args.warmup)
    sines, markets, mlp, lstm = setups()

    plans = (
        ("sinusoid MLP", mlp, sines, "vectorized"),
        ("LSTM(32) market", lstm, markets, "auto"),
    )
    for setup, build, batches, parallel in plans:
        for name in args.methods:
            on_batch, fitted, _ = measure(name, build, batches, parallel, timing)
            table.add(
                "meta-training",
                f"{LEARNERS[name]}, {setup}",
                f"{on_batch:.1f} / {fitted:.1f}",
                "steps/s",
            )


# -- model selection -------------------------------------------------------------------------
def model_selection(table: Table, args) -> None:
    windows = market_windows()
    for folds in args.folds:
        for trials in args.trials:
            search = ModelSelection(
                {"mlp": {"units": list(SELECTION_UNITS[:trials])}},
                cv=data.WalkForward(n_splits=folds, horizon=1),
                epochs=1,
                batch_size=256,
                refit=False,
                verbose=0,
            )
            began = time.perf_counter()
            search.fit(windows)
            seconds = time.perf_counter() - began
            setting = f"{folds} folds x {trials} trials, {len(windows):,} windows"
            per_fit = seconds / (folds * trials)
            table.add("model selection", setting, f"{seconds:.1f} ({per_fit:.2f}/fit)", "s")


# -- predict ---------------------------------------------------------------------------------
def predict_throughput(table: Table, args) -> None:
    X = np.random.default_rng(0).normal(size=(args.predict_samples, *PREDICT_SHAPE))
    X = X.astype("float32")
    for name in ("mlp", "lstm", "tcn"):
        keras.backend.clear_session()
        model = models.build(name, PREDICT_SHAPE, 1, seed=0)
        model.predict(X, batch_size=PREDICT_BATCH, verbose=0)  # traces the predict function
        seconds = []
        for _ in range(3):
            began = time.perf_counter()
            model.predict(X, batch_size=PREDICT_BATCH, verbose=0)
            seconds.append(time.perf_counter() - began)
        rate = len(X) / float(np.median(seconds))
        setting = f"{name} (defaults), {PREDICT_SHAPE[0]}x{PREDICT_SHAPE[1]}, batch {PREDICT_BATCH}"
        table.add("predict", setting, f"{rate:,.0f}", "samples/s")


# -- entry point -----------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Meta-training throughput, model-selection cost, predict throughput and "
        "peak memory, as one table."
    )
    parser.add_argument("--quick", action="store_true", help="smoke run of about 30 seconds")
    args = parser.parse_args(argv)
    args.methods = list(QUICK_LEARNERS if args.quick else LEARNERS)
    args.steps, args.repeats, args.warmup = (10, 1, 3) if args.quick else (100, 3, 3)
    args.folds = (2,) if args.quick else (2, 4)
    args.trials = (2,) if args.quick else (2, 4)
    args.predict_samples = 4 * PREDICT_BATCH if args.quick else 32 * PREDICT_BATCH
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    began = time.perf_counter()
    table = Table()
    meta_training(table, args)
    model_selection(table, args)
    predict_throughput(table, args)
    print(
        f"\nmeta-training (train_on_batch / fit): median of {args.repeats} x {args.steps} "
        f"train_on_batch steps, then of one plain fit of {args.steps} steps, after "
        f"{args.warmup} warm-up steps, one inner step; sinusoid: 1-40-40-1 MLP, "
        f"{SINUSOID['meta_batch']} tasks x ({SINUSOID['support']} + {SINUSOID['query']}); "
        "LSTM: 8 tasks x (20 + 20) windows of 20 days x 10 features."
    )
    print(table.markdown())
    print(f"wall time {time.perf_counter() - began:.0f}s on {cpu_model()}; {describe_machine()}")


if __name__ == "__main__":
    main()
