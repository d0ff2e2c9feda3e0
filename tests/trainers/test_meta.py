import json
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from metazoo import models
from metazoo.callbacks import InnerLearningRates
from metazoo.data import ARTasks, MetaBatch
from metazoo.trainers import ANIL, MAML, MetaSGD, Reptile
from tests.common import fit_pooled, scratch_predictions

SHAPE = (3, 1)
TRAINERS = [MAML, MetaSGD, ANIL, Reptile]


def _batch(n_tasks=3, support=5, query=6, seed=0, dtype="float32"):
    batch = ARTasks(order=2, lookback=3, unit_variance=True).sample(
        n_tasks, support, query, seed=seed
    )
    return MetaBatch(*(part.astype(dtype) for part in batch))


def _trainer(cls=MAML, name="mlp", **kwargs):
    hparams = {"units": (4,)} if name in ("mlp", "gru") else {}
    learner = cls(models.build(name, SHAPE, 1, seed=0, **hparams), **({"inner_lr": 0.1} | kwargs))
    learner.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return learner


def _gradients_of(learner, gradients, variables):
    """The meta-gradients of some variables, matched by identity."""
    by_id = {id(v): g for v, g in zip(learner.trainable_variables, gradients, strict=True)}
    return [by_id[id(v)] for v in variables]


def _meta_loss(learner, weights, batch, steps):
    after, *_ = learner.map_tasks(lambda task: learner.task_losses(weights, task, steps), batch)
    return float(tf.reduce_mean(after))


@pytest.fixture
def float64():
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("parallel", ["vectorized", "loop"])
@pytest.mark.parametrize("cls", [MAML, MetaSGD, ANIL])
def test_second_order_meta_gradient_equals_finite_differences(cls, parallel, float64):
    batch = tuple(tf.constant(part) for part in _batch(dtype="float64"))
    learner = _trainer(cls, inner_steps=2, task_parallel=parallel)
    _, _, gradients = learner.meta_gradients(batch)
    gradients = _gradients_of(learner, gradients, learner.model.trainable_variables)
    weights = learner.meta_parameters()
    rng = np.random.default_rng(1)
    for _ in range(2):
        direction = [tf.constant(rng.normal(size=w.shape)) for w in weights]
        eps = 1e-6
        plus = _meta_loss(
            learner, [w + eps * d for w, d in zip(weights, direction, strict=True)], batch, 2
        )
        minus = _meta_loss(
            learner, [w - eps * d for w, d in zip(weights, direction, strict=True)], batch, 2
        )
        numeric = (plus - minus) / (2 * eps)
        analytic = sum(
            float(tf.reduce_sum(g * d)) for g, d in zip(gradients, direction, strict=True)
        )
        assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-10)


def test_meta_sgd_learning_rate_gradients_equal_finite_differences(float64):
    batch = tuple(tf.constant(part) for part in _batch(dtype="float64"))
    learner = _trainer(MetaSGD, inner_steps=2)
    _, _, gradients = learner.meta_gradients(batch)
    lr_gradients = _gradients_of(learner, gradients, learner.inner_lrs)
    assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in lr_gradients)
    weights = learner.meta_parameters()
    rng = np.random.default_rng(2)
    direction = [rng.normal(size=lr.shape) for lr in learner.inner_lrs]
    start = [lr.numpy() for lr in learner.inner_lrs]

    def loss_at(shift):
        for lr, value, d in zip(learner.inner_lrs, start, direction, strict=True):
            lr.assign(value + shift * d)
        return _meta_loss(learner, weights, batch, 2)

    eps = 1e-6
    numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    loss_at(0.0)
    analytic = sum(
        float(tf.reduce_sum(g * d)) for g, d in zip(lr_gradients, direction, strict=True)
    )
    assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-10)


