"""Meta-training throughput of the gradient meta-learners, in meta-steps per second.

Usage::

    python scripts/benchmark_meta.py [--steps N] [--repeats R] [--warmup W]
                                     [--methods M [M ...]] [--threads T] [--quick]

Two setups, every learner with one inner SGD step at lr 0.01 and Adam outer updates:

* sinusoid (Finn et al. 2017, section 5.1): the 1-40-40-1 ReLU MLP, meta-batches of 25
  tasks with 10 support and 10 query points, once with `task_parallel="vectorized"`
  (`tf.vectorized_map` over the tasks) and once with `task_parallel="loop"` (tasks unrolled
  one by one), and the ratio of the two;
* LSTM: a 32-unit LSTM over 20-day windows of the default features of the bundled SP500,
  NASDAQ and MSFT data (scaled with statistics of the windows before 2013), meta-batches
  of 8 quarterly tasks of the training period with 20 support and 20 query windows. The
  learners unroll the zoo LSTM's 20 steps inside their steps, so `"auto"` vectorizes the
  tasks as for the MLP.

Method: the meta-batches are drawn and converted to tensors before timing; each learner
first runs `--warmup` meta-steps with `train_on_batch` (the first traces and compiles the
step) and one untimed `fit` of `--steps` steps (tracing its multi-step call); then
`--repeats` times it runs `--steps` `train_on_batch` calls, cycling over the batches, and
one plain `fit(dataset, steps_per_epoch=--steps)` on a repeated dataset of the same
batches. `train_on_batch` returns the logs as numbers, so every step is finished before
the next starts; `fit` runs up to 50 meta-steps per compiled call (compile's default), which
is what a user calling `fit` gets. The table gives the median rates over the repeats.
Keras picks `jit_compile="auto"`, which resolves to no XLA for these learners. The last line
times the `SinusoidTasks().dataset` stream alone, consumed inside TensorFlow. PyTorch peers
on the same tasks are timed by `scripts/benchmark_peers.py`.

The default takes several minutes on a 2-core CPU, most of it spent on the LSTM learners
(tracing and timing) and on tracing the loop-mode steps; `--quick` (MAML and Reptile, 10
timed steps) is a smoke run of a few minutes. `--threads 1` sets one TensorFlow thread.
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
    """`(median train_on_batch meta-steps/s, median fit meta-steps/s, warm-up seconds)`.

    `fit` runs on a repeated dataset of the same batches with Keras' default arguments and
    `steps_per_epoch=steps` (so the learner's default steps per compiled call apply)."""
    stacked = tuple(tf.concat([b[i][None] for b in batches], 0) for i in range(4))
    dataset = tf.data.Dataset.from_tensor_slices(stacked).repeat()
    began = time.perf_counter()
    for index in range(warmup):
        learner.train_on_batch(batches[index % len(batches)])
    learner.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)  # traces fit's step
    warm = time.perf_counter() - began
    on_batch, fitted = [], []
    for _ in range(repeats):
        began = time.perf_counter()
        for index in range(steps):
            learner.train_on_batch(batches[index % len(batches)])
        on_batch.append(steps / (time.perf_counter() - began))
        began = time.perf_counter()
        learner.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        fitted.append(steps / (time.perf_counter() - began))
    return float(np.median(on_batch)), float(np.median(fitted)), warm


def stream_rate(n_batches: int = 2000) -> float:
    """Meta-batches/s of `SinusoidTasks().dataset` alone, consumed inside TensorFlow (as
    `fit` consumes it)."""
    stream = data.SinusoidTasks().dataset(
        SINUSOID["meta_batch"], SINUSOID["support"], SINUSOID["query"], seed=0
    )
    stream.take(10).reduce(0, lambda count, _: count + 1)
    began = time.perf_counter()
    stream.take(n_batches).reduce(0, lambda count, _: count + 1)
    return n_batches / (time.perf_counter() - began)


def measure(name: str, build, batches: list, task_parallel: str, args) -> tuple:
    keras.backend.clear_session()
    learner = make_learner(name, build(), task_parallel)
    on_batch, fitted, warm = throughput(learner, batches, args.steps, args.repeats, args.warmup)
    print(
        f"  {name} {task_parallel}: train_on_batch {on_batch:.1f}, fit {fitted:.1f} steps/s "
        f"(warm-up {warm:.1f}s)",
        flush=True,
    )
    return on_batch, fitted, warm


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
        "--threads",
        type=int,
        default=0,
        help="TensorFlow intra- and inter-op threads (default 0: TensorFlow's choice)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: MAML and Reptile, 10 steps, one repeat"
    )
    args = parser.parse_args(argv)
    args.methods = args.methods or list(QUICK_LEARNERS if args.quick else LEARNERS)
    args.steps = args.steps or (10 if args.quick else 200)
    args.repeats = args.repeats or (1 if args.quick else 3)
    if args.threads < 0:
        parser.error(f"--threads expected an integer >= 0. Received: {args.threads}")
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
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    start = time.perf_counter()
    sines, markets, mlp, lstm = setups()

    rows = {}
    for name in args.methods:
        vectorized, vectorized_fit, warm_v = measure(name, mlp, sines, "vectorized", args)
        loop, loop_fit, warm_l = measure(name, mlp, sines, "loop", args)
        recurrent, recurrent_fit, warm_r = measure(name, lstm, markets, "auto", args)
        rows[LEARNERS[name]] = {
            "sinusoid vectorized": f"{vectorized:.1f}",
            "fit": f"{vectorized_fit:.1f}",
            "sinusoid loop": f"{loop:.1f}",
            "loop fit": f"{loop_fit:.1f}",
            "vectorized / loop": f"{vectorized / loop:.2f}",
            "LSTM (auto: unrolled, vectorized)": f"{recurrent:.1f}",
            "LSTM fit": f"{recurrent_fit:.1f}",
            "warm-up s (vec/loop/LSTM)": f"{warm_v:.1f} / {warm_l:.1f} / {warm_r:.1f}",
        }
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("meta-steps/s")
    print(
        f"\nMeta-training throughput: median of {args.repeats} x {args.steps} meta-steps by "
        f"train_on_batch (columns without 'fit') and by one plain fit call (steps_per_epoch="
        f"{args.steps}, compile's default steps per call) after {args.warmup} warm-up steps, on "
        f"pre-materialized meta-batches; {args.threads or 'default'} TensorFlow thread(s).\n"
        f"sinusoid: 1-40-40-1 MLP, {SINUSOID['meta_batch']} tasks x ({SINUSOID['support']} "
        f"support + {SINUSOID['query']} query); LSTM(32): window {tuple(markets[0][0].shape[2:])}, "
        f"{MARKET_EPISODES['meta_batch_size']} tasks x ({MARKET_EPISODES['support_size']} + "
        f"{MARKET_EPISODES['query_size']}); one inner step at lr {INNER_LR}, Adam outer."
    )
    print(table.to_string())
    print(f"\nSinusoidTasks().dataset alone: {stream_rate():,.0f} meta-batches/s.")
    print(f"wall time {time.perf_counter() - start:.1f}s on {describe_machine()}")


if __name__ == "__main__":
    main()
