"""Many meta-steps per read of the input stream.

Keras' multi-step loop (`steps_per_execution > 1`) reads one meta-batch per step from the
dataset iterator. On a CPU each read is an asynchronous op handed to another thread, about
0.1 ms: a third of a small meta-step. Here `fit` and `evaluate` read the meta-batches of
one compiled call as one chunk (`dataset.batch(steps_per_execution)`), and the call loops
over the chunk in the graph. The same meta-batches reach the same steps in the same order
(a call of Keras' loop reads `steps_per_execution` meta-batches, or what is left), so
weights, logs and callbacks are those of Keras' loop; only the reads are fewer.

The chunked stream is used only where it is exact and cheap: a `tf.data.Dataset` of dense
tensors with fully known shapes, more than one step per call, the graph (not eager) path,
no distribution strategy or Keras distribution, no `class_weight`, and a chunk of at most
`MAX_CHUNK_BYTES`. Anything else runs Keras' own loop, unchanged.
"""

from __future__ import annotations

import tensorflow as tf

try:  # Keras' data-adapter base: fit and evaluate take an adapter as their data as is
    from keras.src.trainers.data_adapters.data_adapter import DataAdapter
except ImportError:  # pragma: no cover - another Keras layout: Keras' loop is used
    DataAdapter = None

CHUNK_KEY = "metazoo_meta_batches"
# A chunk held by the prefetch buffer and one being run: bounded, whatever the batch size.
MAX_CHUNK_BYTES = 64 * 2**20


class ChunkedDataset(DataAdapter or object):
    """A Keras data adapter over `dataset` that yields `steps` meta-batches per element
    (stacked on a new leading axis, the last chunk possibly shorter) while reporting the
    batch count of `dataset`, so that Keras counts steps, epochs and callbacks as for
    `dataset` itself."""

    def __init__(self, dataset: tf.data.Dataset, steps: int):
        self.dataset = dataset
        self.steps = int(steps)

    def get_tf_dataset(self):
        chunks = tf.data.Dataset.zip({CHUNK_KEY: self.dataset.batch(self.steps)}).prefetch(1)
        if self.dataset.options().autotune.enabled is not None:
            return chunks  # the pipeline's own choice
        # Without autotuning: its thread sleeps for a period that doubles as the iterator
        # lives, and deleting the iterator (at the end of each epoch and of `fit`) waits
        # for it (0.9-1.0 s after 200 LSTM meta-steps; fits at multiples of 5.12 s in
        # longer runs). AUTOTUNE settings inside the pipeline then take TF's defaults.
        options = tf.data.Options()
        options.autotune.enabled = False
        return chunks.with_options(options)

    def get_numpy_iterator(self):
        return self.dataset.as_numpy_iterator()

    @property
    def num_batches(self):
        cardinality = int(self.dataset.cardinality())
        return cardinality if cardinality >= 0 else None

    @property
    def batch_size(self):
        return None

    @property
    def has_partial_batch(self):
        return None

    @property
    def partial_batch_size(self):
        return None


def chunked(data, steps: int):
    """`data` as a `ChunkedDataset` of `steps` meta-batches per element where that is exact
    and bounded (see the module docstring), else `data` unchanged."""
    if DataAdapter is None or steps <= 1 or not isinstance(data, tf.data.Dataset):
        return data
    specs = tf.nest.flatten(data.element_spec)
    if not specs or not all(
        type(spec) is tf.TensorSpec and spec.shape.is_fully_defined() for spec in specs
    ):
        return data
    size = sum(spec.shape.num_elements() * spec.dtype.size for spec in specs)
    if size * steps > MAX_CHUNK_BYTES:
        return data
    return ChunkedDataset(data, steps)


def is_chunked(iterator) -> bool:
    """Whether `iterator` reads a `ChunkedDataset`'s stream."""
    if not isinstance(iterator, tf.data.Iterator):
        return False
    spec = iterator.element_spec
    return isinstance(spec, dict) and list(spec) == [CHUNK_KEY]


def chunk_function(step, jit_compile=False):
    """A compiled call that reads one chunk from a chunked iterator and runs `step` on each
    of its meta-batches in turn, returning the last step's logs (an empty `Optional` when
    the stream has ended)."""

    # One step as its own function, as in Keras' loop: the same graph, the same arithmetic.
    step = tf.function(
        tf.autograph.experimental.do_not_convert(step),
        reduce_retracing=True,
        jit_compile=jit_compile,
    )

    @tf.autograph.experimental.do_not_convert
    def one_chunk(iterator):
        next_chunk = iterator.get_next_as_optional()
        # Its spec is set when the loop body is traced (as in Keras' multi-step loop).
        empty = tf.experimental.Optional.empty(None)

        def run():
            chunk = next_chunk.get_value()[CHUNK_KEY]
            count = tf.shape(tf.nest.flatten(chunk)[0])[0]

            def body(index, outputs):
                batch = tf.nest.map_structure(lambda part: part[index], chunk)
                logs = tf.experimental.Optional.from_value(step(batch))
                empty._element_spec = logs.element_spec
                return index + 1, logs

            _, last = tf.while_loop(
                lambda index, _: index < count,
                body,
                [tf.constant(0), empty],
                parallel_iterations=1,
            )
            last._element_spec = empty.element_spec
            return last

        def ended():
            return tf.experimental.Optional.empty(empty.element_spec)

        return tf.cond(next_chunk.has_value(), run, ended)

    compiled = tf.function(one_chunk, reduce_retracing=True, jit_compile=jit_compile)

    def function(iterator):
        outputs = compiled(iterator)
        if not outputs.has_value():
            raise StopIteration
        return outputs.get_value()

    function.compiled = compiled
    return function
