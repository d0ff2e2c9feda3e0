"""A meta-training run that can be killed and resumed: MAML on fixed meta-batches with
`keras.callbacks.BackupAndRestore` (a backup at the end of every epoch).

Usage::

    python resumable_training.py BACKUP_DIR OUT.npz [--stop-at EPOCH BATCH SIGNAL_FILE]

The run trains for `EPOCHS` epochs over the same `N_BATCHES` pre-sampled meta-batches (a
`tf.data.Dataset.from_tensor_slices`, no shuffling) with op determinism on, so two runs
with the same seed follow the same path. It saves the final weights, the optimizer's
variables and the first epoch it ran (> 0 after a resume) to `OUT.npz`.

With `--stop-at`, after batch BATCH of epoch EPOCH it writes SIGNAL_FILE and waits to be
killed (the test sends SIGKILL): the process dies mid-epoch, after the backup of the
previous epoch was written.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

from metazoo import models
from metazoo.data import ARTasks
from metazoo.trainers import MAML

EPOCHS, N_BATCHES, WAIT_S = 4, 6, 120


class StopAndWait(keras.callbacks.Callback):
    """After one batch, write a file and block until the process is killed."""

    def __init__(self, epoch, batch, signal_file):
        super().__init__()
        self.stop_epoch, self.stop_batch, self.signal_file = epoch, batch, signal_file
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == (self.stop_epoch, self.stop_batch):
            with open(self.signal_file, "w") as f:
                f.write(f"{self.epoch} {batch}\n")
            time.sleep(WAIT_S)  # killed here; if not, fail loudly below
            raise RuntimeError("StopAndWait was not killed")


class FirstEpoch(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.first = None

    def on_epoch_begin(self, epoch, logs=None):
        self.first = epoch if self.first is None else self.first


def dataset():
    family = ARTasks(order=2, lookback=3, unit_variance=True)
    batches = [family.sample(4, 5, 6, seed=seed) for seed in range(N_BATCHES)]
    parts = tuple(np.stack(column).astype("float32") for column in zip(*batches, strict=True))
    return tf.data.Dataset.from_tensor_slices(parts)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("backup_dir")
    parser.add_argument("out")
    parser.add_argument("--stop-at", nargs=3, metavar=("EPOCH", "BATCH", "SIGNAL_FILE"))
    args = parser.parse_args(argv)
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(0)
    learner = MAML(models.build("mlp", (3, 1), 1, seed=0, units=(8,)), inner_lr=0.1)
    # One meta-step per call, so that the kill lands inside an epoch, between its batches.
    learner.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", steps_per_execution=1)
    first = FirstEpoch()
    callbacks = [keras.callbacks.BackupAndRestore(args.backup_dir, save_freq="epoch"), first]
    if args.stop_at:
        epoch, batch, signal_file = args.stop_at
        callbacks.append(StopAndWait(int(epoch), int(batch), signal_file))
    learner.fit(dataset(), epochs=EPOCHS, verbose=0, callbacks=callbacks)
    optimizer = [np.asarray(v) for v in learner.optimizer.variables]
    np.savez(
        args.out,
        first_epoch=first.first,
        **{f"weight_{i}": w for i, w in enumerate(learner.get_weights())},
        **{f"optimizer_{i}": v for i, v in enumerate(optimizer)},
    )


if __name__ == "__main__":
    main()
