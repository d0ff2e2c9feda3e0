"""Few-shot sinusoid regression of Finn et al. (2017), section 5.1, with the metazoo trainers.

Usage::

    python scripts/maml_sinusoid.py [--iterations N] [--shots K [K ...]]
                                    [--methods M [M ...]] [--seed S] [--quick]

Each task is `y = A sin(x - phase)` with A uniform in [0.1, 5], phase in [0, pi] and x in
[-5, 5] (`SinusoidTasks`). The network is the paper's 1-40-40-1 ReLU MLP (the zoo "mlp"
with `input_shape=(1, 1)`, so x is reshaped to windows `(tasks, points, 1, 1)`). For each K
(support points per task) every method meta-trains from the same initialization on the same
meta-batches of 25 tasks, each with K support and 10 query points:

* `maml`: second-order MAML, one inner SGD step at lr 0.01, Adam outer lr 1e-3 (the paper's).
* `fomaml`: the same with the first-order approximation.
* `meta-sgd`: MAML with learned per-parameter inner rates, initialized to 0.01 (Li et al.,
  2017), Adam outer lr 1e-3.
* `reptile`: Nichol et al. (2018) take several inner steps and move the initialization
  towards the adapted weights. Chosen here: 5 full-batch inner SGD steps at lr 0.01 on each
  task's K + 10 points (`Reptile` adapts on support and query together), and Adam at lr
  1e-3 on the outer "gradient" `theta - mean(phi)`. Tried and dropped, both with inner lr
  0.02 (their sinusoid demo's): their plain SGD outer update (rate 1.0 decaying linearly
  to 0), after which 5-10 test steps on K = 10 points diverged on some tasks; and Adam,
  after which 5-10 test steps on K = 5 points diverged on some tasks. With lr 0.01 every
  method but Meta-SGD adapts at test with the same plain SGD steps.
* `pretrained`: the paper's baseline, one network fitted (Adam, mean squared error) to every
  point of 20,000 training tasks pooled as one data set, then fine-tuned on each test task.

Evaluation: 600 test tasks drawn with a fixed seed (whatever `--seed`), each with K support
points and 100 query points, x uniform in [-5, 5]. Every learner adapts to each task's K
points with 1, 5 and 10 gradient steps (`learner.predict_tasks`) and is scored by the task's mean
squared error on its query points; tables give the mean over tasks +- 1.96 standard errors.

The paper meta-trains for 70,000 iterations; the default here (30,000 per method and K)
runs the whole script in about 9 minutes on a 2-core CPU (555 s measured; MAML trains 30,000
meta-steps in 20-40 s with 50 steps per compiled call, Reptile's 5 inner steps take 40-100 s).
`--quick` (300 iterations, K = 10) is a smoke run of under a minute. The same seed gives the same numbers.

References:
    Finn, Abbeel and Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep
    Networks", ICML 2017.
    Nichol, Achiam and Schulman, "On First-Order Meta-Learning Algorithms", arXiv:1803.02999.
    Li, Zhou, Chen and Li, "Meta-SGD: Learning to Learn Quickly for Few-Shot Learning",
    arXiv:1707.09835.
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from metazoo import models
from metazoo.data import MetaBatch, SinusoidTasks, pool_samples
from metazoo.experiment.environment import describe_machine
from metazoo.trainers import FineTuned, Pooled, registry

META_BATCH, QUERY = 25, 10
INNER_LR, OUTER_LR = 0.01, 1e-3
REPTILE_INNER_STEPS = 5
POOLED_TASKS, POOLED_EPOCHS, POOLED_LR = 20_000, 5, 1e-3
TEST_TASKS, TEST_QUERY, TEST_SEED = 600, 100, 20170517
EVAL_STEPS = (1, 5, 10)
STEPS_PER_EXECUTION = 50  # meta-steps per compiled call: less Python overhead per step
DEFAULT_ITERATIONS, QUICK_ITERATIONS = 30_000, 300
METHODS = ("maml", "fomaml", "reptile", "meta-sgd", "pretrained")
LABELS = {
    "maml": "MAML",
    "fomaml": "first-order MAML",
    "reptile": "Reptile",
    "meta-sgd": "Meta-SGD",
    "pretrained": "pretrained + fine-tune",
}


# -- data and networks -----------------------------------------------------------------------
def as_windows(batch: MetaBatch) -> MetaBatch:
    """Sinusoid inputs `(tasks, points, 1)` as zoo windows `(tasks, points, 1, 1)`."""
    return MetaBatch(
        batch.support_x[..., None], batch.support_y, batch.query_x[..., None], batch.query_y
    )


def meta_batches(tasks: SinusoidTasks, iterations: int, shots: int, seed: int):
    """A dataset of `iterations` meta-batches of `META_BATCH` new tasks, one per meta-step
    (the same for every method at a given K)."""
    batch = as_windows(tasks.sample(META_BATCH * iterations, shots, QUERY, seed=(seed, shots)))
    parts = tuple(part.reshape(iterations, META_BATCH, *part.shape[1:]) for part in batch)
    return tf.data.Dataset.from_tensor_slices(parts).prefetch(tf.data.AUTOTUNE)


def build_network(seed: int) -> keras.Model:
    """The paper's 1-40-40-1 ReLU network."""
    return models.build("mlp", (1, 1), 1, units=(40, 40), seed=seed)


