"""The experiment protocol on small synthetic prices: no look-ahead, determinism, outputs."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from metazoo.experiment import ExperimentConfig, load_config, run_experiment
from tests.conftest import make_prices

SYMBOLS = ("AAA", "BBB", "CCC")


def tiny_config(path, **overrides) -> ExperimentConfig:
    settings = dict(
        data=str(path),
        targets=["return"],
        lookback=5,
        test_start="2021-01-01",
        held_out=["CCC"],
        support_size=10,
        query_size=10,
        learners=["pooled", "finetune", "scratch", "maml"],
        baselines=["zero", "historical_mean", "support_mean", "linear_lags"],
        meta_batch_size=4,
        meta_steps=5,
        pooled_epochs=1,
        scratch_steps=5,
        adapt_steps=2,
        seed=3,
    )
    return ExperimentConfig(**(settings | overrides))


@pytest.fixture(scope="module")
def price_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("prices") / "prices.csv"
    make_prices(420, symbols=SYMBOLS, seed=1).to_csv(path, index=False)
    return path


def forecasts(result) -> pd.DataFrame:
    columns = ["target", "fold", "eval_set", "model", "date", "symbol", "pred_1"]
    return result.predictions[columns].sort_values(columns[:6]).reset_index(drop=True)


def test_changing_prices_after_a_date_leaves_every_earlier_forecast_unchanged(price_file, tmp_path):
    config = tiny_config(price_file)
    before = forecasts(run_experiment(config, write=False))
    cut = pd.Timestamp("2021-03-31")
    prices = pd.read_csv(price_file, parse_dates=["date"])
    later = prices["date"] > cut
    for column in ("open", "high", "low", "close"):
        prices.loc[later, column] *= np.exp(np.linspace(0.0, 0.5, later.sum()))
    prices.loc[later, "volume"] *= 3
    changed_file = tmp_path / "changed.csv"
    prices.to_csv(changed_file, index=False)
    after = forecasts(run_experiment(tiny_config(changed_file), write=False))

    early = before["date"] <= cut
    assert early.sum() > 50 and set(before.loc[early, "eval_set"]) == {
        "later_periods",
        "held_out_assets",
    }
    assert set(before.loc[early, "model"]) >= {"pooled:mlp", "maml:mlp", "linear_lags"}
    pd.testing.assert_frame_equal(
        before[early].reset_index(drop=True), after[after["date"] <= cut].reset_index(drop=True)
    )
    # ...and the change does reach the later forecasts, so the check has teeth.
    late = before[~early].merge(after, on=list(before.columns[:6]), suffixes=("", "_new"))
    assert not np.allclose(late["pred_1"], late["pred_1_new"])


def test_same_seed_same_leaderboard_and_another_seed_differs(price_file):
    config = tiny_config(price_file, learners=["pooled", "maml"], baselines=["zero"])
    first = run_experiment(config, write=False).leaderboard
    again = run_experiment(config, write=False).leaderboard
    pd.testing.assert_frame_equal(first, again)
    other = run_experiment(tiny_config(price_file, seed=4, learners=["pooled"]), write=False)
    mine = first.set_index(["eval_set", "model"])["mse"]
    theirs = other.leaderboard.set_index(["eval_set", "model"])["mse"]
    assert mine[("held_out_assets", "pooled:mlp")] != theirs[("held_out_assets", "pooled:mlp")]


def test_training_never_sees_the_held_out_asset_or_the_evaluation_period(price_file):
    result = run_experiment(tiny_config(price_file, learners=["pooled"]), write=False)
    p = result.predictions
    held = p[p["eval_set"] == "held_out_assets"]
    assert set(held["symbol"]) == {"CCC"} and set(held["fold"]) == {"CCC"}
    assert "CCC" not in set(p.loc[p["eval_set"] == "later_periods", "symbol"])
    assert p["date"].min() >= pd.Timestamp("2021-01-01")
    # Every query sample follows its task's K support samples: none of a task's first K.
    first_dates = p.groupby("task")["date"].min()
    starts = pd.PeriodIndex(first_dates.index.str.split("@").str[-1], freq="Q").start_time
    assert (first_dates.to_numpy() > starts.to_numpy()).all()


def test_config_files_yaml_and_toml(tmp_path):
    (tmp_path / "a.yaml").write_text("targets: [variance]\nmeta_steps: 7\nheld_out: MSFT\n")
    (tmp_path / "a.toml").write_text('targets = ["direction"]\nseed = 5\n')
    (tmp_path / "bad.yaml").write_text("meta_stepz: 7\n")
    yaml_config = load_config(tmp_path / "a.yaml").validated()
    assert yaml_config.targets == ["variance"] and yaml_config.meta_steps == 7
    assert yaml_config.held_out == ["MSFT"]
    assert load_config(tmp_path / "a.toml").validated().seed == 5
    with pytest.raises(ValueError, match=r"Unknown settings .*\['meta_stepz'\]"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(ValueError, match=r"ends in .yaml, .yml or .toml. Received: a.json"):
        load_config(tmp_path / "a.json")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"targets": ["price"]}, r"targets expected tokens among .*Received: 'price'"),
        ({"learners": ["mamll"]}, r"Received unknown: \['mamll'\]"),
        ({"models": ["resnet"]}, r"models must be among .*Received unknown: \['resnet'\]"),
        ({"support_size": 0}, r"support_size expected an integer >= 1. Received: support_size=0"),
        ({"var_alpha": 0.7}, r"var_alpha must be in \(0, 0.5\)"),
        ({"cost_bps": -1.0}, r"cost_bps expected a finite number >= 0"),
    ],
)
def test_bad_settings_are_refused_with_what_was_received(setting, message):
    with pytest.raises(ValueError, match=message):
        ExperimentConfig(**setting).validated()


def test_unknown_symbols_and_a_single_asset_are_refused(price_file):
    with pytest.raises(ValueError, match=r"symbols \['ZZZ'\] are not in the data"):
        run_experiment(tiny_config(price_file, symbols=["AAA", "ZZZ"]), write=False)
    with pytest.raises(ValueError, match="at least 2 symbols"):
        run_experiment(tiny_config(price_file, symbols=["CCC"]), write=False)


def _curves(log_dir):
    """The `epoch_loss` points TensorBoard's own reader finds under `train/` and `validation/`."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curves = {}
    for part in ("train", "validation"):
        events = EventAccumulator(str(log_dir / part), size_guidance={"tensors": 0})
        events.Reload()
        points = events.Tensors("epoch_loss")
        curves[part] = [(p.step, float(tf.make_ndarray(p.tensor_proto))) for p in points]
    return curves


