"""Run one MAML meta-update on one device and under MirroredStrategy on two logical CPUs;
print the largest weight difference. Run as a script (logical devices must be set before
TensorFlow starts)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from metazoo import models  # noqa: E402
from metazoo.data import ARTasks  # noqa: E402
from metazoo.trainers import MAML  # noqa: E402


def meta_update(strategy):
    with strategy.scope():
        learner = MAML(models.build("mlp", (3, 1), 1, seed=0, units=(8,)), inner_lr=0.1)
        learner.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    family = ARTasks(order=2, lookback=3, unit_variance=True)
    batches = [family.sample(4, 5, 6, seed=s) for s in range(2)]
    parts = [np.concatenate(column) for column in zip(*batches, strict=True)]
    data = tf.data.Dataset.from_tensor_slices(tuple(parts)).batch(4)
    history = learner.fit(data, epochs=1, verbose=0)
    return learner.get_weights(), history.history["loss"][0]


single, single_loss = meta_update(tf.distribute.get_strategy())
mirrored, mirrored_loss = meta_update(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
difference = max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored, strict=True))
start = models.build("mlp", (3, 1), 1, seed=0, units=(8,)).get_weights()
moved = max(float(np.abs(a - b).max()) for a, b in zip(single, start, strict=True))
print(f"difference={difference:.3e} moved={moved:.3e} losses={single_loss:.7f},{mirrored_loss:.7f}")
