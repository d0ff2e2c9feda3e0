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
