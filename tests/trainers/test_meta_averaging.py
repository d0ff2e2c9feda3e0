import keras
import numpy as np
import pytest
from scipy import stats

from metazoo.trainers import MetaLearnedAveraging, task_features
from metazoo.trainers.meta_averaging import TASK_FEATURES
from tests.trainers import amortized_checks as checks


def _learner(**kwargs):
    keras.utils.set_random_seed(0)
    learner = MetaLearnedAveraging(checks.experts(), **kwargs)
    learner.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return learner


def test_task_features_match_their_definitions():
    rng = np.random.default_rng(0)
    y = rng.standard_t(5, size=(4, 30, 2)).astype("float32") * 0.02 + 0.001
    features = np.asarray(task_features(y)).reshape(4, 2, len(TASK_FEATURES))
    for t in range(4):
        for j in range(2):
            series = y[t, :, j].astype("float64")
            c = series - series.mean()
            expected = {
                "mean": series.mean(),
                "log_volatility": np.log(np.sqrt(np.mean(series**2))),
                "autocorrelation": (c[1:] * c[:-1]).sum() / (c**2).sum(),
                "skewness": stats.skew(series),
                "log_kurtosis": np.log(stats.kurtosis(series, fisher=False)),
                "trend": np.corrcoef(np.arange(30), series)[0, 1],
            }
            got = dict(zip(TASK_FEATURES, features[t, j], strict=True))
            for name, value in expected.items():
                assert got[name] == pytest.approx(value, rel=1e-3, abs=1e-5), name


def test_task_features_of_one_sample_or_a_flat_series_are_finite():
    assert np.isfinite(np.asarray(task_features(np.ones((2, 1, 1), "float32")))).all()
    assert np.isfinite(np.asarray(task_features(np.zeros((2, 5, 1), "float32")))).all()


def test_untrained_learner_is_the_uniform_average():
    batch = checks.small_batch()
    learner = _learner()
    np.testing.assert_allclose(learner.member_weights(batch), np.full((3, 3), 1 / 3), rtol=1e-6)
    flat = batch.query_x.reshape(-1, *checks.SHAPE)
    uniform = np.mean([m.predict(flat, verbose=0) for m in learner.members], axis=0).reshape(
        batch.query_y.shape
    )
    np.testing.assert_allclose(learner.predict_tasks(batch), uniform, rtol=1e-5, atol=1e-6)


def test_weights_depend_only_on_the_support_targets():
    batch = checks.small_batch()
    learner = _learner()
    learner.fit(checks.dataset([batch] * 3), epochs=1, verbose=0)
    noisy = batch._replace(support_x=batch.support_x + 1.0)
    np.testing.assert_array_equal(learner.member_weights(noisy), learner.member_weights(batch))
    assert learner.embed_tasks(batch).shape == (3, len(learner.feature_names))


def test_frozen_members_stay_fixed_and_joint_members_train():
    data = checks.dataset([checks.small_batch(seed=s) for s in range(2)])
    frozen = _learner()
    before = [m.get_weights() for m in frozen.members]
    frozen.fit(data, epochs=1, verbose=0)
    for weights, member in zip(before, frozen.members, strict=True):
        for a, b in zip(weights, member.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    joint = _learner(train_members=True)
    joint.fit(data, epochs=1, verbose=0)
    assert all(
        not np.array_equal(weights[0], member.get_weights()[0])
        for weights, member in zip(before, joint.members, strict=True)
    )


def test_adapt_is_one_forward_pass():
    checks.check_adapt_is_one_forward_pass(_learner(hidden_units=(8, 8)), checks.small_batch())


def test_gradients_reach_every_meta_parameter():
    checks.check_gradients_reach_every_meta_parameter(_learner(), checks.small_batch())


@pytest.mark.parametrize("kwargs", [{}, {"hidden_units": (), "train_members": True}])
def test_save_and_load(kwargs, tmp_path):
    checks.check_save_and_load(
        lambda: _learner(**kwargs), checks.small_batch(), tmp_path / "learner.keras"
    )


def test_backup_and_restore_resumes_to_the_same_weights(tmp_path):
    checks.check_backup_and_restore(_learner, tmp_path / "backup")


def test_fit_logs_each_member_and_the_weight_entropy():
    data = checks.dataset([checks.small_batch(seed=s) for s in range(2)])
    history = _learner().fit(data, validation_data=data, epochs=2, verbose=0).history
    names = {"loss", "weight_entropy", *(f"member_{i}_loss" for i in range(3))}
    assert names | {f"val_{n}" for n in names} <= set(history)
    assert history["weight_entropy"][0] == pytest.approx(np.log(3), abs=0.05)


def test_bad_arguments_and_inputs():
    members = checks.experts()
    with pytest.raises(ValueError, match="at least 2 built Keras models"):
        MetaLearnedAveraging(members[:1])
    with pytest.raises(ValueError, match="hidden_units must be positive integers"):
        MetaLearnedAveraging(members, hidden_units=(0,))
    checks.check_bad_inputs(_learner())


def test_meta_learned_averaging_beats_pooled_and_scratch_training_on_regime_tasks():
    """Members pre-trained on one regime each and a pooled member, averaged with weights
    read from the features of a new task's K=8 support targets (its lag-1 autocorrelation
    tells the regime), beat a pooled model and a model trained from scratch on the 8."""
    checks.check_evidence(_learner(), support_size=8)
