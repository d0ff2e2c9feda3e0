"""`fit` with chunked reads against Keras' own multi-step loop, in meta-steps per second.

Usage::

    python scripts/benchmark_chunks.py [--steps N] [--repeats R] [--threads T] [--quick]

`fit` and `evaluate` read the meta-batches of one compiled call as one chunk of a
`tf.data.Dataset` and loop over it inside the graph (`metazoo.trainers.chunks`); Keras' loop
reads one meta-batch per step. This script fits two MAML learners built alike (one inner
SGD step at lr 0.01, Adam outer updates, compile's default steps per call), one with
chunks and one with them turned off, on a repeated dataset of the same meta-batches, in
interleaved rounds of `--steps` meta-steps, and prints the median rates and the median of
the per-round ratios. Both learners see the same meta-batches in the same order, so their
weights must end equal; the script checks it. Setups: the sinusoid MLP (25 tasks x
(10 + 10) points) and the LSTM(32) on market windows of `benchmark_meta.py`.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from unittest import mock

import keras
import numpy as np
import tensorflow as tf
from benchmark_meta import DISTINCT_BATCHES, make_learner, market_batches, sinusoid_batches

from metazoo import models
from metazoo.experiment.environment import describe_machine
from metazoo.trainers import episodic


def keras_loop():
    """Within the block, `fit` runs Keras' own loop (no chunked reads)."""
    return mock.patch.object(episodic, "chunked", lambda data, steps: data)


def compare(batches: list, window: tuple, base: str, units: tuple, steps: int, repeats: int):
    """`(rates with chunks, rates with Keras' loop, per-round ratios, weights equal)`."""
    stacked = tuple(tf.concat([b[i][None] for b in batches], 0) for i in range(4))
    dataset = tf.data.Dataset.from_tensor_slices(stacked).repeat()
    learners = {}
    for name in ("chunks", "keras"):
        network = models.build(base, window, 1, seed=0, units=units)
        learners[name] = make_learner("maml", network, "auto")
    contexts = {"chunks": contextlib.nullcontext, "keras": keras_loop}
    rates = {name: [] for name in learners}
    for round_ in range(repeats + 1):  # the first round traces and is not timed
        for name, learner in learners.items():
            with contexts[name]():
                began = time.perf_counter()
                learner.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
                if round_:
                    rates[name].append(steps / (time.perf_counter() - began))
    ratios = np.array(rates["chunks"]) / np.array(rates["keras"])
    same = all(
        np.array_equal(a, b)
        for a, b in zip(
            learners["chunks"].get_weights(), learners["keras"].get_weights(), strict=True
        )
    )
    return rates["chunks"], rates["keras"], ratios, same


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="meta-steps per round")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds")
    parser.add_argument("--threads", type=int, default=None, help="TensorFlow threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 20 steps")
    args = parser.parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    steps, repeats = (20, 2) if args.quick else (args.steps, args.repeats)
    keras.utils.set_random_seed(args.seed)
    market, window = market_batches(DISTINCT_BATCHES, args.seed)
    setups = {
        "sinusoid MLP (1-40-40-1)": (sinusoid_batches(DISTINCT_BATCHES, args.seed), (1, 1),
                                     "mlp", (40, 40)),
        "LSTM(32), market windows": (market, window, "lstm", (32,)),
    }  # fmt: skip
    began = time.perf_counter()
    print("| setup | fit, chunks | fit, Keras' loop | chunks / Keras' loop | same weights |")
    print("|---|---|---|---|---|")
    for name, setup in setups.items():
        chunks, plain, ratios, same = compare(*setup, steps, repeats)
        print(
            f"| {name} | {np.median(chunks):,.1f} ({min(chunks):,.0f}-{max(chunks):,.0f}) "
            f"| {np.median(plain):,.1f} ({min(plain):,.0f}-{max(plain):,.0f}) "
            f"| {np.median(ratios):.2f}x ({ratios.min():.2f}-{ratios.max():.2f}) | {same} |"
        )
    print(
        f"\nMAML meta-steps/s (median, min-max) of {repeats} interleaved rounds x {steps} "
        f"steps after one untimed round; threads {args.threads or 'default'}; seed "
        f"{args.seed}.\n{describe_machine()}; wall time {time.perf_counter() - began:.0f}s"
    )


if __name__ == "__main__":
    main()
