"""Meta-training throughput of the gradient meta-learners, in meta-steps per second.

Usage::

    python scripts/benchmark_meta.py [--steps N] [--repeats R] [--warmup W]
                                     [--methods M [M ...]] [--quick]

Two setups, every learner with one inner SGD step at lr 0.01 and Adam outer updates:

* sinusoid (Finn et al. 2017, section 5.1): the 1-40-40-1 ReLU MLP, meta-batches of 25
  tasks with 10 support and 10 query points, once with `task_parallel="vectorized"`
  (`tf.vectorized_map` over the tasks) and once with `task_parallel="loop"` (tasks unrolled
  one by one), and the ratio of the two;
* LSTM: a 32-unit LSTM over 20-day windows of the default features of the bundled SP500,
  NASDAQ and MSFT data (scaled with statistics of the windows before 2013), meta-batches
  of 8 quarterly tasks of the training period with 20 support and 20 query windows. The
  task axis is unrolled (`"auto"` picks `"loop"` for recurrent bases).

Method: the meta-batches are drawn and converted to tensors before timing; each learner
first runs `--warmup` meta-steps with `train_on_batch` (the first traces and compiles the
step), then `--repeats` times runs `--steps` further `train_on_batch` calls, cycling over the
batches; the table gives the median rate over the repeats (`train_on_batch` returns the
logs as numbers, so every step is finished before the next starts). Keras picks
`jit_compile="auto"`, which resolves to no XLA for these learners.

The default takes about 3 minutes on a 2-core CPU (175 s measured), most of it spent on the
LSTM learners (tracing and timing) and on tracing the loop-mode steps; `--quick` (MAML and Reptile, 10
timed steps) is a smoke run of under two minutes.
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from metazoo import data, models
from metazoo.experiment.environment import describe_machine
from metazoo.trainers import GradientMetaLearner, registry

# The gradient meta-learners of the registry (they have an inner loop to time), by name.
LEARNERS = {
    name: registry.get(name).summary
    for name in registry.available(few_shot=True)
    if issubclass(registry.get(name).cls, GradientMetaLearner)
    and registry.get(name).trains_on == "episodes"
}
QUICK_LEARNERS = ("maml", "reptile")
INNER_LR, OUTER_LR, DISTINCT_BATCHES = 0.01, 1e-3, 20
SINUSOID = {"meta_batch": 25, "support": 10, "query": 10}
MARKET = {"symbols": ["SP500", "NASDAQ", "MSFT"], "lookback": 20, "test_start": "2013-01-01"}
MARKET_EPISODES = {"meta_batch_size": 8, "support_size": 20, "query_size": 20}
REFERENCE = (
    "Reference (not measured here): an idiomatic PyTorch torch.func + vmap MAML does about "
    "137 meta-steps/s on the sinusoid setup on this class of 2-core machine."
)


# -- data ------------------------------------------------------------------------------------
def to_tensors(batch) -> tuple:
    return tuple(tf.constant(np.asarray(part, dtype=np.float32)) for part in batch)


def sinusoid_batches(n_batches: int, seed: int) -> list:
    """Meta-batches of sine tasks, x as zoo windows `(tasks, points, 1, 1)`."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(n_batches):
        batch = data.SinusoidTasks().sample(
            SINUSOID["meta_batch"], SINUSOID["support"], SINUSOID["query"], rng=rng
        )
        sx, sy, qx, qy = batch
        batches.append(to_tensors((sx[..., None], sy, qx[..., None], qy)))
    return batches


def market_windows() -> data.WindowSet:
    """Scaled windows of the bundled market data before 2013 (the meta-training period)."""
    prices = data.load_markets(symbols=MARKET["symbols"])
    windows = data.make_windows(prices, lookback=MARKET["lookback"], horizon=1)
    train = windows.select(label_end_before=MARKET["test_start"])
    return data.WindowScaler(per_symbol=True).fit(train).transform(train)


def market_batches(n_batches: int, seed: int) -> tuple:
    """Meta-batches of quarterly market tasks before 2013, and the window shape."""
    scaled = market_windows()
    tasks = data.TaskSet.from_windows(scaled, period="Q")
    stream = tasks.meta_batches(**MARKET_EPISODES, n_batches=n_batches, seed=seed)
    return [to_tensors(batch) for batch in stream], scaled.X.shape[1:]


