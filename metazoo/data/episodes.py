"""Meta-batches: support and query sets of several tasks, stacked on a leading task axis."""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral
from typing import NamedTuple

import numpy as np

from metazoo.data.features import check_count


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
    if len(batch) != 4:
        raise ValueError(
            "A meta-batch has four parts (support_x, support_y, query_x, query_y). "
            f"Received: {len(batch)} parts"
        )
    parts = [np.asarray(part, dtype=np.float32) for part in batch]
    sx, sy, qx, qy = parts
    shapes = f"support_x={sx.shape}, support_y={sy.shape}, query_x={qx.shape}, query_y={qy.shape}"
    if min(part.ndim for part in parts) < 3:
        raise ValueError(f"Every part needs (n_tasks, n_samples, ...) axes. Received: {shapes}")
    if len({part.shape[0] for part in parts}) != 1:
        raise ValueError(f"All parts must have the same number of tasks. Received: {shapes}")
    if sx.shape[1] != sy.shape[1] or qx.shape[1] != qy.shape[1]:
        raise ValueError(f"Inputs and targets must have as many samples. Received: {shapes}")
    if sx.shape[2:] != qx.shape[2:] or sy.shape[2:] != qy.shape[2:]:
        raise ValueError(f"Support and query must share sample shapes. Received: {shapes}")
    return MetaBatch(*parts)


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
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0. Received: seed={seed!r}")
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