def test_vectorized_and_loop_give_the_same_meta_gradient():
    batch = tuple(tf.constant(part) for part in _batch())
    grads = [
        _trainer(MAML, inner_steps=2, task_parallel=mode).meta_gradients(batch)[2]
        for mode in ("vectorized", "loop")
    ]
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_first_order_maml_equals_a_hand_built_reference():
    batch = _batch()
    learner = _trainer(MAML, first_order=True, inner_lr=0.1)
    _, _, gradients = learner.meta_gradients(tuple(tf.constant(p) for p in batch))
    model, expected = learner.model, None
    theta = [v.numpy() for v in model.trainable_variables]
    for i in range(batch.n_tasks):
        model.set_weights(theta)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(batch.support_x[i]) - batch.support_y[i]))
        inner = tape.gradient(loss, model.trainable_variables)
        model.set_weights([w - 0.1 * g.numpy() for w, g in zip(theta, inner, strict=True)])
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(batch.query_x[i]) - batch.query_y[i]))
        outer = [g.numpy() / batch.n_tasks for g in tape.gradient(loss, model.trainable_variables)]
        expected = (
            outer if expected is None else [a + b for a, b in zip(expected, outer, strict=True)]
        )
    model.set_weights(theta)
    for got, want in zip(gradients, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_reptile_update_moves_towards_the_adapted_weights():
    batch = _batch()
    learner = _trainer(Reptile, inner_steps=3, inner_lr=0.05)
    model = learner.model
    theta = [v.numpy() for v in model.trainable_variables]
    adapted = []
    for i in range(batch.n_tasks):
        model.set_weights(theta)
        x = np.concatenate([batch.support_x[i], batch.query_x[i]])
        y = np.concatenate([batch.support_y[i], batch.query_y[i]])
        for _ in range(3):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(x) - y))
            grads = tape.gradient(loss, model.trainable_variables)
            model.set_weights(
                [
                    v.numpy() - 0.05 * g.numpy()
                    for v, g in zip(model.trainable_variables, grads, strict=True)
                ]
            )
        adapted.append(model.get_weights())
    model.set_weights(theta)
    learner.train_on_batch(tuple(batch))  # SGD(0.05): theta <- theta - 0.05 * (theta - mean(phi))
    for i, after in enumerate(model.get_weights()):
        mean_phi = np.mean([a[i] for a in adapted], axis=0)
        np.testing.assert_allclose(
            after, theta[i] - 0.05 * (theta[i] - mean_phi), rtol=1e-4, atol=1e-6
        )


def test_meta_sgd_learning_rates_stay_within_bounds():
    learner = _trainer(MetaSGD, inner_lr=0.1, lr_bounds=(0.01, 0.2))
    learner.compile(optimizer=keras.optimizers.SGD(1e4), loss="mse")
    learner.train_on_batch(tuple(_batch()))
    rates = np.concatenate([lr.numpy().ravel() for lr in learner.inner_lrs])
    assert rates.min() >= 0.01 and rates.max() <= 0.2
    assert np.isclose(rates, 0.01).any() or np.isclose(rates, 0.2).any()
    with pytest.raises(ValueError, match="lr_bounds expected low <= inner_lr <= high"):
        MetaSGD(models.build("mlp", SHAPE, 1), inner_lr=0.5, lr_bounds=(0.0, 0.2))
    with pytest.raises(ValueError, match=r"lr_bounds expected a pair \(low, high\) of finite"):
        MetaSGD(models.build("mlp", SHAPE, 1), inner_lr=0.5, lr_bounds=(0.0, float("inf")))


def test_anil_adapts_only_the_head_and_trains_the_body_in_the_outer_loop():
    batch = _batch()
    learner = _trainer(ANIL, inner_steps=3)
    adapted = learner.adapt(batch.support_x[0], batch.support_y[0])
    for variable, new, is_head in zip(
        learner.model.trainable_variables, adapted.trainable_variables, learner.head, strict=True
    ):
        assert np.array_equal(variable.numpy(), new.numpy()) != is_head, variable.path
    _, _, gradients = learner.meta_gradients(tuple(tf.constant(p) for p in batch))
    body = [g for g, is_head in zip(gradients, learner.head, strict=True) if not is_head]
    assert len(gradients) == len(learner.head)
    assert float(tf.linalg.global_norm(body)) > 0


@pytest.mark.parametrize("cls", TRAINERS)
def test_adapt_returns_a_fitted_copy_and_leaves_the_meta_parameters(cls):
    batch = _batch(support=20)
    learner = _trainer(cls, inner_steps=1, eval_inner_steps=5)
    theta = [w.copy() for w in learner.model.get_weights()]
    sx, sy = batch.support_x[0], batch.support_y[0]
    unchanged = learner.adapt(sx, sy, steps=0)
    np.testing.assert_array_equal(unchanged.predict(sx, verbose=0), learner.predict(sx, verbose=0))
    adapted = learner.adapt(sx, sy)
    before = np.mean((learner.predict(sx, verbose=0) - sy) ** 2)
    after = np.mean((adapted.predict(sx, verbose=0) - sy) ** 2)
    assert after < before
    for a, b in zip(theta, learner.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="same, non-zero number of samples"):
        learner.adapt(sx, sy[:3])


