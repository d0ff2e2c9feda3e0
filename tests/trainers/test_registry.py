"""One harness over every few-shot learner of the registry: a finite step, safe-mode
saving, `BackupAndRestore`, clear errors, non-finite meta-batches refused or skipped,
`adapt` leaving the meta-parameters alone, and gradients reaching every meta-parameter."""

import keras
import numpy as np
import pytest

from metazoo.trainers import EpisodicModel, registry
from tests.common import (
    assert_same_state,
    episode_batch,
    episode_dataset,
    few_shot_names,
    make_trainer,
    state_of,
    with_nan,
)

NAMES = few_shot_names()
META_TRAINED = [n for n in NAMES if registry.get(n).trains_on != "nothing"]
# The amortized learners start conditioning as the identity (zero-initialized generators),
# so their encoders get no gradient in the first steps; their own tests cover training.
GRADIENT_CHECKED = [
    n for n in META_TRAINED if n not in ("context", "context_memory", "meta_averaging")
]
# The learners by family, the base class whose steps they share. The guards against
# non-finite meta-batches live in `EpisodicModel` and wrap a family's step the same way for
# every member, so those checks run on the first member of each family; the checks of what
# each learner defines itself (its step, `adapt`, config, saved state) run on every learner.
_FAMILIES = (
    "PooledTraining",
    "Scratch",
    "GradientMetaLearner",
    "AmortizedEnsemble",
    "AmortizedMetaLearner",
)


def family(name) -> str:
    bases = {cls.__name__ for cls in registry.get(name).cls.__mro__}
    return next(f for f in _FAMILIES if f in bases)


ONE_PER_FAMILY = list({family(n): n for n in reversed(NAMES)}.values())[::-1]


def test_registry_lists_every_learner_once_with_its_needs():
    assert NAMES == [
        "pooled", "finetune", "scratch", "maml", "fomaml", "reptile", "meta_sgd", "anil",
        "context", "context_memory", "prototypes", "meta_averaging",
    ]  # fmt: skip
    assert registry.available(few_shot=False) == ["averaging"]
    assert registry.get("fomaml").defaults == {"first_order": True}
    assert registry.get("prototypes").needs == "experts"
    assert ONE_PER_FAMILY == ["pooled", "scratch", "maml", "context", "prototypes"]
    assert {family(n) for n in NAMES} == set(_FAMILIES)  # every learner has a family
    with pytest.raises(ValueError, match="name expected one of"):
        registry.get("nope")
    with pytest.raises(ValueError, match="already registered|registered"):
        registry.register("maml", "metazoo.trainers.maml:MAML")


