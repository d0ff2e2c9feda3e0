"""Checks shared by the amortized meta-learners (`ContextMetaLearner`, `ExpertPrototypes`,
`MetaLearnedAveraging`), and a task family with known regimes for their evidence tests."""

from __future__ import annotations

import functools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from metazoo import models
from metazoo.data import MetaBatch
from metazoo.data.synthetic import series_episodes
from tests.common import fit_pooled, scratch_predictions

LOOKBACK = 2
COEFFICIENTS = (-0.7, 0.7)
SHAPE = (LOOKBACK, 1)


def regime_tasks(n_tasks, support_size, query_size, seed):
    """Unit-variance AR(1) series whose coefficient is one of two regimes, -0.7 or +0.7.

    Each task draws its regime at random and simulates
    `x_t = phi x_{t-1} + sqrt(1 - phi^2) eps_t`; windows of `LOOKBACK` values are cut by
    `series_episodes`. The Bayes MSE of a task is `1 - phi^2 = 0.51`. A forecaster blind to
    the regime does no better than `1 - phi^4 = 0.76` (the lag-2 coefficient, `phi^2`, is
    the same in both regimes).

    Returns:
        `(MetaBatch, regime)` with `regime` the index of each task's coefficient.
    """
    rng = np.random.default_rng(seed)
    regime = rng.integers(len(COEFFICIENTS), size=n_tasks)
    phi = np.asarray(COEFFICIENTS)[regime]
    n_steps = 2 * LOOKBACK + support_size + query_size
    noise = rng.standard_normal((n_tasks, n_steps)) * np.sqrt(1 - phi[:, None] ** 2)
    values = np.zeros((n_tasks, n_steps))
    values[:, 0] = rng.standard_normal(n_tasks)  # the stationary law: no burn-in needed
    for t in range(1, n_steps):
        values[:, t] = phi * values[:, t - 1] + noise[:, t]
    batch = series_episodes(values, LOOKBACK, support_size, query_size)
    return MetaBatch(*(part.astype("float32") for part in batch)), regime


def dataset(batches):
    """A `tf.data.Dataset` of the given meta-batches, in order."""
    return tf.data.Dataset.from_tensor_slices(
        tuple(np.stack(part) for part in zip(*batches, strict=True))
    )


def linear(seed):
    return models.build("linear", SHAPE, 1, seed=seed)


@functools.cache
def _expert_weights():
    """Linear experts fitted on one regime each, and one on both (a pooled member)."""
    batch, regime = regime_tasks(400, 8, 16, seed=12345)
    parts = [MetaBatch(*(p[regime == r] for p in batch)) for r in range(len(COEFFICIENTS))]
    return tuple(
        tuple(
            fit_pooled(
                linear, [part], epochs=10, learning_rate=0.05, batch_size=128, seed=i
            ).get_weights()
        )
        for i, part in enumerate([*parts, batch])
    )


def experts():
    """Fresh copies of the pre-trained experts (learners change their `trainable` flag)."""
    members = []
    for seed, weights in enumerate(_expert_weights()):
        member = linear(seed)
        member.set_weights(list(weights))
        members.append(member)
    return members


@functools.cache
def evidence_baselines(support_size):
    """Held-out regime tasks with the query MSEs of pooled training, training from scratch
    and the Bayes forecast."""
    test, regime = regime_tasks(60, support_size, 30, seed=999)
    train = [regime_tasks(16, support_size, 16, seed=s)[0] for s in range(50)]
    pooled = fit_pooled(linear, train, epochs=10, learning_rate=0.05, batch_size=128)
    flat = test.query_x.reshape(-1, *SHAPE)
    pooled_pred = pooled.predict(flat, verbose=0).reshape(test.query_y.shape)
    scratch_pred = scratch_predictions(linear, test, steps=200)
    bayes = float(np.mean(1 - np.asarray(COEFFICIENTS)[regime] ** 2))
    return test, {
        "pooled": _mse(pooled_pred, test.query_y),
        "scratch": _mse(scratch_pred, test.query_y),
        "bayes": bayes,
    }


def _mse(pred, y):
    return float(np.mean((pred - y) ** 2))


def check_evidence(learner, support_size, steps=200, margin=0.85):
    """Meta-train on `steps` meta-batches of 16 regime tasks, then beat pooled and scratch
    training on held-out tasks by `margin`. Returns the measured MSEs."""
    train = [regime_tasks(16, support_size, 16, seed=s)[0] for s in range(steps)]
    learner.fit(dataset(train), epochs=1, verbose=0)
    test, scores = evidence_baselines(support_size)
    scores = scores | {"learner": _mse(learner.predict_tasks(test), test.query_y)}
    best_baseline = min(scores["pooled"], scores["scratch"])
    assert scores["bayes"] < scores["learner"] < margin * best_baseline, scores
    return scores


def small_batch(n_tasks=3, support_size=6, query_size=5, seed=0):
    return regime_tasks(n_tasks, support_size, query_size, seed)[0]


