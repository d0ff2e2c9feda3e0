"""Does meta-learning adapt better than training from scratch or pooling? AR(p) tasks with
known Bayes error.

Usage::

    python scripts/ar_adaptation.py [--shots 10] [--test-tasks 200] [--seed 0]

Each task is a stationary AR(2) process scaled to unit variance (partial autocorrelations
up to 0.9), so its Bayes-optimal one-step MSE is known. From K observations of a new task
it compares MAML's adapted model, the same network trained from scratch on those K points,
and one network pooled over every training task without adaptation.
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np

from metazoo import models
from metazoo.data import ARTasks, pool_samples
from metazoo.trainers import MAML, Pooled, Scratch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=10, help="support observations K")
    parser.add_argument("--test-tasks", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    keras.utils.set_random_seed(args.seed)
    start = time.time()
    family = ARTasks(order=2, max_pacf=0.9, unit_variance=True)

    def build(seed):
        return models.build("linear", (2, 1), 1, seed=seed)

    maml = MAML(build(args.seed), inner_lr=0.1, inner_steps=1)
    maml.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    maml.fit(family.dataset(16, args.shots, 20, n_batches=50, seed=args.seed), epochs=10, verbose=0)
    pooled = Pooled(build(0))
    pooled.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    train = pool_samples([family.sample(800, args.shots, 20, seed=args.seed)])
    pooled.fit(*train, epochs=3, batch_size=256, verbose=0)
    scratch = Scratch(build(0), fit_steps=200, learning_rate=1e-2, seed=0)
    test, params = family.sample(
        args.test_tasks, args.shots, 50, seed=args.seed + 123, return_params=True
    )
    truth = test.query_y

    def score(pred):
        errors = ((pred - truth) ** 2).mean(axis=(1, 2))
        return errors.mean(), 1.96 * errors.std(ddof=1) / np.sqrt(len(errors))

    rows = {
        f"MAML, adapted on K={args.shots}": score(maml.predict_tasks(test)),
        f"from scratch on K={args.shots}": score(scratch.predict_tasks(test)),
        "pooled, no adaptation": score(pooled.predict_tasks(test)),
        "Bayes-optimal (true coefficients)": score(
            ARTasks.bayes_predict(test.query_x, params["coefficients"])
        ),
    }
    print(f"AR(2) tasks, unit variance, K={args.shots}, {args.test_tasks} test tasks x 50 query")
    for name, (mean, ci) in rows.items():
        print(f"{name:36s} MSE {mean:.3f} +- {ci:.3f}")
    print(f"wall time {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()