# -- timing ----------------------------------------------------------------------------------
def make_learner(name: str, network: keras.Model, task_parallel: str):
    spec = registry.get(name)
    learner = spec.create(network, inner_lr=INNER_LR, inner_steps=1, task_parallel=task_parallel)
    learner.compile(optimizer=keras.optimizers.Adam(OUTER_LR), loss="mse")
    return learner


def throughput(learner, batches: list, steps: int, repeats: int, warmup: int) -> tuple:
    """`(median meta-steps/s over the repeats, warm-up seconds)`."""
    began = time.perf_counter()
    for index in range(warmup):
        learner.train_on_batch(batches[index % len(batches)])
    warm = time.perf_counter() - began
    rates = []
    for _ in range(repeats):
        began = time.perf_counter()
        for index in range(steps):
            learner.train_on_batch(batches[index % len(batches)])
        rates.append(steps / (time.perf_counter() - began))
    return float(np.median(rates)), warm


def measure(name: str, build, batches: list, task_parallel: str, args) -> tuple:
    keras.backend.clear_session()
    learner = make_learner(name, build(), task_parallel)
    rate, warm = throughput(learner, batches, args.steps, args.repeats, args.warmup)
    print(f"  {name} {task_parallel}: {rate:.1f} steps/s (warm-up {warm:.1f}s)", flush=True)
    return rate, warm


# -- entry point -----------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Meta-steps per second of MAML, first-order MAML, Reptile, Meta-SGD and "
        "ANIL on the sinusoid setup (vectorized and loop) and on an LSTM over market data."
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="timed meta-steps per repeat (default 200)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 3)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps (default 3)")
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=list(LEARNERS),
        default=None,
        help="learners to time (default all; maml and reptile with --quick)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: MAML and Reptile, 10 steps, one repeat"
    )
    args = parser.parse_args(argv)
    args.methods = args.methods or list(QUICK_LEARNERS if args.quick else LEARNERS)
    args.steps = args.steps or (10 if args.quick else 200)
    args.repeats = args.repeats or (1 if args.quick else 3)
    if min(args.steps, args.repeats, args.warmup) < 1:
        parser.error(
            "--steps, --repeats and --warmup must be >= 1. "
            f"Received: {args.steps}, {args.repeats}, {args.warmup}"
        )
    return args


def setups():
    """`(sinusoid batches, market batches, mlp builder, lstm builder)` of both setups,
    seeded with 0."""
    keras.utils.set_random_seed(0)
    sines = sinusoid_batches(DISTINCT_BATCHES, seed=0)
    markets, shape = market_batches(DISTINCT_BATCHES, seed=0)

    def mlp():
        return models.build("mlp", (1, 1), 1, units=(40, 40), seed=0)

    def lstm():
        return models.build("lstm", shape, 1, units=(32,), seed=0)

    return sines, markets, mlp, lstm


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    sines, markets, mlp, lstm = setups()

    rows = {}
    for name in args.methods:
        vectorized, warm_v = measure(name, mlp, sines, "vectorized", args)
        loop, warm_l = measure(name, mlp, sines, "loop", args)
        recurrent, warm_r = measure(name, lstm, markets, "auto", args)
        rows[LEARNERS[name]] = {
            "sinusoid vectorized": f"{vectorized:.1f}",
            "sinusoid loop": f"{loop:.1f}",
            "vectorized / loop": f"{vectorized / loop:.2f}",
            "LSTM (loop)": f"{recurrent:.1f}",
            "warm-up s (vec/loop/LSTM)": f"{warm_v:.1f} / {warm_l:.1f} / {warm_r:.1f}",
        }
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("meta-steps/s")
    print(
        f"\nMeta-training throughput: median of {args.repeats} x {args.steps} train_on_batch "
        f"steps after {args.warmup} warm-up steps, on pre-materialized meta-batches.\n"
        f"sinusoid: 1-40-40-1 MLP, {SINUSOID['meta_batch']} tasks x ({SINUSOID['support']} "
        f"support + {SINUSOID['query']} query); LSTM(32): window {tuple(markets[0][0].shape[2:])}, "
        f"{MARKET_EPISODES['meta_batch_size']} tasks x ({MARKET_EPISODES['support_size']} + "
        f"{MARKET_EPISODES['query_size']}); one inner step at lr {INNER_LR}, Adam outer."
    )
    print(table.to_string())
    print(f"\n{REFERENCE}")
    print(f"wall time {time.perf_counter() - start:.1f}s on {describe_machine()}")


if __name__ == "__main__":
    main()