@pytest.mark.parametrize("name", NAMES)
def test_one_finite_step_and_the_contract(name):
    learner = make_trainer(name)
    assert isinstance(learner, EpisodicModel)
    batch = episode_batch()
    logs = learner.train_on_batch(tuple(batch), return_dict=True)
    assert np.isfinite(logs["loss"])
    predictions = learner.predict_tasks(batch)
    assert predictions.shape == batch.query_y.shape and np.isfinite(predictions).all()
    adapted = learner.adapt(batch.support_x[0], batch.support_y[0])
    np.testing.assert_allclose(
        adapted.predict(batch.query_x[0], verbose=0), predictions[0], rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("name", NAMES)
def test_adapt_leaves_the_meta_parameters_untouched(name):
    learner = make_trainer(name)
    batch = episode_batch()
    before = [keras.ops.convert_to_numpy(v) for v in learner.weights]
    learner.adapt(batch.support_x[0], batch.support_y[0])
    learner.predict_tasks(batch)
    assert_same_state(before, [keras.ops.convert_to_numpy(v) for v in learner.weights])


@pytest.mark.parametrize("name", GRADIENT_CHECKED)
def test_gradients_reach_every_meta_parameter(name):
    learner = make_trainer(name)
    before = [keras.ops.convert_to_numpy(v) for v in learner.trainable_variables]
    for seed in range(3):  # zero-initialized generators pass gradients on from step 2
        learner.train_on_batch(tuple(episode_batch(seed=seed)))
    after = [keras.ops.convert_to_numpy(v) for v in learner.trainable_variables]
    frozen = [
        v.path for v, a, b in zip(learner.trainable_variables, before, after, strict=True)
        if np.array_equal(a, b)
    ]  # fmt: skip
    assert not frozen, frozen


@pytest.mark.parametrize("name", NAMES)
def test_safe_mode_save_and_load_predicts_the_same(name, tmp_path):
    learner = make_trainer(name)
    batch = episode_batch()
    learner.fit(episode_dataset([batch, episode_batch(seed=1)]), epochs=1, verbose=0)
    path = tmp_path / f"{name}.keras"
    learner.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(learner)
    np.testing.assert_allclose(loaded.predict_tasks(batch), learner.predict_tasks(batch), rtol=1e-6)


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("interrupted")


@pytest.mark.parametrize("name", META_TRAINED)
def test_backup_and_restore_resumes_to_the_uninterrupted_weights(name, tmp_path):
    data = episode_dataset([episode_batch(seed=s) for s in range(2)])
    reference = make_trainer(name)
    reference.fit(data, epochs=2, verbose=0)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="interrupted"):
        make_trainer(name).fit(data, epochs=2, verbose=0, callbacks=[backup, _Interrupt()])
    resumed = make_trainer(name)
    resumed.fit(data, epochs=2, verbose=0, callbacks=[backup])
    for a, b in zip(reference.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_clear_errors(name):
    learner = make_trainer(name)
    batch = episode_batch()
    with pytest.raises(ValueError, match=r"meta-batches \(support_x"):
        learner.train_on_batch(tuple(batch)[:3])
    wrong = batch._replace(support_x=batch.support_x[..., :1], query_x=batch.query_x[..., :1])
    with pytest.raises(ValueError, match=r"samples x \(3, 2\) and y \(1,\)"):
        learner.train_on_batch(tuple(wrong))
    with pytest.raises(ValueError, match="support_x must be finite"):
        learner.adapt(with_nan(batch).support_x[0], batch.support_y[0])
    if learner.jit_refused:  # XLA cannot compile meta-training steps
        with pytest.raises(ValueError, match="jit_compile expected False or 'auto'"):
            learner.compile(loss="mse", jit_compile=True)
    with pytest.raises(ValueError, match="nonfinite expected one of"):
        learner.compile(loss="mse", nonfinite="ignore")


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
@pytest.mark.parametrize("part", ["support_x", "query_y"])
def test_a_nonfinite_meta_batch_is_refused_before_any_weight_changes(name, part):
    learner = make_trainer(name)
    bad = with_nan(episode_batch(), part)
    before = state_of(learner)
    with pytest.raises(ValueError, match=f"{part}.*expected finite values"):
        learner.train_on_batch(tuple(bad))
    for call in (
        lambda: learner.fit(episode_dataset([episode_batch(seed=1), bad]), verbose=0),
        lambda: learner.evaluate(episode_dataset([bad]), verbose=0),
    ):
        with pytest.raises(ValueError, match="refused before any weight changed"):
            call()
    if registry.get(name).trains_on == "nothing":
        assert_same_state(before, state_of(learner))
    else:  # the first, finite batch of `fit` trained; the NaN batch changed nothing after it
        reference = make_trainer(name)
        reference.train_on_batch(tuple(episode_batch(seed=1)))
        for a, b in zip(reference.get_weights(), learner.get_weights(), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
            assert np.isfinite(b).all()


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_skip_mode_skips_counts_and_leaves_weights_and_optimizer_alone(name):
    good = [episode_batch(seed=s) for s in range(2)]
    bad = with_nan(episode_batch(seed=5), "query_x")
    skipping = make_trainer(name, nonfinite="skip")
    history = skipping.fit(episode_dataset([good[0], bad, good[1]]), verbose=0)
    assert history.history["skipped_batches"] == [1.0]
    assert skipping.n_skipped == 1
    reference = make_trainer(name)
    reference.fit(episode_dataset(good), verbose=0)
    # The same updates (to rounding: the step runs inside a conditional), the same counts.
    for a, b in zip(state_of(reference), state_of(skipping), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    before = state_of(skipping)
    skipping.train_on_batch(tuple(bad))
    assert skipping.n_skipped == 2
    assert_same_state(before, state_of(skipping))