def check_adapt_is_one_forward_pass(learner, batch):
    """`adapt` changes no variable, and its predictions are those of `predict_tasks`."""
    learner.fit(dataset([batch]), epochs=1, verbose=0)  # move away from the initial state
    before = [v.numpy().copy() for v in learner.variables]
    iterations = int(learner.optimizer.iterations.numpy())
    expected = learner.predict_tasks(batch)
    np.testing.assert_allclose(learner.predict(dataset([batch]), verbose=0), expected, rtol=1e-6)
    for i in range(batch.n_tasks):
        adapted = learner.adapt(batch.support_x[i], batch.support_y[i])
        got = adapted.predict(batch.query_x[i])
        np.testing.assert_allclose(got, expected[i], rtol=1e-5, atol=1e-6)
        assert adapted.embedding.shape == (learner.embed_tasks(batch).shape[1],)
    for a, b in zip(before, learner.variables, strict=True):
        np.testing.assert_array_equal(a, b.numpy())
    assert int(learner.optimizer.iterations.numpy()) == iterations


def check_gradients_reach_every_meta_parameter(learner, batch):
    """After one step (generators starting at zero pass no gradient before it), the query
    loss has a non-zero gradient for every trainable variable."""
    learner.train_on_batch(tuple(batch))
    parts = tuple(tf.constant(p) for p in batch)
    with tf.GradientTape() as tape:
        _, loss, penalty, _ = learner._forward(parts, training=True)
        objective = loss + penalty
    gradients = tape.gradient(objective, learner.trainable_variables)
    for variable, gradient in zip(learner.trainable_variables, gradients, strict=True):
        assert gradient is not None, variable.path
        assert float(tf.reduce_max(tf.abs(gradient))) > 0, variable.path


def check_save_and_load(make, batch, path):
    """`.keras` round trip: same config, same predictions, same embeddings; training goes on."""
    learner = make()
    learner.fit(dataset([batch] * 3), epochs=1, verbose=0)
    learner.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(learner)
    assert json.dumps(loaded.get_config(), default=str, sort_keys=True) == json.dumps(
        learner.get_config(), default=str, sort_keys=True
    )
    np.testing.assert_array_equal(loaded.predict_tasks(batch), learner.predict_tasks(batch))
    np.testing.assert_array_equal(loaded.embed_tasks(batch), learner.embed_tasks(batch))
    clone = type(learner).from_config(learner.get_config())
    clone.set_weights(learner.get_weights())
    np.testing.assert_allclose(clone.predict_tasks(batch), learner.predict_tasks(batch), rtol=1e-6)
    logs = loaded.fit(dataset([batch]), epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"]).all()


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise RuntimeError("interrupted")


def check_backup_and_restore(make, backup_dir):
    """A run interrupted and resumed by `BackupAndRestore` ends with the weights of a run
    that was never interrupted."""
    data = dataset([small_batch(seed=s) for s in range(3)])
    reference = make()
    reference.fit(data, epochs=4, verbose=0)
    backup = keras.callbacks.BackupAndRestore(str(backup_dir))
    with pytest.raises(RuntimeError, match="interrupted"):
        make().fit(data, epochs=4, verbose=0, callbacks=[backup, _Interrupt()])
    resumed = make()
    resumed.fit(data, epochs=4, verbose=0, callbacks=[backup])
    for a, b in zip(reference.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def check_bad_inputs(learner):
    """Wrong structures, K = 0 and mismatched shapes are refused with clear messages."""
    batch = small_batch()
    with pytest.raises(
        ValueError, match=r"meta-batches \(support_x, support_y, query_x, query_y\)"
    ):
        learner.fit(batch.support_x, batch.support_y, epochs=1, verbose=0)
    empty = batch._replace(support_x=batch.support_x[:, :0], support_y=batch.support_y[:, :0])
    with pytest.raises(ValueError, match=r"at least one sample \(K >= 1\)"):
        learner.train_on_batch(tuple(empty))
    with pytest.raises(ValueError, match=r"at least one sample \(K >= 1\)"):
        learner.predict_tasks(empty)
    with pytest.raises(ValueError, match=r"at least one sample \(K >= 1\)"):
        learner.adapt(batch.support_x[0, :0], batch.support_y[0, :0])
    with pytest.raises(ValueError, match="disagree in their number of samples"):
        learner.adapt(batch.support_x[0], batch.support_y[0, :3])
    longer = batch._replace(support_x=np.concatenate([batch.support_x] * 2, axis=2))
    with pytest.raises(ValueError, match=r"samples x \(2, 1\) and y \(1,\)"):
        learner.train_on_batch(tuple(longer))
    with pytest.raises(ValueError, match="query_x must be"):
        learner.adapt(batch.support_x[0], batch.support_y[0]).predict(batch.query_x)
    no_tasks = batch._replace(**{name: part[:0] for name, part in batch._asdict().items()})
    with pytest.raises(ValueError, match="at least one task"):
        learner.train_on_batch(tuple(no_tasks))
    nan_support = batch.support_y[0].copy()
    nan_support[1] = np.nan
    with pytest.raises(ValueError, match=r"support_y must be finite. Received: 1 NaN"):
        learner.adapt(batch.support_x[0], nan_support)
    with pytest.raises(ValueError, match="support_x must be numeric"):
        learner.adapt(np.full(batch.support_x[0].shape, "a"), batch.support_y[0])