# -- learners --------------------------------------------------------------------------------
def meta_learner(method: str, seed: int):
    """A compiled, untrained meta-learner for `method` (not "pretrained")."""
    spec = registry.get(method.replace("-", "_"))  # fomaml: MAML(first_order=True)
    steps = {"inner_steps": REPTILE_INNER_STEPS} if method == "reptile" else {}
    learner = spec.create(build_network(seed), inner_lr=INNER_LR, **steps)
    learner.compile(
        optimizer=keras.optimizers.Adam(OUTER_LR),
        loss="mse",
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    return learner


def pretrained_learner(tasks: SinusoidTasks, shots: int, pooled_tasks: int, epochs: int, seed):
    """The baseline: one network fitted to all points of `pooled_tasks` tasks pooled."""
    pooled = as_windows(tasks.sample(pooled_tasks, shots, QUERY, seed=(seed, shots, 1)))
    trainer = Pooled(build_network(seed))
    trainer.compile(optimizer=keras.optimizers.Adam(POOLED_LR), loss="mse")
    trainer.fit(*pool_samples([pooled]), epochs=epochs, batch_size=256, verbose=0)
    # Fine-tuned on each test task's K points with n plain SGD steps at lr 0.01.
    learner = FineTuned(trainer.model, inner_lr=INNER_LR)
    learner.compile(loss="mse")
    return learner


# -- evaluation and output -------------------------------------------------------------------
def test_errors(learner, test: MetaBatch) -> dict:
    """`{steps: (n_tasks,) query MSE of each test task after that many adaptation steps}`."""
    errors = {}
    for steps in EVAL_STEPS:
        predictions = learner.predict_tasks(test, steps)
        errors[steps] = np.mean((predictions - test.query_y) ** 2, axis=(1, 2))
    return errors


def mean_ci(values: np.ndarray) -> str:
    """`mean ± 1.96 standard errors` over tasks, or how many tasks' errors are not finite."""
    diverged = int(np.sum(~np.isfinite(values)))
    if diverged:
        return f"diverged on {diverged}/{len(values)}"
    mean, half = values.mean(), 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    return f"{mean:.3f} ± {half:.3f}" if mean < 1e3 else f"{mean:.2e} ± {half:.2e}"


def print_table(shots: int, rows: dict, iterations: int, pooled: tuple) -> None:
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")
    print(
        f"\nK = {shots}: test MSE on {TEST_TASKS} tasks x {TEST_QUERY} query points after n "
        f"adaptation steps (mean ± 95% CI); meta-training {iterations} iterations of "
        f"{META_BATCH} tasks ({shots} support + {QUERY} query points)"
    )
    print(table.to_string())
    print(
        f"(adaptation: plain SGD at lr {INNER_LR}, Meta-SGD at its learned rates; "
        f"pretrained: {pooled[0]} tasks pooled, {pooled[1]} epochs of Adam)"
    )


# -- entry point -----------------------------------------------------------------------------
def run_shots(args, tasks: SinusoidTasks, shots: int, start: float) -> None:
    """Train and evaluate every method for one K; print its table."""
    test = as_windows(tasks.sample(TEST_TASKS, shots, TEST_QUERY, seed=TEST_SEED))
    pooled_tasks, epochs = (2_000, 2) if args.quick else (POOLED_TASKS, POOLED_EPOCHS)
    rows = {}
    for method in args.methods:
        keras.backend.clear_session()
        began = time.perf_counter()
        if method == "pretrained":
            learner = pretrained_learner(tasks, shots, pooled_tasks, epochs, args.seed)
        else:
            learner = meta_learner(method, args.seed)
            data = meta_batches(tasks, args.iterations, shots, args.seed)
            learner.fit(data, epochs=1, verbose=0)
        trained = time.perf_counter() - began
        errors = test_errors(learner, test)
        row = {f"{n} step{'s' if n > 1 else ''}": mean_ci(errors[n]) for n in EVAL_STEPS}
        rows[LABELS[method]] = row | {"train s": f"{trained:.0f}"}
        print(
            f"  K={shots} {method}: trained in {trained:.0f}s, "
            f"done at {time.perf_counter() - start:.0f}s",
            flush=True,
        )
    print_table(shots, rows, args.iterations, (pooled_tasks, epochs))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="MAML, first-order MAML, Reptile and Meta-SGD on few-shot sinusoid "
        "regression (Finn et al. 2017, section 5.1), beside a pretrained baseline."
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=None,
        help=f"meta-iterations per method and K (default {DEFAULT_ITERATIONS}; "
        f"{QUICK_ITERATIONS} with --quick; the paper used 70000)",
    )
    parser.add_argument(
        "--shots", type=int, nargs="+", default=None, help="support points K (default 5 10 20)"
    )
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, default=list(METHODS), help="methods to run"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 300 iterations, K = 10 only"
    )
    args = parser.parse_args(argv)
    if args.iterations is None:
        args.iterations = QUICK_ITERATIONS if args.quick else DEFAULT_ITERATIONS
    if args.shots is None:
        args.shots = [10] if args.quick else [5, 10, 20]
    if args.iterations < 1 or min(args.shots) < 1:
        parser.error(
            f"--iterations and --shots must be >= 1. Received: {args.iterations}, {args.shots}"
        )
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()  # same seed, same numbers
    print(
        f"sinusoid regression: methods {', '.join(args.methods)}; K {args.shots}; "
        f"{args.iterations} meta-iterations per method and K; seed {args.seed}",
        flush=True,
    )
    tasks = SinusoidTasks()
    for shots in args.shots:
        run_shots(args, tasks, shots, start)
    print(f"\nwall time {time.perf_counter() - start:.1f}s on {describe_machine()}")


if __name__ == "__main__":
    main()
