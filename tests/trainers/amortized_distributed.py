"""Train an amortized meta-learner for one epoch on one device and under MirroredStrategy on
two logical CPUs; print the largest weight difference. Run as a script with the learner's
name (`context`, `prototypes` or `averaging`): logical devices must be set before TensorFlow
starts, and one process holds one MirroredStrategy."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from metazoo import models  # noqa: E402
from metazoo.trainers import (  # noqa: E402
    ContextMetaLearner,
    ExpertPrototypes,
    MetaLearnedAveraging,
)
from tests.trainers import amortized_checks as checks  # noqa: E402

LEARNERS = {
    "context": lambda: ContextMetaLearner(
        models.build("mlp", checks.SHAPE, 1, seed=0, units=(8,)),
        embedding_units=8,
        sample_units=8,
        hypernetwork=True,
        memory_size=3,
    ),
    "prototypes": lambda: ExpertPrototypes(
        checks.experts(), embedding_units=8, sample_units=8, agreement_weight=0.1
    ),
    "averaging": lambda: MetaLearnedAveraging(checks.experts(), hidden_units=(8,)),
}


def one_epoch(strategy, make):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        learner = make()
        learner.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    batches = [checks.small_batch(n_tasks=4, seed=s) for s in range(2)]
    parts = [np.concatenate(column) for column in zip(*batches, strict=True)]
    data = tf.data.Dataset.from_tensor_slices(tuple(parts)).batch(4)
    history = learner.fit(data, epochs=1, verbose=0)
    return learner.get_weights(), history.history["loss"][0]


make = LEARNERS[sys.argv[1]]
single, single_loss = one_epoch(tf.distribute.get_strategy(), make)
mirrored, mirrored_loss = one_epoch(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), make)
difference = max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored, strict=True))
print(f"difference={difference:.3e} losses={single_loss:.7f},{mirrored_loss:.7f}")
