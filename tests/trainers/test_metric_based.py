import keras
import numpy as np
import pytest

from metazoo import models
from metazoo.trainers import ExpertPrototypes
from tests.trainers import amortized_checks as checks

VARIANTS = {
    "frozen": {},
    "agreement_lstm": {"agreement_weight": 0.1, "encoder": "lstm"},
    "refit_heads_joint": {"refit_heads": 1.0, "train_members": True},
}


def _learner(variant="frozen", **kwargs):
    keras.utils.set_random_seed(0)
    learner = ExpertPrototypes(
        checks.experts(), embedding_units=8, sample_units=16, **(VARIANTS[variant] | kwargs)
    )
    learner.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return learner


def _member_predictions(learner, batch):
    flat = batch.query_x.reshape(-1, *checks.SHAPE)
    return np.stack(
        [m.predict(flat, verbose=0).reshape(batch.query_y.shape) for m in learner.members]
    )


def test_weights_are_a_softmax_of_distances_to_the_prototypes():
    batch = checks.small_batch()
    learner = _learner(temperature=2.0)
    learner.fit(checks.dataset([batch]), epochs=1, verbose=0)
    embeddings = learner.embed_tasks(batch)
    distances = ((embeddings[:, None, :] - learner.prototypes.numpy()[None]) ** 2).sum(-1)
    logits = -distances / 2.0
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    weights = learner.member_weights(batch)
    np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-6)
    combined = np.einsum("tm,mtqo->tqo", weights, _member_predictions(learner, batch))
    np.testing.assert_allclose(learner.predict_tasks(batch), combined, rtol=1e-5, atol=1e-6)


def test_frozen_experts_stay_fixed_and_joint_experts_train():
    data = checks.dataset([checks.small_batch(seed=s) for s in range(2)])
    frozen = _learner()
    before = [m.get_weights() for m in frozen.members]
    frozen.fit(data, epochs=1, verbose=0)
    for weights, member in zip(before, frozen.members, strict=True):
        for a, b in zip(weights, member.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    assert not any(m.trainable for m in frozen.members)
    joint = _learner(train_members=True)
    joint.fit(data, epochs=1, verbose=0)
    assert any(
        not np.array_equal(a, b)
        for weights, member in zip(before, joint.members, strict=True)
        for a, b in zip(weights, member.get_weights(), strict=True)
    )


def test_refitted_heads_are_ridge_solutions_shrunk_towards_the_trained_heads():
    batch = checks.small_batch()
    learner = _learner("refit_heads_joint", refit_heads=0.5)
    context = learner.task_context(batch.support_x, batch.support_y)
    for member, refit in zip(learner.members, context["heads"], strict=True):
        kernel, bias = member.get_layer("head").get_weights()
        prior = np.vstack([kernel, bias[None]])
        for t in range(batch.n_tasks):
            features = np.c_[batch.support_x[t].reshape(len(batch.support_x[t]), -1), np.ones(6)]
            gram = features.T @ features + 0.5 * np.eye(len(prior))
            expected = np.linalg.solve(gram, features.T @ batch.support_y[t] + 0.5 * prior)
            np.testing.assert_allclose(refit[t], expected, rtol=1e-4, atol=1e-5)
    # Refitted experts fit the support set better than the experts as trained.
    plain = _learner()
    support = batch._replace(query_x=batch.support_x, query_y=batch.support_y)
    refit_errors = learner.auxiliary(
        context, support, learner.query_outputs(context, batch.support_x)
    )[1]
    plain_context = plain.task_context(batch.support_x, batch.support_y)
    plain_errors = plain.auxiliary(
        plain_context, support, plain.query_outputs(plain_context, batch.support_x)
    )[1]
    for i in range(len(learner.members)):
        assert float(refit_errors[f"member_{i}_loss"]) < float(plain_errors[f"member_{i}_loss"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_adapt_is_one_forward_pass(variant):
    checks.check_adapt_is_one_forward_pass(_learner(variant), checks.small_batch())


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradients_reach_every_meta_parameter(variant):
    checks.check_gradients_reach_every_meta_parameter(_learner(variant), checks.small_batch())


@pytest.mark.parametrize("variant", VARIANTS)
def test_save_and_load(variant, tmp_path):
    checks.check_save_and_load(
        lambda: _learner(variant), checks.small_batch(), tmp_path / "learner.keras"
    )


def test_backup_and_restore_resumes_to_the_same_weights(tmp_path):
    checks.check_backup_and_restore(lambda: _learner("agreement_lstm"), tmp_path / "backup")


def test_fit_logs_each_expert_the_weight_entropy_and_the_agreement_term():
    learner = _learner("agreement_lstm")
    data = checks.dataset([checks.small_batch(seed=s) for s in range(2)])
    history = learner.fit(data, validation_data=data, epochs=2, verbose=0).history
    names = {"loss", "weight_entropy", "agreement_loss", *(f"member_{i}_loss" for i in range(3))}
    assert names | {f"val_{n}" for n in names} <= set(history)
    assert 0 <= history["weight_entropy"][-1] <= np.log(3) + 1e-6


def test_bad_arguments_and_inputs():
    members = checks.experts()
    with pytest.raises(ValueError, match="at least 2 built Keras models"):
        ExpertPrototypes(members[:1])
    other = models.build("linear", (3, 1), 1)
    with pytest.raises(ValueError, match="must share input and output shapes"):
        ExpertPrototypes([members[0], other])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        ExpertPrototypes(members, temperature=0.0)
    with pytest.raises(ValueError, match="agreement_weight must be >= 0"):
        ExpertPrototypes(members, agreement_weight=-1.0)
    with pytest.raises(ValueError, match="refit_heads must be > 0 or None"):
        ExpertPrototypes(members, refit_heads=0.0)
    inputs = keras.Input(checks.SHAPE)
    squashed = keras.layers.Dense(1, activation="tanh", name="head")(keras.layers.Flatten()(inputs))
    with pytest.raises(ValueError, match="refit_heads needs linear heads"):
        ExpertPrototypes([members[0], keras.Model(inputs, squashed)], refit_heads=1.0)
    checks.check_bad_inputs(_learner())


@pytest.mark.parametrize("variant", ["frozen", "agreement_lstm"])
def test_expert_prototypes_beat_pooled_and_scratch_training_on_regime_tasks(variant):
    """Experts pre-trained on one regime each (as members trained on different periods
    would be) and a pooled expert: weighted by the similarity of a new task's K=8
    observations to the learned prototypes, they beat a pooled model and a model trained
    from scratch on the 8 observations."""
    checks.check_evidence(_learner(variant), support_size=8)
