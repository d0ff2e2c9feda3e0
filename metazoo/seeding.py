"""Seeded work that leaves the process's random number generators as it found them.

Keras draws the seed of every unseeded initializer and `SeedGenerator` (dropout, noise
layers) from Python's `random` module when the object is made, and draws the weights from
that seed with stateless ops. So seeding Python's generator is enough to build the same
weights, and nothing else needs to be touched: `weights_seeded(seed)` seeds it for the
duration of a block and puts the caller's state back afterwards.

`process_seeded(seed)` is for a unit of work that also trains (a trial of model selection,
which may run in the caller's process or in a worker): it seeds Python, NumPy and
TensorFlow, as `keras.utils.set_random_seed` does, and afterwards restores Python's and
NumPy's states and TensorFlow's global seed.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np

from metazoo.validation import check_seed

__all__ = ["process_seeded", "weights_seeded"]


@contextlib.contextmanager
def weights_seeded(seed: int):
    """Within the block, Keras objects made without a seed draw their seeds from `seed`.

    The same seed builds the same weights, whatever was drawn before; after the block,
    Python's generator continues exactly where the caller left it.
    """
    seed = check_seed("seed", seed)
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


@contextlib.contextmanager
def process_seeded(seed: int):
    """Within the block, Python, NumPy and TensorFlow are seeded with `seed`.

    Afterwards Python's and NumPy's generators continue where the caller left them and
    TensorFlow's global seed is set back to what it was (its per-op seed counter restarts,
    as after any `tf.random.set_seed`).
    """
    import keras
    import tensorflow as tf

    seed = check_seed("seed", seed)
    python_state = random.getstate()
    numpy_state = np.random.get_state()  # noqa: NPY002 (the legacy global is what is kept)
    tf_seed = tf.compat.v1.get_seed(None)[0]
    keras.utils.set_random_seed(seed)
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)  # noqa: NPY002
        tf.random.set_seed(tf_seed)
