"""Meta-SGD's learned inner learning rates stay within `lr_bounds` whatever the outer
optimizer does, also after a `.keras` round trip; bounds that cannot guard are refused.

`tests/trainers/test_meta.py` checks one huge SGD step and one bound above `inner_lr`; these
add Adam over many steps, reloading, and the other malformed bounds.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from metazoo import models
from metazoo.data import ARTasks
from metazoo.trainers import MetaSGD

SHAPE, BOUNDS = (3, 1), (0.02, 0.3)


def _rates(learner) -> np.ndarray:
    return np.concatenate([lr.numpy().ravel() for lr in learner.inner_lrs])


class _RecordRates(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.low, self.high = np.inf, -np.inf

    def on_train_batch_end(self, batch, logs=None):
        rates = _rates(self.model)
        self.low, self.high = min(self.low, rates.min()), max(self.high, rates.max())


def _data(seed=0):
    family = ARTasks(order=2, lookback=3, unit_variance=True)
    return family.dataset(4, 5, 6, n_batches=5, seed=seed)


def test_rates_stay_within_bounds_under_a_huge_adam_step_and_after_reloading(tmp_path):
    keras.utils.set_random_seed(0)
    model = models.build("mlp", SHAPE, 1, seed=0, units=(8,))
    learner = MetaSGD(model, inner_lr=0.1, lr_bounds=BOUNDS, inner_clip_norm=1.0)
    learner.compile(optimizer=keras.optimizers.Adam(10.0), loss="mse")
    record = _RecordRates()
    learner.fit(_data(), epochs=2, verbose=0, callbacks=[record])
    assert BOUNDS[0] <= record.low and record.high <= BOUNDS[1]
    rates = _rates(learner)
    assert np.isclose(rates, BOUNDS[0]).any() and np.isclose(rates, BOUNDS[1]).any(), (
        "the outer steps pushed rates against both bounds"
    )
    path = tmp_path / "meta_sgd.keras"
    learner.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.lr_bounds == BOUNDS
    record = _RecordRates()
    loaded.fit(_data(seed=1), epochs=1, verbose=0, callbacks=[record])
    assert BOUNDS[0] <= record.low and record.high <= BOUNDS[1], "the constraint was reloaded"
    support_x, support_y, *_ = next(iter(_data(seed=2)))
    adapted = loaded.adapt(support_x[0], support_y[0], steps=5)
    assert np.isfinite(adapted.predict(tf.convert_to_tensor(support_x[0]), verbose=0)).all()


PAIR = (
    r"lr_bounds expected a pair \(low, high\) of finite numbers with 0 <= low <= high\. "
    r"Received: lr_bounds="
)


@pytest.mark.parametrize(
    ("bounds", "match"),
    [
        ((0.3, 0.02), PAIR + r"\(0\.3, 0\.02\)"),
        ((-0.1, 0.3), PAIR + r"\(-0\.1, 0\.3\)"),
        ((0.0, 0.05), r"lr_bounds expected low <= inner_lr <= high\. Received: .*inner_lr=0\.1"),
        ((0.0, np.inf), PAIR + r"\(0\.0, inf\)"),
        ((np.nan, 0.3), PAIR + r"\(nan, 0\.3\)"),
        ((0.1,), PAIR + r"\(0\.1,\)"),
        ((0.0, 0.1, 0.2), PAIR + r"\(0\.0, 0\.1, 0\.2\)"),
        (None, PAIR + r"None"),
        (0.5, PAIR + r"0\.5"),
        (("low", "high"), PAIR + r"\('low', 'high'\)"),
    ],
)
def test_bounds_that_cannot_guard_are_refused(bounds, match):
    model = models.build("mlp", SHAPE, 1, seed=0, units=(4,))
    with pytest.raises(ValueError, match=match):
        MetaSGD(model, inner_lr=0.1, lr_bounds=bounds)
