import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorboard.plugins.projector import ProjectorConfig

from metazoo import models
from metazoo.callbacks import TaskEmbeddingProjector
from metazoo.data import TaskSet, load_prices, make_windows
from metazoo.trainers import MAML, ContextMetaLearner, MetaLearnedAveraging
from tests.conftest import make_prices
from tests.trainers import amortized_checks as checks


def _learner(shape=checks.SHAPE):
    keras.utils.set_random_seed(0)
    model = models.build("mlp", shape, 1, seed=0, units=(4,))
    learner = ContextMetaLearner(model, embedding_units=5, sample_units=4)
    learner.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return learner


def _config(log_dir):
    config = ProjectorConfig()
    text_format.Parse((log_dir / "projector_config.pbtxt").read_text(), config)
    return config


def test_embeddings_checkpoint_metadata_and_config_are_written(tmp_path):
    tasks = checks.small_batch(n_tasks=4)
    metadata = pd.DataFrame(
        {"symbol": ["AAA", "BBB", "AAA", "C\tC"], "period": ["2020Q1", "2020Q1", "2020Q2", "x"]}
    )
    learner = _learner()
    projector = TaskEmbeddingProjector(tmp_path, tasks, metadata, freq=2)
    learner.fit(checks.dataset([tasks] * 2), epochs=3, verbose=0, callbacks=[projector])

    rows = (tmp_path / "metadata.tsv").read_text().splitlines()
    assert rows == ["symbol\tperiod", "AAA\t2020Q1", "BBB\t2020Q1", "AAA\t2020Q2", "C C\tx"]
    config = _config(tmp_path)
    names = [e.tensor_name for e in config.embeddings]
    assert names == [  # every 2 epochs, and at the end of training
        "task_embedding_epoch_2/.ATTRIBUTES/VARIABLE_VALUE",
        "task_embedding_epoch_3/.ATTRIBUTES/VARIABLE_VALUE",
    ]
    assert {e.metadata_path for e in config.embeddings} == {"metadata.tsv"}
    reader = tf.train.load_checkpoint(str(tmp_path))  # the latest, as the Projector finds it
    final = reader.get_tensor(names[-1])
    assert final.shape == (4, 5)
    np.testing.assert_allclose(final, learner.embed_tasks(tasks), rtol=1e-6)
    assert not np.allclose(reader.get_tensor(names[0]), final)  # the embedding moved


def test_single_label_metadata_has_no_header_and_write_happens_once_at_the_end(tmp_path):
    tasks = checks.small_batch(n_tasks=3)
    learner = MetaLearnedAveraging(checks.experts())
    learner.compile(optimizer="adam", loss="mse")
    projector = TaskEmbeddingProjector(tmp_path, tasks, ["a", "b", "c"], name="features")
    learner.fit(checks.dataset([tasks]), epochs=2, verbose=0, callbacks=[projector])
    assert (tmp_path / "metadata.tsv").read_text().splitlines() == ["a", "b", "c"]
    names = [e.tensor_name for e in _config(tmp_path).embeddings]
    assert names == ["features_epoch_2/.ATTRIBUTES/VARIABLE_VALUE"]
    values = tf.train.load_checkpoint(str(tmp_path)).get_tensor(names[0])
    np.testing.assert_allclose(values, learner.embed_tasks(tasks), rtol=1e-6)


def test_from_tasks_labels_each_task_with_its_symbol_and_period(tmp_path):
    frame = load_prices(make_prices(68, ("AAA", "BBB")))
    windows = make_windows(frame, lookback=3, horizon=1, features=["log_return"])
    tasks = TaskSet.from_windows(windows, period="M")
    learner = _learner(shape=(3, 1))
    projector = TaskEmbeddingProjector.from_tasks(tmp_path, tasks, support_size=5)
    learner.fit(
        tasks.meta_batches(2, 5, 3, n_batches=1), epochs=1, verbose=0, callbacks=[projector]
    )
    rows = [row.split("\t") for row in (tmp_path / "metadata.tsv").read_text().splitlines()]
    expected = [[t.symbol, str(t.period)] for t in tasks if len(t) >= 6]
    assert rows == [["symbol", "period"], *expected]
    values = tf.train.load_checkpoint(str(tmp_path)).get_tensor(
        "task_embedding_epoch_1/.ATTRIBUTES/VARIABLE_VALUE"
    )
    assert values.shape == (len(expected), 5)


def test_bad_arguments(tmp_path):
    tasks = checks.small_batch(n_tasks=3)
    with pytest.raises(ValueError, match=r"one row per task \(3 tasks\)"):
        TaskEmbeddingProjector(tmp_path, tasks, {"symbol": ["a", "b"]})
    with pytest.raises(ValueError, match="freq must be None or an integer >= 1"):
        TaskEmbeddingProjector(tmp_path, tasks, ["a", "b", "c"], freq=0)
    maml = MAML(models.build("linear", checks.SHAPE, 1))
    maml.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="needs a model with embed_tasks"):
        maml.fit(
            checks.dataset([tasks]),
            verbose=0,
            callbacks=[TaskEmbeddingProjector(tmp_path, tasks, ["a", "b", "c"])],
        )
