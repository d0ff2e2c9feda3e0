import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from metazoo import models
from metazoo.trainers import ContextMetaLearner
from tests.trainers import amortized_checks as checks

VARIANTS = {
    "film": {},
    "hypernetwork": {"film": False, "hypernetwork": True},
    "film_hypernetwork_memory_lstm": {"hypernetwork": True, "memory_size": 4, "encoder": "lstm"},
    "episodic_memory": {"memory_size": 5, "memory": "episodic"},
}


def _learner(variant="film", base="mlp", **kwargs):
    keras.utils.set_random_seed(0)
    hparams = {"units": (8,)} if base == "mlp" else {}
    model = models.build(base, checks.SHAPE, 1, seed=0, **hparams)
    learner = ContextMetaLearner(
        model, embedding_units=8, sample_units=8, **(VARIANTS[variant] | kwargs)
    )
    learner.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return learner


@pytest.mark.parametrize("variant", VARIANTS)
def test_untrained_learner_predicts_as_its_base_model(variant):
    """FiLM and hypernetwork generators start at zero: conditioning starts as the identity."""
    batch = checks.small_batch()
    learner = _learner(variant)
    flat = batch.query_x.reshape(-1, *checks.SHAPE)
    expected = learner.model.predict(flat, verbose=0).reshape(batch.query_y.shape)
    np.testing.assert_allclose(learner.predict_tasks(batch), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="adapts in one forward pass"):
        learner.predict_tasks(batch, steps=3)


@pytest.mark.parametrize("variant", VARIANTS)
def test_adapt_is_one_forward_pass(variant):
    checks.check_adapt_is_one_forward_pass(_learner(variant), checks.small_batch())


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradients_reach_every_meta_parameter(variant):
    learner = _learner(variant)
    checks.check_gradients_reach_every_meta_parameter(learner, checks.small_batch())
    assert {v.path for v in learner.model.trainable_variables} <= {
        v.path for v in learner.trainable_variables
    }


def test_the_task_embedding_separates_regimes_after_meta_training():
    learner = _learner("film")
    train = [checks.regime_tasks(16, 8, 8, seed=s)[0] for s in range(60)]
    learner.fit(checks.dataset(train), epochs=1, verbose=0)
    batch, regime = checks.regime_tasks(40, 8, 4, seed=77)
    embeddings = learner.embed_tasks(batch)
    centres = [embeddings[regime == r].mean(axis=0) for r in (0, 1)]
    spread = max(embeddings[regime == r].std(axis=0).mean() for r in (0, 1))
    assert np.linalg.norm(centres[0] - centres[1]) > spread


@pytest.mark.parametrize("variant", VARIANTS)
def test_save_and_load(variant, tmp_path):
    checks.check_save_and_load(
        lambda: _learner(variant), checks.small_batch(), tmp_path / "learner.keras"
    )


def test_backup_and_restore_resumes_to_the_same_weights(tmp_path):
    checks.check_backup_and_restore(
        lambda: _learner("film_hypernetwork_memory_lstm"), tmp_path / "backup"
    )


def test_fit_logs_query_loss_metrics_and_memory_entropy(tmp_path):
    learner = _learner("film_hypernetwork_memory_lstm")
    learner.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", metrics=["mae"])
    data = checks.dataset([checks.small_batch(seed=s) for s in range(2)])
    board = keras.callbacks.TensorBoard(log_dir=str(tmp_path))
    history = learner.fit(data, validation_data=data, epochs=2, verbose=0, callbacks=[board])
    history = history.history
    assert {"loss", "mae", "memory_entropy", "val_loss", "val_mae"} <= set(history)
    tags = set()
    for path in (tmp_path / "train").glob("events.out.tfevents*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags |= {value.tag for value in event.summary.value}
    assert {"epoch_loss", "epoch_mae", "epoch_memory_entropy"} <= tags
    assert 0 < history["memory_entropy"][-1] <= np.log(4) + 1e-6
    logs = learner.evaluate(data, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(history["val_loss"][-1], rel=1e-5)


def test_bad_arguments_and_inputs():
    model = models.build("mlp", checks.SHAPE, 1, units=(4,))
    with pytest.raises(ValueError, match="needs film=True, hypernetwork=True or both"):
        ContextMetaLearner(model, film=False)
    with pytest.raises(
        ValueError, match="memory_size expected an integer >= 0. Received: memory_size=-1"
    ):
        ContextMetaLearner(model, memory_size=-1)
    with pytest.raises(ValueError, match="cell expected one of .* Received: cell='transformer'"):
        ContextMetaLearner(model, encoder="transformer")
    with pytest.raises(TypeError, match="built keras.Model"):
        ContextMetaLearner("mlp")
    inputs = keras.Input(checks.SHAPE)
    plain = keras.Model(inputs, keras.layers.Dense(1, name="out")(keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="last layer is a Dense layer named 'head'"):
        ContextMetaLearner(plain)
    checks.check_bad_inputs(_learner())


@pytest.mark.parametrize(
    ("variant", "base"),
    [("film", "mlp"), ("hypernetwork", "linear"), ("episodic_memory", "mlp")],
)
def test_context_learner_beats_pooled_and_scratch_training_on_regime_tasks(variant, base):
    """From K=8 observations of a new task, one forward pass of the support set gives a
    forecast better than a model pooled over the training tasks and one trained from
    scratch on the 8 observations."""
    checks.check_evidence(_learner(variant, base), support_size=8)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["context", "prototypes", "averaging"])
def test_two_replicas_train_as_one_device(name):
    """Every amortized learner (this module's and the two ensembles) takes the same step
    under MirroredStrategy on two logical CPUs as on one device."""
    root = Path(__file__).parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "tests.trainers.amortized_distributed", name],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=root,
    )
    found = re.search(r"difference=(\S+) losses=(\S+),(\S+)", done.stdout)
    assert found, done.stdout + done.stderr
    difference, single, mirrored = map(float, found.groups())
    assert difference < 1e-6 and single == pytest.approx(mirrored, rel=1e-6)


def test_episodic_memory_holds_the_embeddings_of_past_tasks():
    learner = _learner("episodic_memory")
    batches = [checks.small_batch(n_tasks=3, seed=seed) for seed in range(3)]
    for batch in batches[:2]:
        learner.train_on_batch(tuple(batch))
    assert int(learner.memory_count.numpy()) == 6

    def whole(batch):  # each task embedded from its support and query together
        return learner.encoder(
            np.concatenate([batch.support_x, batch.query_x], axis=1),
            np.concatenate([batch.support_y, batch.query_y], axis=1),
        ).numpy()

    # A ring of 5: the second batch's tasks sit in slots 3, 4 and 0 (the oldest overwritten).
    memory = learner.memory_keys.numpy()
    np.testing.assert_allclose(memory[[3, 4, 0]], whole(batches[1]), rtol=1e-5, atol=1e-6)
    # Reading the memory changes the context; adapting and predicting never write it.
    before = learner.predict_tasks(batches[2])
    learner.adapt(batches[2].support_x[0], batches[2].support_y[0])
    np.testing.assert_array_equal(learner.memory_keys.numpy(), memory)
    learner.remember(batches[2])
    assert int(learner.memory_count.numpy()) == 9
    np.testing.assert_allclose(
        learner.memory_keys.numpy()[[1, 2, 3]], whole(batches[2]), rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(learner.predict_tasks(batches[2]), before)
    with pytest.raises(ValueError, match="remember needs an episodic memory"):
        _learner("film").remember(batches[2])
    with pytest.raises(ValueError, match="memory must be one of"):
        _learner("film", memory="tape")
