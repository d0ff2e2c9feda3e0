"""Resident memory of repeated in-process `ModelSelection` fits (`n_jobs=1`).

Fits the same small search again and again on tiny synthetic windows and prints the
process's resident set size (RSS) after each, then the growth per model fit over the last
half of the rounds (the first rounds include one-off allocations: imports, kernels, caches).

    python scripts/selection_memory.py --rounds 12
    python scripts/selection_memory.py --rounds 12 --lazy-slots   # as before the fix
"""

from __future__ import annotations

import argparse
import gc
import time

import keras
import numpy as np


def rss_mib() -> float:
    """This process's resident set size in MiB (from /proc, Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("rss_mib expected a Linux /proc/self/status. Received: no VmRSS line")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12, help="ModelSelection fits")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=240)
    parser.add_argument(
        "--lazy-slots",
        action="store_true",
        help="let Adam make its slots inside the first traced step (as before the fix)",
    )
    args = parser.parse_args(argv)

    from tensorflow.python.eager import context

    from metazoo.trainers import trial
    from metazoo.trainers.selection import ModelSelection

    if args.lazy_slots:

        def compile_only(model, settings):
            model.compile(keras.optimizers.Adam(settings.learning_rate), loss=settings.loss)

        trial.compile_model = compile_only
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.samples, 5, 2)).astype("float32")
    y = X[:, -1, :1] * 0.5 + rng.normal(scale=0.1, size=(args.samples, 1))
    search = ModelSelection(
        {"mlp": {"units": [(4,), (8,)]}},
        cv=args.folds,
        epochs=1,
        batch_size=32,
        refit=False,
        verbose=0,
    )
    keras.utils.set_random_seed(0)
    fits_per_round = 2 * args.folds
    sizes, start = [], time.perf_counter()
    for index in range(args.rounds):
        search.fit(X, y)
        gc.collect()
        sizes.append(rss_mib())
        functions = len(context.context().list_function_names())
        print(
            f"round {index + 1:3d}: {fits_per_round * (index + 1):4d} fits, "
            f"RSS {sizes[-1]:7.1f} MiB, {functions} functions in TensorFlow's library"
        )
    half = len(sizes) // 2
    growth = (sizes[-1] - sizes[half - 1]) / (fits_per_round * (len(sizes) - half))
    print(
        f"growth over the last {len(sizes) - half} rounds: {growth:.3f} MiB per model fit "
        f"({time.perf_counter() - start:.0f} s)"
    )
    return {"rss_mib": sizes, "growth_per_fit_mib": growth}


if __name__ == "__main__":
    main()
