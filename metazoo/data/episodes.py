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


_CHUNK_BATCHES, _CHUNK_BYTES = 64, 4 * 2**20  # meta-batches per generator call, at most


def meta_batch_dataset(
    sample: Callable[[np.random.Generator], MetaBatch],
    n_batches: int | None,
    seed: int,
):
    """A `tf.data.Dataset` of meta-batches drawn by `sample(rng)`, as 4-tuples of tensors.

    Each pass over the dataset (each Keras epoch) draws from its own generator seeded by
    `(seed, pass number)`, so runs with the same seed see the same batches in the same order
    while successive epochs see new tasks.

    The first meta-batch is checked in full (`check_meta_batch`); every later one must have
    its shapes. Meta-batches are drawn in chunks (one call of `sample` after another on the
    same generator, so what is drawn does not depend on the chunking) and handed to
    TensorFlow a chunk at a time, which keeps the Python cost per meta-batch far below a
    meta-training step's.

    Args:
        sample: function of a `numpy.random.Generator` returning one `MetaBatch` (or any
            4-tuple of arrays).
        n_batches: meta-batches per pass; `None` for an endless stream.
        seed: base seed.
    """
    import tensorflow as tf

    n_batches = None if n_batches is None else check_count("n_batches", n_batches)
    seed = check_seed("seed", seed)
    example = check_meta_batch(sample(np.random.default_rng([seed, 2**31 - 1])))
    shapes = tuple(part.shape for part in example)
    n_tasks = example.n_tasks
    chunk = max(1, min(_CHUNK_BATCHES, _CHUNK_BYTES // sum(part.nbytes for part in example)))
    signature = tuple(  # a chunk: the tasks of several meta-batches, one after another
        tf.TensorSpec(shape=(None, *shape[1:]), dtype=tf.float32, name=name)
        for shape, name in zip(shapes, MetaBatch._fields, strict=True)
    )
    passes = [0]

    def generate():
        rng = np.random.default_rng([seed, passes[0]])
        passes[0] += 1
        count = 0
        while n_batches is None or count < n_batches:
            size = chunk if n_batches is None else min(chunk, n_batches - count)
            yield _stacked([sample(rng) for _ in range(size)], shapes)
            count += size

    # Episodes are re-batched by a `batch` op so that `tf.distribute` can split a meta-batch's
    # tasks across replicas; the meta-batches themselves are unchanged.
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    dataset = dataset.unbatch().batch(n_tasks, drop_remainder=True)
    if n_batches is not None:  # lets Keras know the epoch length
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(int(n_batches)))
    return dataset.prefetch(tf.data.AUTOTUNE)


def _stacked(batches: list, shapes: tuple) -> tuple:
    """The meta-batches' parts concatenated along the task axis, as float32, after checking
    that every batch has the shapes of the stream's first (checked) one."""
    for batch in batches:
        received = tuple(np.shape(part) for part in batch)
        if received != shapes:
            raise ValueError(
                f"Meta-batches of a stream expected the shapes of its first, {shapes}. "
                f"Received: {received}"
            )
    return tuple(
        np.concatenate(column, axis=0, dtype=np.float32) for column in zip(*batches, strict=True)
    )


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
