"""Compiled functions are traced once per architecture, not once per model instance."""

import contextlib
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

from metazoo import models
from metazoo.data import ARTasks, MetaBatch
from metazoo.models import tracing
from metazoo.trainers import ANIL, MAML, FineTuned, MetaSGD, Reptile

SHAPE = (3, 1)
N_LEARNERS = 6  # TensorFlow warns when 5 of the last 10 calls of one function traced


def _batch(n_tasks=4, support=5, query=6, seed=0):
    batch = ARTasks(order=2, lookback=3, unit_variance=True).sample(
        n_tasks, support, query, seed=seed
    )
    return MetaBatch(*(part.astype("float32") for part in batch))


def _learner(cls, seed, name="mlp"):
    learner = cls(models.build(name, SHAPE, 1, seed=seed, units=(4,)), inner_lr=0.1)
    learner.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return learner


@contextlib.contextmanager
def _tensorflow_warnings():
    """The messages TensorFlow's logger emits at WARNING or above."""
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def _eager_predictions(learner, batch, steps):
    """The learner's adapted query predictions, computed eagerly from its own variables."""
    return learner._adapt_and_predict(tuple(tf.constant(part) for part in batch), steps).numpy()


@pytest.fixture(autouse=True)
def _fresh_cache():
    tracing.clear_shared_functions()
    yield
    tracing.clear_shared_functions()


def test_architecture_key_ignores_names_and_weights_but_not_the_architecture():
    first, second = (models.build("mlp", SHAPE, 1, seed=s, units=(4,)) for s in (0, 1))
    assert tracing.architecture_key(first) == tracing.architecture_key(second)
    wider = models.build("mlp", SHAPE, 1, seed=0, units=(5,))
    assert tracing.architecture_key(wider) != tracing.architecture_key(first)
    longer = models.build("mlp", (4, 1), 1, seed=0, units=(4,))
    assert tracing.architecture_key(longer) != tracing.architecture_key(first)


@pytest.mark.parametrize("cls", [MAML, MetaSGD, ANIL])
def test_learners_of_one_architecture_share_one_trace_without_retracing_warnings(cls):
    batch = _batch()
    shorter = MetaBatch(batch[0], batch[1], batch[2][:, :4], batch[3][:, :4])
    learners = [_learner(cls, seed) for seed in range(N_LEARNERS)]
    if cls is MetaSGD:  # every learner with rates of its own
        for i, learner in enumerate(learners):
            for rate in learner.inner_lrs:
                rate.assign(np.full(rate.shape, 0.05 * (i + 1), dtype="float32"))
    with _tensorflow_warnings() as warnings:
        predictions = [
            (learner.predict_tasks(batch, steps=2), learner.predict_tasks(shorter, steps=2))
            for learner in learners
        ]
    assert not [message for message in warnings if "retracing" in message]
    [function] = {learner._adapted_predictor(2, batch).func for learner in learners}
    assert function.experimental_get_tracing_count() == 1
    for learner, (full, short) in zip(learners, predictions, strict=True):
        np.testing.assert_allclose(full, _eager_predictions(learner, batch, 2), atol=1e-6)
        np.testing.assert_allclose(short, _eager_predictions(learner, shorter, 2), atol=1e-6)
    # Different weights (and Meta-SGD rates) give different forecasts through the one trace.
    assert not np.allclose(predictions[0][0], predictions[1][0])


def test_algorithms_with_one_inner_loop_share_its_trace_but_others_do_not():
    batch = _batch()
    alike = [_learner(cls, seed) for seed, cls in enumerate([MAML, Reptile, FineTuned])]
    for learner in alike:
        predictions = learner.predict_tasks(batch, steps=1)
        np.testing.assert_allclose(predictions, _eager_predictions(learner, batch, 1), atol=1e-6)
    [function] = {learner._adapted_predictor(1, batch).func for learner in alike}
    assert function.experimental_get_tracing_count() == 1
    others = [_learner(MetaSGD, 0), _learner(ANIL, 0), _learner(MAML, 0, name="gru")]
    for learner in others:
        learner.predict_tasks(batch, steps=1)
    functions = {learner._adapted_predictor(1, batch).func for learner in [*alike, *others]}
    assert len(functions) == 4


def test_a_shared_trace_reads_each_learners_current_weights():
    batch = _batch()
    first, second = _learner(MAML, 0), _learner(MAML, 1)
    before = first.predict_tasks(batch)
    second.predict_tasks(batch)
    first.fit(tf.data.Dataset.from_tensors(tuple(batch)).repeat(2), epochs=1, verbose=0)
    after = first.predict_tasks(batch)
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, _eager_predictions(first, batch, 1), atol=1e-6)


def test_compiled_call_traces_once_per_architecture_and_matches_the_model():
    x = _batch().query_x.reshape(-1, *SHAPE)
    networks = [models.build("mlp", SHAPE, 1, seed=seed, units=(4,)) for seed in range(6)]
    with _tensorflow_warnings() as warnings:
        outputs = [
            (models.compiled_call(net, x), models.compiled_call(net, x[:5])) for net in networks
        ]
    assert not [message for message in warnings if "retracing" in message]
    for net, (whole, head) in zip(networks, outputs, strict=True):
        expected = net(x, training=False).numpy()
        np.testing.assert_allclose(whole, expected, atol=1e-6)
        np.testing.assert_allclose(head, expected[:5], atol=1e-6)
    np.testing.assert_array_equal(models.compiled_call(networks[2], x, batch_size=7), outputs[2][0])
    assert not np.allclose(outputs[0][0], outputs[1][0])
    gru = models.build("gru", SHAPE, 1, seed=0, units=(4,))
    np.testing.assert_allclose(
        models.compiled_call(gru, x), gru(x, training=False).numpy(), atol=1e-6
    )


def test_architectures_traced_once_each_are_not_taken_for_retracing():
    # One trace per architecture: TensorFlow's detector, which tells functions apart by
    # their code, would count these N_LEARNERS first traces as one function retraced.
    x = _batch().query_x.reshape(-1, *SHAPE)
    networks = [models.build("mlp", SHAPE, 1, seed=0, units=(n + 2,)) for n in range(N_LEARNERS)]
    with _tensorflow_warnings() as warnings:
        for net in networks:
            models.compiled_call(net, x)
    assert not [message for message in warnings if "retracing" in message]
    # A function that does retrace is still warned about.
    with _tensorflow_warnings() as warnings:
        function = tf.function(lambda t: t * 2.0)
        tracing._count_traces_apart(function)
        for n in range(N_LEARNERS):
            function(tf.zeros((n + 1,)))
    assert [message for message in warnings if "retracing" in message]
