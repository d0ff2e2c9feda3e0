"""The experiment's variance section: QLIKE on log outputs, heads started at the log-HAR fit,
positive forecasts, per-target horizons, and validation runs that never read the evaluation
period."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metazoo import data as mdata
from metazoo import models
from metazoo.experiment import ExperimentConfig, run_experiment
from metazoo.experiment.learners import Networks, make_learners
from metazoo.experiment.run import _training_data, evaluation_cutoffs, target_windows
from metazoo.experiment.targets import parse_token, section_config, target_spec
from tests.conftest import make_prices

SYMBOLS = ("AAA", "BBB", "CCC")
LEARNERS = ["finetune", "averaging", "maml"]  # finetune brings pooled
BASELINES = ["zero", "historical_mean", "support_mean", "har_rv", "har_log", "garch11"]


def variance_config(path, **overrides) -> ExperimentConfig:
    settings = dict(
        data=str(path),
        targets=["variance", "variance:5"],
        test_start="2021-01-01",
        held_out=["CCC"],
        support_size=10,
        query_size=10,
        learners=LEARNERS,
        baselines=BASELINES,
        meta_batch_size=4,
        variance_meta_steps=3,
        variance_pooled_epochs=1,
        seed=2,
    )
    return ExperimentConfig(**(settings | overrides))


@pytest.fixture(scope="module")
def price_file(tmp_path_factory):
    """Three assets whose volatilities differ by a factor of 4 and move over time."""
    prices = make_prices(420, symbols=SYMBOLS, seed=5)
    rng = np.random.default_rng(0)
    for number, symbol in enumerate(SYMBOLS):
        rows = prices["symbol"] == symbol
        returns = np.diff(np.log(prices.loc[rows, "close"].to_numpy()), prepend=np.log(100.0))
        regime = np.exp(np.cumsum(rng.normal(0, 0.08, rows.sum())))
        level = 100 * np.exp(np.cumsum(returns * regime * 2.0**number))
        ratio = level / prices.loc[rows, "close"].to_numpy()
        for column in ("open", "high", "low", "close"):
            prices.loc[rows, column] *= ratio
    path = tmp_path_factory.mktemp("variance") / "prices.csv"
    prices.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def result(price_file):
    return run_experiment(variance_config(price_file), write=False)


def test_every_variance_forecast_is_positive_and_finite(result):
    p = result.predictions
    assert set(p["target"]) == {"variance", "variance:5"}
    models_seen = set(p["model"])
    assert {"maml:har", "averaging:har+linear", "pooled:har", "finetune:har"} <= models_seen
    assert {"har_rv", "har_log", "garch11", "historical_mean", "support_mean"} <= models_seen
    assert "zero" not in models_seen  # a variance of 0 is no forecast
    assert np.isfinite(p["pred_1"]).all() and (p["pred_1"] > 0).all()
    board = result.leaderboard
    assert "n_floored" not in board and np.isfinite(board["qlike"]).all()


def test_variance_5_rows_carry_five_day_means(result, price_file):
    prices = mdata.load_prices(price_file)
    rows = result.predictions[result.predictions["target"] == "variance:5"]
    row = rows.iloc[len(rows) // 2]
    one = prices[prices["symbol"] == row["symbol"]].reset_index(drop=True)
    at = int(one.index[one["date"] == row["date"]][0])
    returns = np.diff(np.log(one["close"].to_numpy()))
    assert row["true_1"] == pytest.approx(np.mean(returns[at : at + 5] ** 2), rel=1e-9)
    day = result.predictions[result.predictions["target"] == "variance"]
    day = day[(day["symbol"] == row["symbol"]) & (day["date"] == row["date"])].iloc[0]
    assert day["true_1"] == pytest.approx(returns[at] ** 2, rel=1e-9)


def test_variance_5_training_labels_end_before_the_evaluation_period(price_file):
    config = variance_config(price_file).validated()
    spec = target_spec("variance:5", config)
    windows = target_windows(mdata.load_prices(price_file), spec)
    assert windows.horizon == 5 and windows.y.shape[1] == 1  # one 5-day mean per window
    ends = pd.to_datetime(windows.label_end) - pd.to_datetime(windows.times)
    assert (ends >= pd.Timedelta(days=5)).all()  # the label spans 5 trading days
    start, cutoff = evaluation_cutoffs(windows, config)
    train = windows.select(label_end_before=cutoff)
    assert pd.to_datetime(train.label_end).max() < start


def _fold_data(price_file, token="variance"):
    config = variance_config(price_file).validated()
    spec = target_spec(token, config)
    windows = target_windows(mdata.load_prices(price_file), spec)
    train = windows.select(symbols=["AAA", "BBB"], label_end_before=pd.Timestamp("2021-01-01"))
    scaler = mdata.WindowScaler(scale_targets=spec.scale_targets).fit(train)
    tasks = mdata.TaskSet.from_windows(scaler.transform(train), period="Q")
    return config, spec, train, scaler, _training_data(tasks, scaler.transform(train))


def test_untrained_bases_forecast_the_log_har_regression(price_file):
    config, spec, train, scaler, data = _fold_data(price_file)
    assert not spec.scale_targets and np.allclose(data.windows.y, train.y)
    # The log-HAR regression by hand, on the unscaled HAR components.
    x = np.column_stack([np.ones(len(train)), train.X[:, -1]])
    log_y = np.log(np.maximum(train.y[:, 0], 1e-12))
    beta, *_ = np.linalg.lstsq(x, log_y, rcond=None)
    smearing = np.mean(np.exp(log_y - x @ beta))
    expected = np.exp(x @ beta) * smearing
    for base in ("har", "harnet"):
        nets = Networks(base, config, data.windows.X.shape[1:], 1, spec)
        nets.prepare(data)
        model = nets.build()
        forecast = np.exp(np.asarray(model(data.windows.X))[:, 0])
        np.testing.assert_allclose(forecast, expected, rtol=1e-4)


def test_variance_learners_compile_with_qlike_on_log_outputs(price_file):
    config, spec, _, _, data = _fold_data(price_file)
    config = config.__class__(**{**config.to_dict(), "learners": ["finetune", "maml", "anil"]})
    section = section_config(config.validated(), spec)
    learners = make_learners(section, data.windows.X.shape[1:], 1, spec)
    assert {lr.name for lr in learners} >= {"maml:har", "anil:har", "pooled:har"}
    for learner in learners:
        learner.fit(data)
        loss = learner.model.loss
        assert isinstance(loss, models.QLIKE) and loss.log_pred, learner.name
    # The return section keeps mean squared error.
    ret = target_spec("return", config)
    assert ret.loss() == "mse" and ret.scale_targets and not ret.log_output


def test_target_tokens_carry_their_horizon_or_are_refused():
    assert parse_token("variance") == ("variance", None)
    assert parse_token("variance:5") == ("variance", 5)
    config = ExperimentConfig(horizon=3).validated()
    assert target_spec("variance", config).horizon == 3
    assert target_spec("variance:5", config).horizon == 5
    for bad in ("variance:0", "variance:x", "return:5", "price"):
        with pytest.raises(ValueError, match="targets expected"):
            ExperimentConfig(targets=[bad]).validated()


def test_validation_never_reads_an_evaluation_period_price(price_file, tmp_path):
    config = variance_config(
        price_file,
        test_start=None,
        test_fraction=0.3,
        learners=["maml"],
        baselines=["har_rv", "support_mean"],
        validation=True,
    )
    before = run_experiment(config, write=False)
    prices = pd.read_csv(price_file, parse_dates=["date"])
    real = config.validated()
    cut = None
    for token in real.targets:
        windows = target_windows(mdata.load_prices(price_file), target_spec(token, real))
        _, label_cutoff = evaluation_cutoffs(windows, real)
        cut = label_cutoff if cut is None else np.minimum(cut, label_cutoff)
    assert (before.predictions["date"] < before.predictions["symbol"].map(cut)).all()
    # Change every price of each asset's evaluation period and the embargo before it.
    later = prices["date"] >= prices["symbol"].map(cut)
    assert later.sum() > 100
    for column in ("open", "high", "low", "close"):
        prices.loc[later, column] *= np.exp(np.linspace(0.0, 1.0, later.sum()))
    changed = tmp_path / "changed.csv"
    prices.to_csv(changed, index=False)
    after = run_experiment(variance_config(changed, **_validation(config)), write=False)
    pd.testing.assert_frame_equal(before.predictions, after.predictions)
    pd.testing.assert_frame_equal(before.leaderboard, after.leaderboard)


def _validation(config):
    keys = ("test_start", "test_fraction", "learners", "baselines")
    return {k: getattr(config, k) for k in keys} | {"validation": True}


def test_same_seed_same_variance_numbers(price_file):
    config = variance_config(price_file, targets=["variance"], learners=["maml"], baselines=[])
    first = run_experiment(config, write=False)
    again = run_experiment(config, write=False)
    pd.testing.assert_frame_equal(first.predictions, again.predictions)
    other = run_experiment(variance_config(price_file, **_seed(config, 7)), write=False)
    assert not np.allclose(first.predictions["pred_1"], other.predictions["pred_1"])


def _seed(config, seed):
    return {"targets": config.targets, "learners": config.learners, "baselines": [], "seed": seed}


def test_variance_settings_and_validation_have_flags():
    from metazoo import cli
    from metazoo.experiment.command import config_from_args

    args = cli._parser().parse_args(
        ["run", "--validation", "--variance-models", "harnet", "--variance-inner-lr", "0.01",
         "--variance-adapt-steps", "2", "--targets", "variance:22"]
    )  # fmt: skip
    config = config_from_args(args)
    assert config.validation is True and config.variance_models == ["harnet"]
    assert config.variance_inner_lr == 0.01 and config.variance_adapt_steps == 2
    assert config.targets == ["variance:22"]
    assert config_from_args(cli._parser().parse_args(["run"])).validation is False


def test_changing_later_prices_leaves_earlier_variance_forecasts_unchanged(price_file, tmp_path):
    overrides = dict(targets=["variance:5"], learners=["finetune", "maml"], baselines=["har_log"])
    columns = ["target", "fold", "eval_set", "model", "date", "symbol", "pred_1"]
    before = run_experiment(variance_config(price_file, **overrides), write=False).predictions
    cut = pd.Timestamp("2021-03-31")
    prices = pd.read_csv(price_file, parse_dates=["date"])
    later = prices["date"] > cut
    for column in ("open", "high", "low", "close"):
        prices.loc[later, column] *= np.exp(np.linspace(0.0, 0.5, later.sum()))
    changed = tmp_path / "changed.csv"
    prices.to_csv(changed, index=False)
    after = run_experiment(variance_config(changed, **overrides), write=False).predictions
    before, after = (
        f[columns].sort_values(columns[:6]).reset_index(drop=True) for f in (before, after)
    )
    early = before["date"] <= cut
    assert early.sum() > 50 and {"maml:har", "har_log"} <= set(before.loc[early, "model"])
    pd.testing.assert_frame_equal(before[early], after[after["date"] <= cut])
    late = before[~early].merge(after, on=columns[:6], suffixes=("", "_new"))
    assert not np.allclose(late["pred_1"], late["pred_1_new"])


def test_calibrated_var_reads_each_models_in_sample_training_forecasts_only(result):
    calibration, p = result.calibration, result.predictions
    assert set(calibration["target"]) == {"variance"}  # the VaR is scored at 1 day only
    assert set(calibration["symbol"]) == {"AAA", "BBB"}  # the fold's training assets
    assert calibration["date"].max() < pd.Timestamp("2021-01-01")  # before any evaluation
    assert "calibration" not in set(p["eval_set"])
    one_day = p[p["target"] == "variance"]
    assert set(calibration["model"]) == set(one_day["model"])
    # The breach rate of the calibrated 1% VaR, by hand for one model.
    own = calibration[calibration["model"] == "pooled:har"]
    q = np.quantile(own["next_return"] / np.sqrt(own["pred_1"]), 0.01)
    rows = one_day[(one_day["model"] == "pooled:har") & (one_day["eval_set"] == "held_out_assets")]
    expected = np.mean(rows["next_return"] < q * np.sqrt(rows["pred_1"]))
    board = result.leaderboard.set_index(["target", "eval_set", "model"])
    assert board.loc[("variance", "held_out_assets", "pooled:har"), "var1c_breach"] == (
        pytest.approx(expected)
    )
    one_day_board = result.leaderboard[result.leaderboard["target"] == "variance"]
    assert one_day_board["var1c_kupiec_p"].between(0, 1).all()


def test_standardized_tails_are_the_empirical_quantile_and_the_mean_below_it():
    from metazoo.experiment.variance_scoring import standardized_tails

    rows = pd.DataFrame(
        {"fold": "f", "next_return": [-6.0, -2.0, 0.0, 2.0, 4.0], "pred_1": 4.0}
    )  # standardized returns -3, -1, 0, 1, 2
    tails = standardized_tails(rows, 0.25).loc["f"]
    assert tails["quantile"] == pytest.approx(-1.0) and tails["shortfall"] == pytest.approx(-2.0)