@pytest.mark.parametrize("cls", TRAINERS)
def test_save_and_load_keep_the_meta_state(cls, tmp_path):
    batch = _batch()
    learner = _trainer(cls, inner_steps=2)
    learner.fit(tf.data.Dataset.from_tensors(tuple(batch)).repeat(3), epochs=1, verbose=0)
    path = tmp_path / "learner.keras"
    learner.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is cls
    assert json.dumps(loaded.get_config(), default=str) == json.dumps(
        learner.get_config(), default=str
    )
    np.testing.assert_array_equal(loaded.predict_tasks(batch), learner.predict_tasks(batch))
    if cls is MetaSGD:
        for a, b in zip(loaded.inner_lrs, learner.inner_lrs, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    loaded.fit(tf.data.Dataset.from_tensors(tuple(batch)), epochs=1, verbose=0)


def test_predict_tasks_traces_once_and_sees_later_training():
    batch = _batch()
    learner = _trainer(MAML)
    first = learner.predict_tasks(batch, steps=2)
    np.testing.assert_array_equal(learner.predict_tasks(batch, steps=2), first)
    run = learner._adapted_predictor(2, batch).func
    assert run.experimental_get_tracing_count() == 1
    # Query sets of another length (as evaluation sets have) reuse the same trace.
    shorter = (batch[0], batch[1], batch[2][:, :3], batch[3][:, :3])
    np.testing.assert_allclose(learner.predict_tasks(shorter, steps=2), first[:, :3], atol=1e-6)
    assert run.experimental_get_tracing_count() == 1
    learner.fit(tf.data.Dataset.from_tensors(tuple(batch)), epochs=1, verbose=0)
    assert not np.allclose(learner.predict_tasks(batch, steps=2), first)
    assert run.experimental_get_tracing_count() == 1


def test_recurrent_base_trains_in_second_order():
    batch = _batch()
    model = models.build("gru", SHAPE, 1, seed=0, units=(4,))
    learner = MAML(model, inner_lr=0.1, inner_steps=2, task_parallel="loop")
    learner.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    assert not learner._vectorize()
    logs = learner.train_on_batch(tuple(batch), return_dict=True)
    assert np.isfinite(logs["loss"]) and logs["meta_grad_norm"] > 0


def test_fit_logs_and_callbacks(tmp_path):
    family = ARTasks(order=2, lookback=3, unit_variance=True)
    learner = _trainer(MetaSGD, inner_steps=1)
    history = learner.fit(
        family.dataset(4, 5, 5, n_batches=3, seed=0),
        validation_data=family.dataset(4, 5, 5, n_batches=2, seed=1),
        epochs=4,
        verbose=0,
        callbacks=[
            keras.callbacks.TensorBoard(log_dir=str(tmp_path)),
            InnerLearningRates(tmp_path),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, mode="min"),
        ],
    )
    assert {"loss", "support_loss", "query_loss_before", "meta_grad_norm", "val_loss"} <= set(
        history.history
    )
    assert "val_meta_grad_norm" not in history.history
    tags = set()
    for path in (tmp_path / "train").glob("events.out.tfevents*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags |= {value.tag for value in event.summary.value}
    assert {"epoch_support_loss", "epoch_query_loss_before", "epoch_meta_grad_norm"} <= tags
    assert {"inner_lr/all", "inner_lr/mean"} <= tags, "learned learning rates are logged"
    with pytest.raises(ValueError, match="needs a model with learned inner learning rates"):
        _trainer(MAML).fit(
            family.dataset(4, 5, 5, n_batches=1),
            callbacks=[InnerLearningRates(tmp_path)],
            verbose=0,
        )


def test_terminate_on_nan_stops_an_exploding_inner_loop():
    learner = _trainer(MAML, inner_lr=1e6, inner_steps=3)
    data = tf.data.Dataset.from_tensors(tuple(_batch())).repeat(5)
    history = learner.fit(data, epochs=3, verbose=0, callbacks=[keras.callbacks.TerminateOnNaN()])
    assert len(history.history["loss"]) == 1 and not np.isfinite(history.history["loss"][0])


def test_inner_clip_norm_bounds_each_inner_step_and_keeps_adaptation_finite():
    batch = _batch()
    sx, sy = batch.support_x[0] * 1e3, batch.support_y[0] * 1e3  # far outside training scale
    free = _trainer(MAML, inner_lr=0.1)
    clipped = _trainer(MAML, inner_lr=0.1, inner_clip_norm=0.5)
    weights = clipped.meta_parameters()
    fast, _ = clipped.adapt_weights(weights, sx, sy, steps=1)
    step = tf.linalg.global_norm([f - w for f, w in zip(fast, weights, strict=True)])
    np.testing.assert_allclose(float(step), 0.1 * 0.5, rtol=1e-5)  # lr x clip norm
    fast_free, _ = free.adapt_weights(free.meta_parameters(), sx, sy, steps=1)
    free_step = tf.linalg.global_norm([f - w for f, w in zip(fast_free, weights, strict=True)])
    assert float(free_step) > 100 * float(step)
    assert np.isfinite(clipped.adapt(sx, sy, steps=20).predict(sx, verbose=0)).all()
    assert keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(clipped)
    ).inner_clip_norm == pytest.approx(0.5)
    with pytest.raises(ValueError, match="inner_clip_norm expected a finite number > 0 or None"):
        MAML(models.build("mlp", SHAPE, 1), inner_clip_norm=0.0)


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise RuntimeError("interrupted")


