import keras
import numpy as np
import pytest
import tensorflow as tf

from metazoo import models
from metazoo.data import WalkForward
from metazoo.trainers import ModelAveraging, inverse_error_weights, stacking_weights

SHAPE = (6, 2)


def _data(n=160, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *SHAPE)).astype("float32")
    y = (np.sin(2 * x[:, -1, :1]) + 0.3 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def _members(seeds=(0, 1, 2)):
    return [models.build("mlp", SHAPE, 1, seed=s, units=(8,)) for s in seeds]


def _fit(ensemble, x, y, epochs=3, **kwargs):
    ensemble.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return ensemble.fit(x, y, epochs=epochs, batch_size=32, shuffle=False, verbose=0, **kwargs)


def test_uniform_ensemble_is_the_member_mean_and_beats_the_average_member():
    x, y = _data()
    ensemble = ModelAveraging(_members())
    _fit(ensemble, x[:120], y[:120])
    members = np.stack([m.predict(x[120:], verbose=0) for m in ensemble.members])
    combined = ensemble.predict(x[120:], verbose=0)
    np.testing.assert_allclose(combined, members.mean(axis=0), rtol=1e-5, atol=1e-6)
    # Ambiguity decomposition (Krogh and Vedelsby 1995): ensemble error equals the average
    # member error minus the members' spread around the ensemble.
    member_mse = ((members - y[120:]) ** 2).mean(axis=(1, 2))
    spread = ((members - combined) ** 2).mean()
    ensemble_mse = ((combined - y[120:]) ** 2).mean()
    assert ensemble_mse == pytest.approx(member_mse.mean() - spread, rel=1e-4)
    assert spread > 1e-4 and ensemble_mse < member_mse.mean()


@pytest.mark.parametrize("weighting", ["uniform", "learned"])
def test_members_train_as_if_alone(weighting):
    """One Keras fit trains every member exactly as its own fit would."""
    x, y = _data()
    ensemble = ModelAveraging(_members(), weighting=weighting)
    _fit(ensemble, x, y)
    for seed, member in zip((0, 1, 2), ensemble.members, strict=True):
        alone = models.build("mlp", SHAPE, 1, seed=seed, units=(8,))
        alone.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
        alone.fit(x, y, epochs=3, batch_size=32, shuffle=False, verbose=0)
        for a, b in zip(alone.get_weights(), member.get_weights(), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_logs_hold_each_member_and_the_ensemble(tmp_path):
    x, y = _data()
    ensemble = ModelAveraging(_members((0, 1)))
    history = _fit(
        ensemble,
        x[:120],
        y[:120],
        validation_data=(x[120:], y[120:]),
        callbacks=[keras.callbacks.TensorBoard(log_dir=str(tmp_path))],
    )
    assert {"loss", "member_0_loss", "member_1_loss", "val_loss", "val_member_1_loss"} <= set(
        history.history
    )
    results = ensemble.evaluate(x[120:], y[120:], verbose=0, return_dict=True)
    assert results["loss"] == pytest.approx(history.history["val_loss"][-1], rel=1e-5)
    tags = set()
    for path in (tmp_path / "validation").glob("events.out.tfevents*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags |= {value.tag for value in event.summary.value}
    assert {"epoch_loss", "epoch_member_0_loss", "epoch_member_1_loss"} <= tags


def test_inverse_error_weights_come_from_the_final_members_on_validation_data():
    x, y = _data()
    ensemble = ModelAveraging(_members(), weighting="inverse_error", power=2.0)
    stop = keras.callbacks.EarlyStopping(
        monitor="val_member_0_loss", mode="min", patience=0, restore_best_weights=True
    )
    _fit(ensemble, x[:120], y[:120], epochs=6, validation_data=(x[120:], y[120:]), callbacks=[stop])
    members = np.stack([m.predict(x[120:], verbose=0) for m in ensemble.members])
    errors = ((members - y[120:]) ** 2).mean(axis=(1, 2))
    expected = errors**-2 / (errors**-2).sum()
    np.testing.assert_allclose(ensemble.weights_vector(), expected, rtol=1e-4)
    with pytest.raises(ValueError, match="needs validation_data"):
        _fit(ModelAveraging(_members(), weighting="inverse_error"), x, y, epochs=1)


def test_stacking_weights_recover_a_known_combination():
    rng = np.random.default_rng(0)
    forecasts = rng.normal(size=(3, 200, 2))
    targets = 0.7 * forecasts[0] + 0.3 * forecasts[2]
    weights, intercept = stacking_weights(forecasts, targets, "nnls")
    np.testing.assert_allclose(weights, [0.7, 0.0, 0.3], atol=1e-6)
    assert intercept == 0.0
    weights, intercept = stacking_weights(forecasts, targets + 0.5, "ridge", alpha=1e-6)
    np.testing.assert_allclose(weights, [0.7, 0.0, 0.3], atol=1e-4)
    assert intercept == pytest.approx(0.5, abs=1e-4)


class _RecordingSplitter(WalkForward):
    def split(self, X, y=None, groups=None):
        self.folds = list(super().split(X, y, groups))
        yield from self.folds


def test_stacking_fits_on_out_of_fold_forecasts_of_walk_forward_folds(tmp_path):
    x, y = _data()
    members = _members((0, 1)) + [models.build("linear", SHAPE, 1, seed=3)]
    splitter = _RecordingSplitter(n_splits=2)
    ensemble = ModelAveraging(members, weighting="stacking", cv=splitter, stacker="ridge")
    _fit(ensemble, x, y, epochs=2)
    assert len(splitter.folds) == 2
    for train, test in splitter.folds:
        assert train.max() < test.min()  # forecasts are always out of sample and later
    weights = ensemble.weights_vector().numpy()
    assert not np.allclose(weights, 1 / 3)
    assert ensemble.intercept.numpy()[0] != 0.0  # ridge fits an intercept
    ensemble.save(tmp_path / "stacked.keras")
    loaded = keras.saving.load_model(tmp_path / "stacked.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), ensemble.predict(x, verbose=0))
    with pytest.raises(ValueError, match="needs NumPy arrays"):
        _fit(
            ModelAveraging(_members(), weighting="stacking"),
            tf.data.Dataset.from_tensor_slices((x, y)).batch(16),
            None,
        )


def test_learned_weights_move_and_sum_to_one():
    x, y = _data()
    members = _members((0, 1)) + [models.build("linear", SHAPE, 1, seed=3)]
    ensemble = ModelAveraging(members, weighting="learned")
    _fit(ensemble, x, y, epochs=5)
    weights = ensemble.weights_vector().numpy()
    assert weights.sum() == pytest.approx(1.0, rel=1e-6)
    assert not np.allclose(weights, 1 / 3, atol=1e-3)
    assert weights[2] < weights[:2].min()  # the linear member cannot fit sin(2x)


def test_joint_training_lets_the_ensemble_loss_reach_the_members():
    x, y = _data()
    alone = ModelAveraging(_members((0, 1)), weighting="learned")
    joint = ModelAveraging(_members((0, 1)), weighting="learned", joint=True)
    _fit(alone, x, y)
    _fit(joint, x, y)
    assert not np.allclose(alone.members[0].get_weights()[0], joint.members[0].get_weights()[0])


@pytest.mark.parametrize("weighting", ["uniform", "inverse_error", "learned"])
def test_save_and_load_predict_the_same(weighting, tmp_path):
    x, y = _data()
    ensemble = ModelAveraging(_members((0, 1)), weighting=weighting, cv=WalkForward(n_splits=2))
    _fit(ensemble, x[:120], y[:120], epochs=2, validation_data=(x[120:], y[120:]))
    path = tmp_path / "ensemble.keras"
    ensemble.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), ensemble.predict(x, verbose=0))
    np.testing.assert_array_equal(loaded.weights_vector(), ensemble.weights_vector())
    assert loaded.weighting == weighting
    # compiled on load and still trainable
    loaded.fit(x[:120], y[:120], validation_data=(x[120:], y[120:]), epochs=1, verbose=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least 2 members"):
        ModelAveraging(_members((0,)))
    other = models.build("mlp", (5, 2), 1, seed=0)
    with pytest.raises(ValueError, match="share input and output shapes"):
        ModelAveraging([*_members((0,)), other])
    with pytest.raises(ValueError, match="weighting must be one of"):
        ModelAveraging(_members(), weighting="median")
    with pytest.raises(ValueError, match="stacker must be one of"):
        ModelAveraging(_members(), stacker="lasso")
    with pytest.raises(ValueError, match="finite and positive"):
        inverse_error_weights([0.1, 0.0])
