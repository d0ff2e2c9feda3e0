"""Shared fixtures: small synthetic price frames and seeded Keras."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", 'slow: a test that takes more than a few seconds (deselect with -m "not slow")'
    )


def pytest_collection_modifyitems(config, items):
    """Files that hold slow tests run first (each keeps its order): with whole files per
    process (`-n 2 --dist loadfile --no-loadscope-reorder`, which hands files out in this
    order rather than by their number of tests), a long file handed out last would leave
    the other process idle at the end."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(scope="session", autouse=True)
def _experiments_run_in_the_test_process():
    """`jobs=0` (one worker process per core) means one process here: the suite already
    runs a test process per core, and each spawned worker would import TensorFlow and trace
    again for a run of a few seconds. Tests that pass `jobs` get the processes they ask
    for (the worker path is tested with `jobs=2`)."""
    from metazoo.experiment import environment

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(environment, "MAX_AUTO_JOBS", 1)
        yield


def make_prices(n_days=120, symbols=("AAA", "BBB"), seed=0, start="2020-01-01"):
    """A long OHLCV frame of geometric random walks with consistent highs and lows."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=n_days)
    parts = []
    for symbol in symbols:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n_days)))
        open_ = close * np.exp(rng.normal(0, 0.003, n_days))
        high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, n_days)))
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, n_days)))
        volume = rng.integers(1_000, 10_000, n_days).astype(float)
        parts.append(
            pd.DataFrame(
                {
                    "date": dates,
                    "symbol": symbol,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": volume,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


@pytest.fixture
def prices():
    return make_prices()
