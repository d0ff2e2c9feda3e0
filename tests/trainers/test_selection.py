"""Tests for ModelSelection and run_trial in metazoo.trainers.selection."""

import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from metazoo.data import PurgedKFold, WalkForward, make_windows
from metazoo.trainers.selection import ModelSelection
from metazoo.trainers.trial import TargetScaling, TrialSettings, run_trial
from tests.conftest import make_prices

FAST = {"epochs": 1, "batch_size": 16, "learning_rate": 1e-2, "verbose": 0}


def windows(n, target, lookback=10, seed=0, noise=0.05):
    """Windows `(n, lookback, 1)` of white noise and targets `target(X) + noise`."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, lookback, 1)).astype("float32")
    return X, target(X) + noise * rng.normal(size=n)


def dense_net(input_shape, output_dim, seed, width=4):
    """A build function candidate: one hidden layer on the flattened window."""
    inputs = keras.Input(input_shape)
    hidden = keras.layers.Dense(width, activation="tanh")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(output_dim)(hidden))


CANDIDATES = {"linear": {}, "mlp": {"units": [(4,)]}, "dense": (dense_net, {"width": [3]})}
CV = WalkForward(n_splits=2, test_size=20)


@pytest.fixture(scope="module")
def small():
    X, y = windows(80, lambda X: X[:, -1, 0])
    return X, y[:, None]


@pytest.fixture(scope="module")
def search(small):
    return ModelSelection(CANDIDATES, cv=CV, **FAST).fit(*small)


# --- choosing the right model ---------------------------------------------------------------


def test_picks_the_tcn_whose_receptive_field_reaches_the_signal():
    # The target is the input 7 steps back; dilations (1,) see 5 steps, (1, 2, 4) see 29.
    X, y = windows(400, lambda X: X[:, -7, 0])
    candidates = {"tcn": {"filters": [8], "dilations": [(1,), (1, 2, 4)]}}
    search = ModelSelection(
        candidates,
        cv=WalkForward(n_splits=1, test_size=150),
        epochs=8,
        batch_size=32,
        learning_rate=1e-2,
        refit=False,
        verbose=0,
    ).fit(X, y)
    assert search.best_params_ == {"dilations": (1, 2, 4), "filters": 8}
    short, long = search.cv_results_.set_index("param_dilations")["mean_score"]
    assert long < 0.2 * short, search.cv_results_


def test_picks_the_mlp_for_a_nonlinear_target():
    X, y = windows(400, lambda X: np.abs(X[:, -1, 0]))
    search = ModelSelection(
        {"linear": {}, "mlp": {"units": [(16,)]}},
        cv=WalkForward(n_splits=2, test_size=100),
        epochs=5,
        batch_size=32,
        learning_rate=2e-2,
        refit=False,
        verbose=0,
    ).fit(X, y)
    assert search.best_candidate_ == "mlp"
    scores = search.cv_results_.set_index("candidate")["mean_score"]
    assert scores["mlp"] < 0.7 * scores["linear"], search.cv_results_


# --- results --------------------------------------------------------------------------------


def test_cv_results_rows_columns_and_rank(search):
    results = search.cv_results_
    assert list(results.columns) == [
        "candidate",
        "params",
        "param_units",
        "param_width",
        "split0_score",
        "split1_score",
        "mean_score",
        "std_score",
        "rank",
        "mean_fit_time",
    ]
    assert results["candidate"].tolist() == ["linear", "mlp", "dense"]
    assert results["params"].tolist() == [{}, {"units": (4,)}, {"width": 3}]
    assert results["param_units"].tolist()[1] == (4,)
    assert pd.isna(results["param_units"][0]) and pd.isna(results["param_width"][1])
    splits = results[["split0_score", "split1_score"]].to_numpy()
    np.testing.assert_allclose(results["mean_score"], splits.mean(axis=1))
    np.testing.assert_allclose(results["std_score"], splits.std(axis=1))
    # mse: lower is better, rank 1 is the lowest mean score
    assert results["rank"].tolist() == list(results["mean_score"].rank(method="min").astype(int))
    assert search.best_index_ == int(results["mean_score"].to_numpy().argmin())
    best = results.iloc[search.best_index_]
    assert search.best_candidate_ == best["candidate"]
    assert search.best_params_ == best["params"]
    assert search.best_score_ == best["mean_score"]
    assert (results["mean_fit_time"] > 0).all()


def test_folds_are_those_of_the_splitter(search, small):
    expected = list(CV.split(small[0]))
    assert len(search.folds_) == len(expected)
    for (train, test), (want_train, want_test) in zip(search.folds_, expected, strict=True):
        np.testing.assert_array_equal(train, want_train)
        np.testing.assert_array_equal(test, want_test)


def test_split_score_equals_run_trial_by_hand(search, small):
    X, y = small
    train, test = search.folds_[1]
    settings = TrialSettings(epochs=1, batch_size=16, learning_rate=1e-2, seed=0, scoring="mse")
    result = run_trial("mlp", {"units": (4,)}, 1, train, test, X, y, settings)
    assert result["score"] == search.cv_results_["split1_score"][1]
    assert (result["n_train"], result["n_test"]) == (len(train), len(test))
    assert result["fit_time"] > 0


def negative_mse(y_true, y_pred):
    return -np.mean((y_true - y_pred) ** 2)


def test_same_seed_gives_identical_fits_and_greater_is_better_ranks(search, small):
    # The same fits scored by -mse, where higher is better: exactly negated, same order.
    candidates = {name: CANDIDATES[name] for name in ("mlp", "dense")}
    again = ModelSelection(
        candidates, cv=CV, scoring=negative_mse, greater_is_better=True, refit=False, **FAST
    ).fit(*small)
    before = search.cv_results_.iloc[1:]
    for column in ("split0_score", "split1_score", "mean_score"):
        np.testing.assert_array_equal(again.cv_results_[column], -before[column])
    assert again.cv_results_["rank"].tolist() == before["mean_score"].rank().astype(int).tolist()
    assert again.best_score_ == -before["mean_score"].min()


def test_refit_predicts_on_the_original_scale(search, small):
    X, y = small
    pred = search.predict(X[:7])
    assert pred.shape == (7, 1)
    np.testing.assert_allclose(search.target_scaling_.mean, y.mean(axis=0))
    # Targets given as (n,) give forecasts as (n,).
    flat = ModelSelection({"linear": {}}, cv=CV, **FAST).fit(X, y[:, 0])
    assert flat.predict(X[:5]).shape == (5,)


def test_target_scaling_round_trip_and_constant_columns():
    y = np.array([[1e-4, 3.0], [3e-4, 3.0], [2e-4, 3.0]])
    scaling = TargetScaling.fit(y)
    z = scaling.transform(y)
    np.testing.assert_allclose(z[:, 0], [-1.2247449, 1.2247449, 0.0], atol=1e-6)
    np.testing.assert_array_equal(z[:, 1], 0.0)  # a constant column is only centered
    np.testing.assert_allclose(scaling.inverse(z), y, rtol=1e-6)


# --- WindowSet input and leakage -------------------------------------------------------------


@pytest.fixture(scope="module")
def panel():
    return make_windows(make_prices(n_days=80), lookback=5, horizon=3)


def _calendar_positions(ws):
    calendar = np.unique(np.concatenate([ws.times, ws.label_end]))
    return np.searchsorted(calendar, ws.times), np.searchsorted(calendar, ws.label_end)


@pytest.mark.parametrize("cv", [PurgedKFold(n_splits=3, horizon=3, embargo=2), None])
def test_no_training_label_overlaps_a_test_label(panel, cv):
    search = ModelSelection({"linear": {}}, cv=cv, refit=False, **FAST).fit(panel)
    assert len(search.folds_) == 3
    if cv is None:  # the default for a WindowSet: walk-forward over its times and horizon
        default = WalkForward(n_splits=3, horizon=3).split(panel.X, groups=panel.times)
        for (train, _), (want, _) in zip(search.folds_, default, strict=True):
            np.testing.assert_array_equal(train, want)
    start, end = _calendar_positions(panel)
    for train, test in search.folds_:
        assert len(np.intersect1d(train, test)) == 0
        # A label covers the returns over (time, label_end]: no two such spans may overlap.
        disjoint = (end[train][:, None] <= start[test][None, :]) | (
            end[test][None, :] <= start[train][:, None]
        )
        assert disjoint.all()
        after = train[start[train] > start[test].max()]
        if len(after):  # the embargo: 2 more dates after the last test label ends
            assert start[after].min() >= end[test].max() + 2


# --- TensorBoard ----------------------------------------------------------------------------


def _plugins(path):
    accumulator = event_accumulator.EventAccumulator(str(path))
    accumulator.Reload()
    return accumulator


def test_log_dir_has_a_run_per_trial_and_fold_with_hparams(small, tmp_path, capsys):
    X, y = small
    candidates = {"mlp": {"units": [(4,)]}, "dense": (dense_net, {"width": [2]})}
    ModelSelection(candidates, cv=CV, refit=False, log_dir=tmp_path, **{**FAST, "verbose": 1}).fit(
        X, y
    )
    assert "4/4" in capsys.readouterr().out  # the progress bar over trials x folds
    root = _plugins(tmp_path)
    assert "_hparams_/experiment" in root.PluginTagToContent("hparams")
    for trial in ("trial_000", "trial_001"):
        for fold in ("fold_0", "fold_1"):
            run = tmp_path / trial / fold
            assert any(run.glob("events.out.tfevents*"))
            assert any((run / "train").glob("events.out.tfevents*"))  # keras TensorBoard
            accumulator = _plugins(run)
            content = accumulator.PluginTagToContent("hparams")["_hparams_/session_start_info"]
            hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
            assert "cv_score" in accumulator.Tags()["tensors"]
            if trial == "trial_000":
                assert hparams.hparams["model"].string_value == "mlp"
                assert hparams.hparams["units"].string_value == "(4,)"  # tuples as strings
            else:
                assert hparams.hparams["model"].string_value == "dense_net"
                assert hparams.hparams["width"].number_value == 2


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"candidates": {}}, r"non-empty dict .*Received: candidates=\{\}"),
        ({"candidates": {"lstmm": {}}}, r"Unknown zoo model .*'lstm'.*Received: 'lstmm'"),
        (
            {"candidates": {"mlp": {"unit": [8]}}},
            r"candidate 'mlp'; it takes \['activation', 'dropout', 'units'\]. "
            r"Received: \['unit'\]",
        ),
        (
            {"candidates": {"net": (dense_net, {"depth": [2]})}},
            r"candidate 'net'; it takes \['width'\]. Received: \['depth'\]",
        ),
        ({"scoring": "r2"}, r"Unknown scoring; .*Received: scoring='r2'"),
        ({"epochs": 0}, r"epochs expected an integer >= 1. Received: epochs=0"),
        (
            {"learning_rate": 0.0},
            r"learning_rate expected a finite number > 0. Received: learning_rate=0.0",
        ),
        (
            {"cv": WalkForward(n_splits=1, test_size=79)},
            r"at least 2 training .*Received: fold 0 with n_train=1, n_test=79",
        ),
    ],
)
def test_invalid_settings_are_refused_before_training(small, kwargs, match):
    settings = {"candidates": {"linear": {}}, **FAST, **kwargs}
    with pytest.raises(ValueError, match=match):
        ModelSelection(**settings).fit(*small)


def test_invalid_data_is_refused(small):
    X, y = small
    selection = ModelSelection({"linear": {}}, **FAST)
    with pytest.raises(ValueError, match=r"Received: X.shape=\(80, 10, 1\), y.shape=\(79, 1\)"):
        selection.fit(X, y[:-1])
    with pytest.raises(
        ValueError, match=r"\(n, lookback, n_features\). Received: X.shape=\(80, 10\)"
    ):
        selection.fit(X[..., 0], y)
    with pytest.raises(
        ValueError, match=r"y is required unless X is a WindowSet. Received: y=None"
    ):
        selection.fit(X)
    with pytest.raises(ValueError, match=r"finite values. Received: NaN"):
        selection.fit(X, np.where(np.arange(80)[:, None] == 3, np.nan, y))


def test_predict_needs_a_refitted_model(search, small):
    X, y = small
    assert clone(search).get_params()["candidates"] == CANDIDATES  # estimator conventions
    assert not hasattr(clone(search), "best_model_")
    with pytest.raises(NotFittedError, match=r"call fit"):
        ModelSelection({"linear": {}}).predict(X)
    no_refit = ModelSelection({"linear": {}}, cv=CV, refit=False, **FAST).fit(X, y)
    with pytest.raises(NotFittedError, match=r"refit=False keeps no model"):
        no_refit.predict(X)
    with pytest.raises(ValueError, match=r"Received: X.shape=\(80, 9, 1\)"):
        search.predict(X[:, 1:])


# --- parallel trials ------------------------------------------------------------------------


def test_results_do_not_depend_on_n_jobs(search, small):
    # Two worker processes, one fold each; the same scores as the fits in this process.
    parallel = ModelSelection({"linear": {}}, cv=CV, n_jobs=2, refit=False, **FAST).fit(*small)
    columns = ["split0_score", "split1_score"]
    np.testing.assert_array_equal(
        parallel.cv_results_[columns].to_numpy()[0], search.cv_results_[columns].to_numpy()[0]
    )


def test_repeated_in_process_fits_leave_nothing_in_tensorflows_function_library():
    # Adam's slots made inside the first traced step left their initializers in the
    # process-wide function library, ~4 MiB per fit (scripts/selection_memory.py).
    import gc

    from tensorflow.python.eager import context

    def library_size():
        gc.collect()  # the fitted models and their compiled steps
        return len(context.context().list_function_names())

    X, y = windows(60, lambda X: X[:, -1, 0])
    search = ModelSelection({"mlp": {"units": [(4,)]}}, cv=CV, refit=False, **FAST)
    search.fit(X, y)
    before = library_size()
    search.fit(X, y)
    search.fit(X, y)
    assert library_size() == before
