"""Model-selection trials fanned out over a local Ray instance (`pip install 'metazoo[ray]'`)."""

import os

import joblib
import numpy as np
import pytest

from metazoo.data import WalkForward
from metazoo.trainers.selection import ModelSelection

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a local test sends nothing anywhere
ray = pytest.importorskip("ray")

CANDIDATES = {"linear": {}, "mlp": {"units": [(4,), (8,)]}}
SETTINGS = {
    "cv": WalkForward(n_splits=2, test_size=20),
    "epochs": 1,
    "batch_size": 16,
    "learning_rate": 1e-2,
    "refit": False,
    "verbose": 0,
}
SCORES = ["split0_score", "split1_score", "mean_score", "std_score", "rank"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 10, 1)).astype("float32")
    return X, X[:, -1, :] + 0.05 * rng.normal(size=(80, 1))


@pytest.fixture(scope="module")
def local(data):
    return ModelSelection(CANDIDATES, **SETTINGS).fit(*data).cv_results_


@pytest.mark.slow
def test_ray_backend_gives_the_scores_of_the_local_run(local_ray, data, local):
    on_ray = ModelSelection(CANDIDATES, n_jobs=2, backend="ray", **SETTINGS).fit(*data)
    assert ray.is_initialized()
    np.testing.assert_allclose(on_ray.cv_results_[SCORES], local[SCORES], rtol=1e-6, atol=0)
    assert on_ray.cv_results_["params"].tolist() == local["params"].tolist()
    # The same through joblib's own configuration, once Ray's backend is registered.
    with joblib.parallel_config(backend="ray"):
        configured = ModelSelection(CANDIDATES, n_jobs=2, **SETTINGS).fit(*data)
    np.testing.assert_allclose(configured.cv_results_[SCORES], local[SCORES], rtol=1e-6, atol=0)