def test_backup_and_restore_resumes_to_the_same_weights(tmp_path):
    batches = [tuple(_batch(seed=s)) for s in range(3)]
    data = tf.data.Dataset.from_tensor_slices(
        tuple(np.stack(p) for p in zip(*batches, strict=True))
    )
    reference = _trainer(MAML)
    reference.fit(data, epochs=4, verbose=0)
    resumed = _trainer(MAML)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="interrupted"):
        resumed.fit(data, epochs=4, verbose=0, callbacks=[backup, _Interrupt()])
    fresh = _trainer(MAML)
    fresh.fit(data, epochs=4, verbose=0, callbacks=[backup])
    for a, b in zip(reference.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_bad_arguments_and_data():
    model = models.build("mlp", SHAPE, 1)
    with pytest.raises(ValueError, match="inner_steps expected an integer >= 1"):
        MAML(model, inner_steps=0)
    with pytest.raises(ValueError, match="inner_lr expected a finite number > 0"):
        MAML(model, inner_lr=0.0)
    with pytest.raises(ValueError, match="task_parallel expected one of"):
        MAML(model, task_parallel="threads")
    with pytest.raises(TypeError, match="built keras.Model"):
        MAML("mlp")
    learner = _trainer(MAML)
    batch = _batch()
    with pytest.raises(
        ValueError, match="meta-batches \\(support_x, support_y, query_x, query_y\\)"
    ):
        learner.fit(batch.support_x, batch.support_y, epochs=1, verbose=0)


@pytest.mark.slow
def test_maml_adapts_better_than_scratch_and_pooled_training_on_ar_tasks():
    """AR(2) tasks with unit variance and known Bayes error: from K=10 observations, MAML's
    adapted model beats the same network trained from scratch on those 10 and a network
    pooled over every training task without adaptation."""
    family = ARTasks(order=2, max_pacf=0.9, unit_variance=True)

    def build(seed):
        return models.build("linear", (2, 1), 1, seed=seed)

    keras.utils.set_random_seed(0)
    maml = MAML(build(0), inner_lr=0.1, inner_steps=1)
    maml.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    maml.fit(family.dataset(16, 10, 20, n_batches=50, seed=0), epochs=10, verbose=0)
    pooled = fit_pooled(build, [family.sample(800, 10, 20, seed=0)], epochs=3)
    test, params = family.sample(60, 10, 50, seed=123, return_params=True)

    def mse(pred):
        return float(np.mean((pred - test.query_y) ** 2))

    adapted = mse(maml.predict_tasks(test))
    scratch = mse(scratch_predictions(build, test, steps=200))
    pool = mse(
        pooled.predict(test.query_x.reshape(-1, 2, 1), verbose=0).reshape(test.query_y.shape)
    )
    bayes = float(np.mean(params["bayes_mse"]))
    assert bayes < adapted < 0.95 * min(scratch, pool), (adapted, scratch, pool, bayes)


@pytest.mark.slow
def test_two_replicas_give_the_same_meta_update_as_one_device():
    script = Path(__file__).with_name("distributed_step.py")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=True
    )
    found = re.search(r"difference=(\S+) moved=(\S+) losses=(\S+),(\S+)", done.stdout)
    assert found, done.stdout + done.stderr
    difference, moved, single, mirrored = map(float, found.groups())
    assert moved > 1e-3  # the update is not empty
    assert difference < 1e-6 and single == pytest.approx(mirrored, rel=1e-6)


