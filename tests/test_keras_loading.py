"""Every `.keras` file metazoo writes loads with plain `keras.models.load_model` after
`import metazoo` alone (checked in a fresh interpreter), without warnings; and Keras
`predict(x)` on every learner forecasts or says to use `adapt` / `predict_tasks`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from metazoo import models
from metazoo.trainers import registry
from tests.common import EPISODE_SHAPE, episode_batch, make_trainer

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # saves 26 files, then loads them in a new interpreter

LOADER = r"""
import json, logging, sys, warnings
import numpy as np
import metazoo
assert "tensorflow" not in sys.modules, "import metazoo imported TensorFlow"
import keras

records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
logging.getLogger().addHandler(Keep(level=logging.WARNING))
logging.captureWarnings(True)
out = {}
x = np.random.default_rng(0).normal(size=(4, 3, 2)).astype("float32")
for path in sys.argv[1:]:
    records.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras.models.load_model(path)
    entry = {"class": type(model).__name__,
             "warnings": [str(w.message) for w in caught] + list(records)}
    if path.endswith("-learner.keras"):
        try:
            entry["predict"] = list(np.shape(model.predict(x, verbose=0)))
        except Exception as error:
            entry["error"] = f"{type(error).__name__}: {error}"
    out[path] = entry
print(json.dumps(out))
"""


def learner(name):
    spec = registry.get(name)
    batch = episode_batch()
    if spec.needs == "members":
        nets = [models.build("mlp", EPISODE_SHAPE, 1, seed=i, units=(4,)) for i in range(2)]
        model = spec.create(nets)
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
        x, y = batch.support_x.reshape(-1, *EPISODE_SHAPE), batch.support_y.reshape(-1, 1)
        model.fit(x, y, validation_data=(x, y), epochs=1, verbose=0)
        return model
    model = make_trainer(name)
    if spec.trains_on == "episodes":
        model.fit(batch, epochs=1, verbose=0)
    elif spec.trains_on == "windows":
        model.fit(batch.support_x.reshape(-1, *EPISODE_SHAPE), batch.support_y.reshape(-1, 1),
                  epochs=1, verbose=0)  # fmt: skip
    return model


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras_files")
    paths = []
    for name in registry.available():
        path = folder / f"{name}-learner.keras"
        learner(name).save(path)
        paths.append(str(path))
    for name in models.available():
        model = models.build(name, (8, 3), 2, seed=0)
        model.compile(optimizer="adam", loss="mse")
        model.optimizer.build(model.trainable_variables)  # saved with optimizer variables
        path = folder / f"{name}-zoo.keras"
        model.save(path)
        paths.append(str(path))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", LOADER, *paths],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_file_loads_after_import_metazoo_without_warnings(loaded):
    assert len(loaded) == len(registry.available()) + len(models.available())
    for path, entry in loaded.items():
        assert entry["warnings"] == [], (path, entry["warnings"])
    classes = {Path(p).name.split("-")[0]: e["class"] for p, e in loaded.items()}
    assert classes["maml"] == "MAML" and classes["context"] == "ContextMetaLearner"
    assert classes["averaging"] == "ModelAveraging"


def test_keras_predict_forecasts_or_names_adapt_and_predict_tasks(loaded):
    for path, entry in loaded.items():
        if "-learner" not in path:
            continue
        if "error" in entry:
            assert entry["error"].startswith("TypeError") and "adapt(" in entry["error"]
            assert "predict_tasks" in entry["error"], entry["error"]
        else:
            assert entry["predict"] == [4, 1], (path, entry)
    refusing = sorted(Path(p).name.split("-")[0] for p, e in loaded.items() if "error" in e)
    assert refusing == ["context", "context_memory", "meta_averaging", "prototypes"]
