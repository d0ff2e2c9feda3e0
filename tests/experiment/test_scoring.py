"""Scores of variance forecasts on a tiny fake run: errors, DM tests, the MCS, VaR, books."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from metazoo.backtest import christoffersen_test, pooled_christoffersen_test
from metazoo.experiment import scoring, variance_scoring
from metazoo.experiment.config import ExperimentConfig
from metazoo.experiment.targets import target_horizon, target_kind
from metazoo.metrics.significance import diebold_mariano
from tests.experiment.test_report_plots import HELD, fake_predictions

CONFIG = ExperimentConfig(targets=["return", "variance", "variance:5"], held_out=["CCC"])


@pytest.fixture(scope="module")
def predictions():
    return fake_predictions()


@pytest.fixture(scope="module")
def board(predictions):
    return scoring.score(predictions, CONFIG)[0]


def _row(board, target, eval_set, model):
    rows = board[(board["target"] == target) & (board["eval_set"] == eval_set)]
    return rows.set_index("model").loc[model]


def _hand_losses(rows):
    ratio = rows["true_1"] / rows["pred_1"]
    return ratio - np.log(ratio) - 1


@pytest.mark.parametrize(("target", "horizon"), [("variance", 1), ("variance:5", 5)])
@pytest.mark.parametrize("eval_set", ["later_periods", HELD])
def test_dm_p_values_are_the_test_on_aligned_daily_mean_losses(
    board, predictions, target, horizon, eval_set
):
    part = predictions[(predictions["target"] == target) & (predictions["eval_set"] == eval_set)]
    keys = ["fold", "date", "symbol"]
    for column, reference in [("dm_p_har", "har_rv"), ("dm_p_garch", "garch11")]:
        base = part[part["model"] == reference].assign(ref=_hand_losses)[[*keys, "ref"]]
        for model in ["maml:mlp", "pooled:mlp", "historical_mean"]:
            own = part[part["model"] == model].assign(own=_hand_losses)[[*keys, "own"]]
            paired = own.merge(base, on=keys, how="inner", validate="one_to_one")
            daily = paired.groupby("date").mean(numeric_only=True)
            expected = diebold_mariano(daily["own"], daily["ref"], horizon, "less")["p_value"]
            assert _row(board, target, eval_set, model)[column] == pytest.approx(expected)
        assert np.isnan(_row(board, target, eval_set, reference)[column])
    # the fake's historical mean is far worse than HAR: it is not significantly better
    assert _row(board, target, eval_set, "historical_mean")["dm_p_har"] > 0.9


def test_a_copy_of_har_has_a_dm_p_value_of_one_half(predictions):
    har = predictions[(predictions["model"] == "har_rv")]
    copy = har.assign(model="har_copy", kind="learner")
    board = scoring.score(pd.concat([predictions, copy], ignore_index=True), CONFIG)[0]
    for target in ("variance", "variance:5"):
        for eval_set in ("later_periods", HELD):
            row = _row(board, target, eval_set, "har_copy")
            assert row["dm_p_har"] == 0.5
            assert row["qlike"] == _row(board, target, eval_set, "har_rv")["qlike"]
            assert row["in_mcs"] == _row(board, target, eval_set, "har_rv")["in_mcs"]


def test_the_model_confidence_set_holds_the_best_model_and_follows_the_seed(board, predictions):
    variance = board[board["target"].str.startswith("variance")]
    for _, rows in variance.groupby(["target", "eval_set"]):
        best = rows.sort_values("qlike").iloc[0]
        assert bool(best["in_mcs"]) and best["mcs_p"] == 1.0
        assert set(rows["in_mcs"]) <= {True, False}
        assert (rows.loc[~rows["in_mcs"].astype(bool), "mcs_p"] < 0.1).all()
    again = scoring.score(predictions, CONFIG)[0]
    pd.testing.assert_series_equal(board["mcs_p"], again["mcs_p"])


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_var_breach_rates_are_a_hand_count(board, predictions, alpha):
    a = variance_scoring.level_name(alpha)
    for eval_set in ("later_periods", HELD):
        part = predictions[
            (predictions["target"] == "variance") & (predictions["eval_set"] == eval_set)
        ]
        for model, rows in part.groupby("model"):
            limit = stats.norm.ppf(alpha) * np.sqrt(rows["pred_1"])  # a negative return
            breaches = rows["next_return"] < limit
            row = _row(board, "variance", eval_set, model)
            assert row[f"var{a}_breach"] == pytest.approx(breaches.mean())
            if breaches.any():
                realized = -rows.loc[breaches, "next_return"].mean()
                assert row[f"es{a}_realized"] == pytest.approx(realized)
                assert row[f"es{a}_forecast"] > row[f"es{a}_realized"] * 0.2
            assert 0 <= row[f"var{a}_kupiec_p"] <= 1 and 0 <= row[f"var{a}_cc_p"] <= 1
    held = _row(board, "variance", HELD, "har_rv")
    assert held["var_breach_rate"] == held["var1_breach"]  # var_alpha = 0.01


def test_a_token_without_a_horizon_takes_the_runs_horizon(predictions):
    # `variance` in a run with horizon 5 is a 5-day target: no next-day VaR, and its DM
    # lags are those of 5 days
    five_day = dataclasses.replace(CONFIG, horizon=5)
    board, _ = scoring.score(predictions[predictions["target"] == "variance"], five_day)
    assert "var1_breach" not in board or board["var1_breach"].isna().all()
    one_day, _ = scoring.score(predictions[predictions["target"] == "variance"], CONFIG)
    assert one_day["var1_breach"].notna().any()
    part = predictions[predictions["target"] == "variance"]
    part = part[part["eval_set"] == HELD]
    losses = variance_scoring.loss_table(part)
    expected = variance_scoring.dm_p_value(losses, "maml:mlp", "har_rv", 5)
    assert _row(board, "variance", HELD, "maml:mlp")["dm_p_har"] == pytest.approx(expected)


def test_risk_is_scored_at_one_day_only(board):
    five = board[board["target"] == "variance:5"]
    assert five["var1_breach"].isna().all() and five["vt_vol_ratio"].isna().all()
    assert five["qlike"].notna().all() and five["dm_p_har"].notna().sum() == len(five) - 2


def test_books_are_in_strategies(predictions):
    _, strategies = scoring.score(predictions, CONFIG)
    books = strategies[strategies["target"] == "variance"]
    assert set(books["strategy"]) == {"vol_target", "inverse_vol"}
    assert not (strategies["target"] == "variance:5").any()
    models = set(predictions.loc[predictions["target"] == "variance", "model"])
    assert set(books["model"]) == models


@pytest.mark.parametrize(("bias", "ratio"), [(1.0, 1.0), (4.0, 0.5)])
def test_vol_targeting_tracks_the_target_with_a_right_forecast(bias, ratio):
    rng = np.random.default_rng(0)
    days, vol = 2000, 0.015
    dates = pd.bdate_range("2010-01-04", periods=days)
    rows = pd.DataFrame(
        {
            "target": "variance",
            "fold": "X",
            "eval_set": HELD,
            "model": "har_rv",
            "kind": "baseline",
            "task": [f"X@{d.year}" for d in dates],
            "date": dates,
            "symbol": "X",
            "pred_1": bias * vol**2,
            "true_1": 0.0,
            "next_return": rng.normal(0, vol, days),
            "trailing_vol": vol,
        }
    )
    config = ExperimentConfig(cost_bps=0.0)
    metrics, daily = variance_scoring.risk(rows, config)
    assert metrics["vt_vol_ratio"] == pytest.approx(ratio, rel=0.05)
    assert metrics["ivp_vol_ratio"] == pytest.approx(ratio, rel=0.05)  # one asset: the same book
    # a second asset forecast on half the days only (its other days are NaN in the sleeves)
    other = rows[: days // 2].assign(symbol="Y", next_return=rng.normal(0, 2 * vol, days // 2))
    other = other.assign(pred_1=bias * (2 * vol) ** 2, task=other["task"].str.replace("X", "Y"))
    metrics, _ = variance_scoring.risk(pd.concat([rows, other], ignore_index=True), config)
    assert metrics["vt_vol_ratio"] == pytest.approx(ratio, rel=0.05)
    assert metrics["vt_tracking"] < (0.2 if bias == 1 else 0.8)
    assert len(daily["vol_target"]) == days
    assert metrics["var1_breach"] == pytest.approx(0.01 if bias == 1 else 0.0, abs=0.006)


@pytest.mark.parametrize("bad", [0.0, -1e-4, np.nan, np.inf])
def test_a_variance_forecast_that_is_not_positive_raises_naming_the_model(predictions, bad):
    broken = predictions.copy()
    where = broken.index[(broken["target"] == "variance:5") & (broken["model"] == "maml:mlp")]
    broken.loc[where[7], "pred_1"] = bad
    with pytest.raises(ValueError, match=r"model 'maml:mlp': 1 forecast\(s\)"):
        scoring.score(broken, CONFIG)


def test_pooled_christoffersen_counts_no_transition_between_series():
    rng = np.random.default_rng(1)
    first, second = rng.random(200) < 0.05, rng.random(150) < 0.05
    breaches = np.concatenate([first, second, [True]])
    groups = ["a"] * 200 + ["b"] * 150 + ["c"]
    pooled = pooled_christoffersen_test(breaches, groups, 0.05)
    one, two = christoffersen_test(first, 0.05), christoffersen_test(second, 0.05)
    for name in ("n00", "n01", "n10", "n11"):
        assert pooled[name] == one[name] + two[name]
    assert sum(pooled[n] for n in ("n00", "n01", "n10", "n11")) == 199 + 149
    assert pooled_christoffersen_test(first, ["a"] * 200, 0.05) == pytest.approx(one)
    with pytest.raises(ValueError, match="`breaches` expected a series of 2"):
        pooled_christoffersen_test([True, False], ["a", "b"], 0.05)
    with pytest.raises(ValueError, match="`groups` expected the values of each series"):
        pooled_christoffersen_test([True, False, True], ["a", "b", "a"], 0.05)


def test_target_tokens_give_kind_and_horizon():
    assert target_kind("variance:22") == "variance"
    assert target_kind("return") == "return"
    assert target_horizon("variance:22", 1) == 22
    assert target_horizon("variance", 5) == 5  # the run's horizon
    assert target_horizon("return", 3) == 3
    with pytest.raises(ValueError, match="targets expected a horizon of 1 or more"):
        target_horizon("variance:0", 1)
    with pytest.raises(ValueError, match="targets expected tokens among"):
        target_kind("price")
    with pytest.raises(ValueError, match="default expected an integer >= 1"):
        target_horizon("variance", 0)


def test_student_t_var_covers_fat_tailed_returns_that_the_normal_var_misses():
    # Returns of a unit-variance Student t(4) scaled by the right volatility: the normal 1%
    # VaR is breached too often, the t(5) one about as often as it should be.
    rng = np.random.default_rng(3)
    days, vol = 20_000, 0.01
    dates = pd.bdate_range("1990-01-01", periods=days)
    shocks = rng.standard_t(4, days) / np.sqrt(4 / 2)
    rows = pd.DataFrame(
        {
            "fold": "A",
            "task": [f"X@{d.year}" for d in dates],
            "date": dates,
            "symbol": "X",
            "pred_1": vol**2,
            "true_1": 0.0,
            "next_return": vol * shocks,
            "trailing_vol": vol,
        }
    )
    normal = variance_scoring.var_scores(rows, 0.01, "normal")
    student = variance_scoring.var_scores(rows, 0.01, "t")
    assert student["var1t_breach"] < normal["var1_breach"]
    assert normal["var1_kupiec_p"] < 0.05 < student["var1t_kupiec_p"]
    assert student["var1t_breach"] == pytest.approx(np.mean(vol * shocks < -vol * 2.6065), abs=1e-4)
