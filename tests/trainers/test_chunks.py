"""`fit` and `evaluate` read a dataset's meta-batches one compiled call at a time
(`metazoo.trainers.chunks`): the same steps, weights, logs and callbacks as Keras' own
multi-step loop, which runs wherever chunks would not be exact."""

import contextlib
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf

from metazoo.trainers import chunks, episodic
from tests.common import episode_batch, episode_dataset, make_trainer, state_of, with_nan


class Batches(keras.callbacks.Callback):
    """Every batch hook's index and loss, and every epoch's end."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(("train", batch, logs["loss"]))

    def on_test_batch_end(self, batch, logs=None):
        self.seen.append(("test", batch, logs["loss"]))

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(("epoch", epoch, logs["loss"]))


def _run(name, data, chunked, steps_per_execution=3, nonfinite="raise", **fit_kwargs):
    """A learner fitted twice and evaluated, with chunks or with Keras' loop."""
    learner = make_trainer(name, nonfinite=nonfinite)
    learner.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss="mse",
        steps_per_execution=steps_per_execution,
        nonfinite=nonfinite,
    )
    hooks = Batches()
    plain = mock.patch.object(episodic, "chunked", lambda data, steps: data)
    with contextlib.nullcontext() if chunked else plain:
        history = learner.fit(data, epochs=2, verbose=0, callbacks=[hooks], **fit_kwargs)
        evaluated = learner.evaluate(data.take(4), verbose=0, return_dict=True)
    return learner, history.history, hooks.seen, evaluated


@pytest.mark.parametrize("name", ["maml", "context"])
@pytest.mark.parametrize(
    "epoch",
    [{}, {"steps_per_epoch": 6}],
    ids=["7-batch-dataset", "repeated-steps_per_epoch"],
)
def test_chunks_give_what_keras_loop_gives(name, epoch):
    # 7 meta-batches at 3 per call: two full chunks and a last one of 1; on a repeated
    # dataset, epochs continue the same stream. Bit for bit: weights, optimizer state,
    # history, every callback index and log, evaluate.
    data = episode_dataset([episode_batch(seed=s) for s in range(7)])
    data = data.repeat() if epoch else data
    runs = [
        _run(name, data, chunked, validation_data=data.take(5), **epoch)
        for chunked in (True, False)
    ]
    (ours, history, seen, evaluated), (keras_own, *expected) = runs
    for a, b in zip(state_of(ours), state_of(keras_own), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(ours.optimizer.iterations) == 2 * epoch.get("steps_per_epoch", 7)
    assert (history, seen, evaluated) == tuple(expected)
    indices = [index for kind, index, _ in seen if kind == "train"]
    assert indices == ([2, 5] if epoch else [2, 5, 8]) * 2
    # The chunked step ran, traced once for all epochs, validation and evaluate alike.
    assert ours.train_function.chunk_step.compiled.experimental_get_tracing_count() == 1
    assert ours.test_function.chunk_step.compiled.experimental_get_tracing_count() == 1
    assert keras_own.train_function.chunk_step.compiled.experimental_get_tracing_count() == 0


def test_a_nonfinite_meta_batch_inside_a_chunk_is_refused_or_skipped_as_in_keras_loop():
    batches = [episode_batch(seed=s) for s in range(5)]
    batches[3] = with_nan(batches[3], "query_y")  # the first of the second chunk of 3
    data = episode_dataset(batches)
    with pytest.raises(ValueError, match="refused before any weight changed"):
        make_trainer("maml").fit(data, verbose=0)  # compile's default: 50 per call
    skipped = [_run("maml", data, chunked, nonfinite="skip") for chunked in (True, False)]
    assert skipped[0][1]["skipped_batches"] == [1.0, 1.0]
    assert skipped[0][0].n_skipped == skipped[1][0].n_skipped == 2
    assert skipped[0][1:] == skipped[1][1:]
    for a, b in zip(state_of(skipped[0][0]), state_of(skipped[1][0]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_only_exact_bounded_streams_are_chunked():
    data = episode_dataset([episode_batch(seed=s) for s in range(4)])
    adapter = chunks.chunked(data, 3)
    assert isinstance(adapter, chunks.ChunkedDataset) and adapter.num_batches == 4
    assert [int(tf.shape(c[chunks.CHUNK_KEY][0])[0]) for c in adapter.get_tf_dataset()] == [3, 1]
    assert chunks.chunked(data.repeat(), 3).num_batches is None
    # tf.data autotuning is off in the chunked stream (deleting an autotuned iterator waits
    # for the tuner's sleep), unless the pipeline sets it itself.
    assert adapter.get_tf_dataset().options().autotune.enabled is False
    options = tf.data.Options()
    options.autotune.enabled = True
    tuned = chunks.chunked(data.with_options(options), 3).get_tf_dataset()
    assert tuned.options().autotune.enabled is True
    unknown = data.unbatch().batch(2)  # tasks regrouped: the task count is not known
    big = tf.data.Dataset.from_tensors(tf.zeros((2**20, 9))).repeat(2)  # 36 MiB a batch
    for unchanged in (
        chunks.chunked(data, 1),
        unknown,
        chunks.chunked(unknown, 3),
        chunks.chunked(big, 2),
        chunks.chunked(list(data), 3),
    ):
        assert not isinstance(unchanged, chunks.ChunkedDataset)
    # run_eagerly keeps Keras' loop: the same weights as the chunked graph.
    eager, graph = make_trainer("maml"), make_trainer("maml")
    eager.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", run_eagerly=True)
    eager.fit(data, verbose=0)
    graph.fit(data, verbose=0)
    assert eager.train_function.chunk_step.compiled.experimental_get_tracing_count() == 0
    for a, b in zip(eager.get_weights(), graph.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
