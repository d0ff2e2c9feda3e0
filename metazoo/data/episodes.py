"""Meta-batches: support and query sets of several tasks, stacked on a leading task axis."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from metazoo.validation import check_count, check_meta_batch_arrays, check_seed


class MetaBatch(NamedTuple):
    """Episodes of several tasks, each split in time into support (earlier) and query (later).

    Attributes:
        support_x: `(n_tasks, support_size, *x_shape)` inputs the learner adapts on.
        support_y: `(n_tasks, support_size, *y_shape)` their targets.
        query_x: `(n_tasks, query_size, *x_shape)` inputs the adapted learner is scored on.
        query_y: `(n_tasks, query_size, *y_shape)` their targets.
    """

    support_x: np.ndarray
    support_y: np.ndarray
    query_x: np.ndarray
    query_y: np.ndarray

    @property
    def n_tasks(self) -> int:
        """Tasks in the batch (the length of the leading axis)."""
        return int(self.support_x.shape[0])

    def task(self, index: int) -> MetaBatch:
        """The episode of one task, with the task axis kept (length 1)."""
        return MetaBatch(*(part[index : index + 1] for part in self))


def check_meta_batch(batch: MetaBatch) -> MetaBatch:
    """Check that the four parts agree in their task and sample axes; return float32 copies."""
    return MetaBatch(*check_meta_batch_arrays(batch))


def meta_batch_dataset(
    sample: Callable[[np.random.Generator], MetaBatch],
    n_batches: int | None,
    seed: int,
):
    """A `tf.data.Dataset` of meta-batches drawn by `sample(rng)`, as 4-tuples of tensors.

    Each pass over the dataset (each Keras epoch) draws from its own generator seeded by
    `(seed, pass number)`, so runs with the same seed see the same batches in the same order
    while successive epochs see new tasks.

    Args:
        sample: function of a `numpy.random.Generator` returning one `MetaBatch`.
        n_batches: meta-batches per pass; `None` for an endless stream.
        seed: base seed.
    """
    import tensorflow as tf

    n_batches = None if n_batches is None else check_count("n_batches", n_batches)
    seed = check_seed("seed", seed)
    example = check_meta_batch(sample(np.random.default_rng([seed, 2**31 - 1])))
    signature = tuple(
        tf.TensorSpec(shape=part.shape, dtype=tf.float32, name=name)
        for part, name in zip(example, MetaBatch._fields, strict=True)
    )
    passes = [0]

    def generate():
        rng = np.random.default_rng([seed, passes[0]])
        passes[0] += 1
        count = 0
        while n_batches is None or count < n_batches:
            yield tuple(check_meta_batch(sample(rng)))
            count += 1

    # Episodes are re-batched by a `batch` op so that `tf.distribute` can split a meta-batch's
    # tasks across replicas; the meta-batches themselves are unchanged.
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    dataset = dataset.unbatch().batch(example.n_tasks, drop_remainder=True)
    if n_batches is not None:  # lets Keras know the epoch length
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(int(n_batches)))
    return dataset


def pool_samples(batches) -> tuple[np.ndarray, np.ndarray]:
    """Every support and query sample of some meta-batches as one data set `(x, y)`, task
    after task (what the pooled reference trains on when it has only episodes).

    Args:
        batches: an iterable of `MetaBatch`es (or 4-tuples).

    Returns:
        `x` `(n, *x_shape)` and `y` `(n, *y_shape)`.
    """
    xs, ys = [], []
    for batch in batches:
        sx, sy, qx, qy = check_meta_batch(batch)
        xs += [sx.reshape(-1, *sx.shape[2:]), qx.reshape(-1, *qx.shape[2:])]
        ys += [sy.reshape(-1, *sy.shape[2:]), qy.reshape(-1, *qy.shape[2:])]
    if not xs:
        raise ValueError("batches expected at least one meta-batch. Received: none")
    return np.concatenate(xs), np.concatenate(ys)