def test_meta_learners_log_training_and_validation_curves_through_meta_training(
    price_file, tmp_path
):
    from metazoo import data as mdata
    from metazoo.experiment.learners import make_learners
    from metazoo.experiment.run import _training_data

    config = tiny_config(price_file, learners=["maml"], meta_steps=6).validated()
    windows = mdata.make_windows(mdata.load_prices(price_file), lookback=5, horizon=1)
    training = _training_data(mdata.TaskSet.from_windows(windows), windows)

    def fitted(log_dir=None, one_epoch=False):
        (learner,) = make_learners(config, windows.X.shape[1:], windows.y.shape[1])
        if one_epoch:  # the former schedule: every meta-step in a single epoch
            c = config
            batches = training.tasks.meta_batches(
                c.meta_batch_size, c.support_size, c.query_size, n_batches=6, seed=c.seed
            )
            learner._fit_episodes = lambda data, log: learner.model.fit(batches, verbose=0)
        learner.fit(training, log_dir)
        return learner.model.get_weights()

    weights = fitted(tmp_path / "a")
    curves = _curves(tmp_path / "a")
    assert [step for step, _ in curves["train"]] == list(range(6))  # one point per epoch
    assert [step for step, _ in curves["validation"]] == list(range(6))
    assert np.isfinite([v for part in curves.values() for _, v in part]).all()
    # The same seed gives the same curves, and the epochs split one stream of meta-batches:
    # the weights are those of the whole schedule in a single epoch.
    assert fitted(tmp_path / "b") is not None and _curves(tmp_path / "b") == curves
    for a, b in zip(weights, fitted(one_epoch=True), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_parts_trained_in_worker_processes_give_the_numbers_of_one_process(price_file, tmp_path):
    config = tiny_config(
        price_file, targets=["return", "variance"], learners=["maml"], baselines=["zero"]
    )
    # The parallel run in a process of its own, to see that it never imports TensorFlow
    # there (only its workers do), so that the last target's plots are drawn in forked
    # processes.
    with open(tmp_path / "config.pkl", "wb") as file:
        parallel = dataclasses.replace(config, jobs=2, output=str(tmp_path), run_name="jobs2")
        pickle.dump(parallel, file)
    script = (
        "import pickle, sys\n"
        "from metazoo.experiment import report, run_experiment\n"
        f"config = pickle.load(open({str(tmp_path / 'config.pkl')!r}, 'rb'))\n"
        "lines = []\n"
        "result = run_experiment(config, progress=lines.append)\n"
        "assert 'tensorflow' not in sys.modules, 'the parent process imported TensorFlow'\n"
        "assert report._can_fork() and not result.drawing\n"
        f"pickle.dump((result, lines), open({str(tmp_path / 'result.pkl')!r}, 'wb'))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=600)
    with open(tmp_path / "result.pkl", "rb") as file:
        parallel, lines = pickle.load(file)
    for target in ("return", "variance"):
        for name in ("leaderboard", "forecasts"):
            png = (tmp_path / "jobs2" / f"{name}_{target}.png").read_bytes()
            assert png.startswith(b"\x89PNG") and len(png) > 10_000
    html = (tmp_path / "jobs2" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 6  # 4 plots of the return target, 2 of variance
    serial = run_experiment(dataclasses.replace(config, jobs=1), write=False)
    pd.testing.assert_frame_equal(parallel.predictions, serial.predictions)
    pd.testing.assert_frame_equal(parallel.leaderboard, serial.leaderboard)
    assert parallel.machine == serial.machine and "TensorFlow" in serial.machine
    # every learner of both parts reported its progress from its worker
    assert sum("maml:" in line for line in lines) == 2 and any(
        "[variance |" in line for line in lines
    )


def test_unknown_zoo_models_are_refused_before_training(price_file, tmp_path):
    config = tiny_config(price_file, models=["mlp", "nope"], output=str(tmp_path / "runs"))
    with pytest.raises(ValueError, match=r"models must be among .*Received unknown: \['nope'\]"):
        config.validated()
    config.validated(zoo=False)  # what `metazoo run` checks before the parts start
    lines = []
    with pytest.raises(ValueError, match=r"Received unknown: \['nope'\]"):
        run_experiment(config, progress=lines.append)
    assert not any("pooled" in line for line in lines)  # nothing trained
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