def test_on_batch_calls_match_keras_own_and_restart_metrics_each_call():
    # train_on_batch / test_on_batch reset the metrics in one compiled call instead of
    # Keras' eager resets: the logs and weights must be those of Keras' own methods.
    ours, keras_own = _trainer(), _trainer()
    batches = [tuple(tf.constant(p) for p in _batch(seed=s)) for s in range(3)]
    for batch in batches:
        logs = ours.train_on_batch(batch, return_dict=True)
        expected = keras.Model.train_on_batch(keras_own, batch, return_dict=True)
        assert logs.keys() == expected.keys()
        for key in expected:
            np.testing.assert_allclose(logs[key], expected[key], rtol=1e-6, err_msg=key)
    for a, b in zip(ours.get_weights(), keras_own.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    tested = ours.test_on_batch(batches[0], return_dict=True)
    expected = keras.Model.test_on_batch(keras_own, batches[0], return_dict=True)
    np.testing.assert_allclose(tested["loss"], expected["loss"], rtol=1e-6)
    assert ours.train_on_batch(batches[0]) == pytest.approx(
        keras.Model.train_on_batch(keras_own, batches[0]), rel=1e-6
    )


def test_on_batch_steps_follow_the_batch_shape_and_a_new_compile():
    # train_on_batch runs one concrete function per batch shape and dtype; compiling
    # again (another optimizer) must not keep running the old step.
    ours, keras_own = _trainer(), _trainer()
    for batch in (_batch(), _batch(n_tasks=2, support=4, seed=1), _batch(dtype="float64")):
        batch = tuple(batch)
        np.testing.assert_allclose(
            ours.train_on_batch(batch),
            keras.Model.train_on_batch(keras_own, batch),
            rtol=1e-6,
        )
    generic, concrete = ours._metazoo_batch_functions["train_function"]
    assert len(concrete) == 3 and generic.experimental_get_tracing_count() == 3
    for _ in range(3):  # the same shapes again: no new trace
        ours.train_on_batch(tuple(_batch(seed=3)))
        keras.Model.train_on_batch(keras_own, tuple(_batch(seed=3)))
    assert generic.experimental_get_tracing_count() == 3
    for learner in (ours, keras_own):
        learner.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    batch = tuple(_batch(seed=2))
    before = ours.get_weights()
    ours.train_on_batch(batch)
    keras.Model.train_on_batch(keras_own, batch)
    for a, b in zip(ours.get_weights(), keras_own.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    moved = [np.abs(a - old).max() for a, old in zip(ours.get_weights(), before, strict=True)]
    assert max(moved) > 1e-4


def test_on_batch_calls_run_eagerly_when_asked():
    # run_eagerly keeps Keras' own (uncompiled) path: the same logs and weights.
    eager, compiled = _trainer(), _trainer()
    eager.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", run_eagerly=True)
    batch = tuple(_batch())
    np.testing.assert_allclose(eager.train_on_batch(batch), compiled.train_on_batch(batch), 1e-6)
    for a, b in zip(eager.get_weights(), compiled.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    assert "train_function" not in eager._metazoo_batch_functions


def _compiled(**compile_kwargs):
    learner = MAML(models.build("mlp", SHAPE, 1, seed=0, units=(4,)), inner_lr=0.1)
    learner.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", **compile_kwargs)
    return learner


@pytest.mark.parametrize(
    ("epoch", "per_call"),
    [({}, 50), ({"steps_per_epoch": 6}, 6), ({"steps_per_epoch": 4, "validation_steps": 6}, 2)],
    ids=["7-batch-dataset", "steps_per_epoch", "validation_steps"],
)
def test_default_steps_per_execution_runs_the_steps_of_one_per_call(epoch, per_call):
    # compile without steps_per_execution runs several meta-steps per call, never past an
    # epoch's end: the same steps, weights and history as one step per call.
    batches = [_batch(seed=s) for s in range(7)]
    stacked = tuple(np.stack(part) for part in zip(*batches, strict=True))
    data = tf.data.Dataset.from_tensor_slices(stacked)
    data = data if not epoch else data.repeat()
    fast, slow = _compiled(), _compiled(steps_per_execution=1)
    histories = [
        learner.fit(data, epochs=2, validation_data=data.take(6), verbose=0, **epoch).history
        for learner in (fast, slow)
    ]
    assert fast.steps_per_execution == per_call
    steps = 2 * epoch.get("steps_per_epoch", 7)
    assert int(fast.optimizer.iterations) == int(slow.optimizer.iterations) == steps
    for a, b in zip(fast.get_weights(), slow.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert histories[0].keys() == histories[1].keys()
    for key in histories[1]:
        np.testing.assert_allclose(histories[0][key], histories[1][key], rtol=1e-5, err_msg=key)
    assert "steps_per_execution" not in fast.get_compile_config()
