"""TensorBoard logging of the meta-learned inner learning rates of Meta-SGD."""

from __future__ import annotations

import os

import keras
import tensorflow as tf


class InnerLearningRates(keras.callbacks.Callback):
    """Writes the distribution of Meta-SGD's learned inner learning rates to TensorBoard.

    Each epoch (every `freq` epochs) it writes a histogram of all rates
    (`inner_lr/all`), one per base-model variable (`inner_lr/<variable>`), and their mean
    (`inner_lr/mean`), into `log_dir/train`, next to the logs of
    `keras.callbacks.TensorBoard(log_dir)`.

    Args:
        log_dir: the TensorBoard log directory.
        freq: write every `freq` epochs.
    """

    def __init__(self, log_dir, freq: int = 1):
        super().__init__()
        if int(freq) != freq or freq < 1:
            raise ValueError(f"freq must be an integer >= 1. Received: freq={freq}")
        self.log_dir = str(log_dir)
        self.freq = int(freq)
        self._writer = None

    def on_train_begin(self, logs=None):
        if not hasattr(self.model, "inner_lrs"):
            raise ValueError(
                "InnerLearningRates needs a model with learned inner learning rates "
                f"(MetaSGD). Received: {type(self.model).__name__}"
            )

    def on_epoch_end(self, epoch, logs=None):
        if epoch % self.freq:
            return
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "train"))
        rates = self.model.inner_lrs
        everything = tf.concat([tf.reshape(r.value, [-1]) for r in rates], axis=0)
        with self._writer.as_default(step=epoch):
            tf.summary.histogram("inner_lr/all", everything)
            tf.summary.scalar("inner_lr/mean", tf.reduce_mean(everything))
            for rate in rates:
                tf.summary.histogram(f"inner_lr/{rate.name}", rate.value)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
