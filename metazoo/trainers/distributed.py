"""Meta-training across several machines with `tf.distribute.MultiWorkerMirroredStrategy`.

Keras 3.15's `fit` cannot run with more than one worker (keras-team/keras#20585: its first
symbolic build reduces a nested batch with `strategy.reduce`, which takes no nests, and it
averages every scalar log over an axis 0 that scalars do not have). `fit_multi_worker`
drives the same per-replica step that `fit` would, `strategy.run(learner.train_step)`, in a
compiled loop: each global meta-batch's tasks are split between the workers, every worker
computes its share's meta-gradients and the optimizer all-reduces them, so every worker
applies the same update. On one device use plain `fit`.

Each worker runs the same program with its own `TF_CONFIG`, e.g. for worker 0 of two:

    TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
                "task": {"type": "worker", "index": 0}}' python train.py

    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # before anything else runs
    with strategy.scope():
        learner = MAML(models.build("mlp", shape, 1, seed=0))
        learner.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    losses = fit_multi_worker(learner, meta_batches, epochs=10, strategy=strategy)
"""

from __future__ import annotations

import tensorflow as tf


def fit_multi_worker(learner, dataset, epochs=1, strategy=None) -> list[float]:
    """Train a meta-learner on every worker of `strategy`, in lockstep.

    Args:
        learner: a compiled meta-learner (gradient or amortized) created and compiled under
            `strategy.scope()`.
        dataset: a `tf.data.Dataset` of global meta-batches (each element one meta-batch
            with a leading task axis, e.g. `TaskSet.meta_batches(...)`), the same on every
            worker; it is sharded by data, so each worker takes its share of each batch's
            tasks (the number of tasks must divide by the number of replicas).
        epochs: passes over `dataset`.
        strategy: the distribution strategy (default: the current one).

    Returns:
        The mean loss of each epoch (the same on every worker).
    """
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1. Received: epochs={epochs}")
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(f"dataset must be a tf.data.Dataset. Received: {type(dataset).__name__}")
    if learner.optimizer is None:
        raise ValueError("Compile the learner (under strategy.scope()) before training it.")
    strategy = strategy or tf.distribute.get_strategy()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    batches = strategy.experimental_distribute_dataset(dataset.with_options(options))

    @tf.function
    def step(batch):
        logs = strategy.run(learner.train_step, args=(batch,))
        return strategy.reduce("MEAN", logs["loss"], axis=None)

    losses = []
    for _ in range(int(epochs)):
        learner.reset_metrics()
        loss = None
        for batch in batches:
            loss = step(batch)
        losses.append(float(loss))
    return losses
