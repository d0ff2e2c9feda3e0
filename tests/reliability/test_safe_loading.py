"""`.keras` files of every trainer load in Keras safe mode, and safe mode refuses code.

A `.keras` archive holds a JSON config and the weights. Loading it in safe mode (the
default of `keras.saving.load_model`) builds only registered classes from their configs and
refuses anything that would run Python code stored in the file, such as the bytecode of a
`Lambda` layer's function. These tests show that every trainer saves to a file that loads
that way, and that a file carrying a lambda is refused even when it sits inside a trainer.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import metazoo.trainers
from metazoo import models
from metazoo.data import ARTasks
from metazoo.trainers import (
    ANIL,
    MAML,
    ContextMetaLearner,
    ExpertPrototypes,
    FineTuned,
    MetaLearnedAveraging,
    MetaSGD,
    ModelAveraging,
    Pooled,
    Reptile,
    Scratch,
)

SHAPE = (3, 1)
ABSTRACT = {"GradientMetaLearner", "AmortizedMetaLearner", "AmortizedEnsemble", "EpisodicModel"}


def _base(seed=0):
    return models.build("mlp", SHAPE, 1, seed=seed, units=(4,))


def _members():
    return [models.build("linear", SHAPE, 1, seed=seed) for seed in range(2)]


TRAINERS = {
    "MAML": lambda: MAML(_base(), inner_lr=0.1),
    "Reptile": lambda: Reptile(_base(), inner_lr=0.1, inner_steps=2),
    "MetaSGD": lambda: MetaSGD(_base(), inner_lr=0.1, lr_bounds=(0.01, 0.5)),
    "ANIL": lambda: ANIL(_base(), inner_lr=0.1),
    "ModelAveraging": lambda: ModelAveraging(_members(), weighting="learned"),
    "ContextMetaLearner": lambda: ContextMetaLearner(_base(), embedding_units=4, sample_units=4),
    "ExpertPrototypes": lambda: ExpertPrototypes(_members(), embedding_units=4, sample_units=4),
    "MetaLearnedAveraging": lambda: MetaLearnedAveraging(_members(), hidden_units=(4,)),
    "Pooled": lambda: Pooled(_base()),
    "FineTuned": lambda: FineTuned(_base(), inner_lr=0.1),
    "Scratch": lambda: Scratch(_base(), fit_steps=3),
}


def _train_briefly(trainer):
    """One epoch of two steps, so that the file holds optimizer state too."""
    keras.utils.set_random_seed(0)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    batch = tuple(ARTasks(order=2, lookback=3, unit_variance=True).sample(3, 5, 6, seed=0))
    if isinstance(trainer, ModelAveraging):
        x, y = batch[0].reshape(-1, *SHAPE), batch[1].reshape(-1, 1)
        trainer.fit(x, y, epochs=1, batch_size=8, verbose=0)
    else:
        trainer.fit(tf.data.Dataset.from_tensors(batch).repeat(2), epochs=1, verbose=0)


def _archive_config(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        return archive.read("config.json").decode()


def test_every_trainer_is_covered():
    exported = {
        name
        for name in metazoo.trainers.__all__
        if isinstance(getattr(metazoo.trainers, name), type)
        and issubclass(getattr(metazoo.trainers, name), keras.Model)
    }
    assert exported - ABSTRACT == set(TRAINERS), "add the new trainer to TRAINERS"


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_trainer_files_load_in_safe_mode(name, tmp_path):
    trainer = TRAINERS[name]()
    _train_briefly(trainer)
    path = tmp_path / f"{name}.keras"
    trainer.save(path)
    config = _archive_config(path)
    assert not re.search(r"lambda|Lambda|bytecode", config), "no code in the file"
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(trainer)
    assert json.loads(json.dumps(loaded.get_config(), default=str)) == json.loads(
        json.dumps(trainer.get_config(), default=str)
    )
    for a, b in zip(loaded.get_weights(), trainer.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(loaded.optimizer.iterations.numpy()) == int(trainer.optimizer.iterations.numpy())


def _lambda_base():
    inputs = keras.Input(SHAPE, name="window")
    hidden = keras.layers.Lambda(lambda t: 2.0 * t, name="doubled")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(1, name="head")(hidden))


@pytest.mark.parametrize("wrap", [lambda m: m, lambda m: MAML(m)], ids=["plain", "in_maml"])
def test_a_file_with_a_lambda_layer_is_refused_in_safe_mode(wrap, tmp_path):
    path = tmp_path / "lambda.keras"
    model = wrap(_lambda_base())
    model.save(path)
    with pytest.raises(ValueError, match="lambda.*safe_mode=False"):
        keras.saving.load_model(path)
    with pytest.raises(ValueError, match="lambda.*safe_mode=False"):
        keras.saving.load_model(path, safe_mode=True)
    # The refusal is safe mode's doing: the trusted file itself is sound.
    assert type(keras.saving.load_model(path, safe_mode=False)) is type(model)


def test_the_library_never_turns_safe_mode_off_or_unpickles():
    source = Path(metazoo.trainers.__file__).parents[1]
    offenders = [
        f"{path.relative_to(source)}: {pattern}"
        for path in source.rglob("*.py")
        for pattern in (
            "safe_mode=False",
            "enable_unsafe_deserialization",
            "pickle.load",
            "marshal",
        )
        if pattern in path.read_text()
    ]
    assert not offenders
