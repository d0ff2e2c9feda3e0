"""One process of MAML meta-training under `tf.distribute.MultiWorkerMirroredStrategy`.

Usage::

    TF_CONFIG='{"cluster": {"worker": [...]}, "task": {"type": "worker", "index": i}}' \
        python multiworker_worker.py OUT.npz     # worker i of the cluster
    python multiworker_worker.py OUT.npz         # no TF_CONFIG: one device, `fit`

Every process builds the same meta-batches (6 tasks each) and the same network. Under the
strategy each global meta-batch's tasks are split between the workers (data sharding of a
batched dataset, 3 tasks each), every worker runs the learner's `train_step` on its share and
the optimizer sums the replicas' gradients with an all-reduce (collective ops over gRPC, a
ring on CPU), so all workers apply the same update. The reference process trains the same
learner on one device with plain `fit`.

Under the strategy the workers train with `metazoo.trainers.distributed.fit_multi_worker`,
which drives `strategy.run(learner.train_step)`, the call Keras' `fit` makes per replica
(Keras 3.15's `fit` cannot run with more than one worker; see that module).

Saves the first and final weights, the optimizer's iteration count, the last epoch's mean loss and
the number of replicas to OUT.npz. Run as a script: the strategy must be created before
TensorFlow runs anything else.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf

MULTI_WORKER = "TF_CONFIG" in os.environ
STRATEGY = (
    tf.distribute.MultiWorkerMirroredStrategy() if MULTI_WORKER else tf.distribute.get_strategy()
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from metazoo import models  # noqa: E402
from metazoo.data import ARTasks  # noqa: E402
from metazoo.trainers import MAML  # noqa: E402
from metazoo.trainers.distributed import fit_multi_worker  # noqa: E402

TASKS, BATCHES, EPOCHS = 6, 3, 2


def meta_batches() -> tf.data.Dataset:
    """`BATCHES` meta-batches of `TASKS` AR(2) tasks, the same in every process."""
    family = ARTasks(order=2, lookback=3, unit_variance=True)
    batches = [family.sample(TASKS, 5, 6, seed=seed) for seed in range(BATCHES)]
    parts = tuple(np.concatenate(column).astype("float32") for column in zip(*batches, strict=True))
    return tf.data.Dataset.from_tensor_slices(parts).batch(TASKS)


def main(out: str) -> None:
    with STRATEGY.scope():
        learner = MAML(models.build("mlp", (3, 1), 1, seed=0, units=(8,)), inner_lr=0.1)
        learner.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
        learner.optimizer.build(learner.trainable_variables)
    start = learner.get_weights()
    if MULTI_WORKER:
        loss = fit_multi_worker(learner, meta_batches(), epochs=EPOCHS, strategy=STRATEGY)[-1]
    else:
        loss = learner.fit(meta_batches(), epochs=EPOCHS, verbose=0).history["loss"][-1]
    np.savez(
        out,
        loss=loss,
        replicas=STRATEGY.num_replicas_in_sync,
        iterations=int(learner.optimizer.iterations.numpy()),
        **{f"weight_{i}": w for i, w in enumerate(learner.get_weights())},
        **{f"start_{i}": w for i, w in enumerate(start)},
    )


if __name__ == "__main__":
    main(sys.argv[1])
