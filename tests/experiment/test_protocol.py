"""The per-asset protocol: evaluation periods in each asset's own chronology, held-out asset
groups, and a user's one asset held out against the bundled universe."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from metazoo import data as mdata
from metazoo.experiment import ExperimentConfig, run_experiment
from tests.conftest import make_prices


def chronology_config(path, **overrides) -> ExperimentConfig:
    settings = dict(
        data=str(path),
        targets=["return"],
        lookback=5,
        support_size=10,
        query_size=10,
        folds=3,
        embargo=5,
        test_fraction=0.3,
        history_years=None,
        learners=["pooled"],
        baselines=["zero", "historical_mean"],
        pooled_epochs=1,
        seed=1,
    )
    return ExperimentConfig(**(settings | overrides))


@pytest.fixture(scope="module")
def spans_file(tmp_path_factory):
    """Three assets over different decades, of different lengths."""
    parts = [
        make_prices(300, symbols=("OLD",), seed=1, start="1995-01-02"),
        make_prices(420, symbols=("MID",), seed=2, start="2005-01-03"),
        make_prices(360, symbols=("NEW",), seed=3, start="2019-01-01"),
    ]
    path = tmp_path_factory.mktemp("spans") / "spans.csv"
    pd.concat(parts, ignore_index=True).to_csv(path, index=False)
    return path


# The learners of the protocol tests: the pooled network and one meta-learner, with few
# steps (the protocol, not the learning, is under test).
META = {"learners": ["pooled", "maml"], "meta_steps": 4, "adapt_steps": 1}


@pytest.fixture(scope="module")
def spans_run(spans_file):
    """One run over the three assets, shared by the tests that only read its forecasts."""
    return run_experiment(chronology_config(spans_file, **META), write=False)


def forecasts(result) -> pd.DataFrame:
    columns = ["target", "fold", "eval_set", "model", "date", "symbol", "pred_1"]
    return result.predictions[columns].sort_values(columns[:6]).reset_index(drop=True)


def test_each_asset_is_evaluated_on_its_own_last_share_and_held_out_once(spans_file, spans_run):
    p = spans_run.predictions
    held = p[p["eval_set"] == "held_out_assets"]
    # Every asset is held out in exactly one fold, and never trained on in that fold.
    assert held.groupby("symbol")["fold"].nunique().to_dict() == {"MID": 1, "NEW": 1, "OLD": 1}
    for fold, rows in p.groupby("fold"):
        tested = set(held.loc[held["fold"] == fold, "symbol"])
        later = set(rows.loc[rows["eval_set"] == "later_periods", "symbol"])
        assert tested and not tested & later
    # Query dates lie in each asset's evaluation period, the last 30% of its own windows.
    windows = mdata.make_windows(mdata.load_prices(spans_file), lookback=5, horizon=1)
    cutoffs = mdata.chronological_cutoffs(windows, test_fraction=0.3, embargo=5)
    first = p.groupby("symbol")["date"].min()
    assert (first >= cutoffs["eval_start"].reindex(first.index)).all()
    assert first["OLD"] < pd.Timestamp("1997-01-01") < first["MID"] < first["NEW"]


def test_no_look_ahead_in_each_assets_own_chronology(spans_file, spans_run, tmp_path):
    before = forecasts(spans_run)
    assert set(before["model"]) >= {"pooled:mlp", "maml:mlp"}
    prices = pd.read_csv(spans_file, parse_dates=["date"])
    # Change each asset after a date inside its own evaluation period.
    cuts = {"OLD": "1996-01-15", "MID": "2006-06-15", "NEW": "2020-03-02"}
    cut = prices["symbol"].map(lambda s: pd.Timestamp(cuts[s]))
    later = prices["date"] > cut
    for column in ("open", "high", "low", "close"):
        prices.loc[later, column] *= np.exp(np.linspace(0.0, 0.5, later.sum()))
    changed = tmp_path / "changed.csv"
    prices.to_csv(changed, index=False)
    after = forecasts(run_experiment(chronology_config(changed, **META), write=False))
    early = before["date"] <= before["symbol"].map(lambda s: pd.Timestamp(cuts[s]))
    assert early.sum() > 30 and set(before.loc[early, "symbol"]) == {"OLD", "MID", "NEW"}
    pd.testing.assert_frame_equal(
        before[early].reset_index(drop=True),
        after[after["date"] <= after["symbol"].map(lambda s: pd.Timestamp(cuts[s]))].reset_index(
            drop=True
        ),
    )
    late = before[~early].merge(after, on=list(before.columns[:6]), suffixes=("", "_new"))
    assert not np.allclose(late["pred_1"], late["pred_1_new"])


def test_held_out_class_trains_without_it():
    config = ExperimentConfig(
        symbols=["SP500", "NASDAQ", "GBPUSD", "JPYUSD"],
        held_out_class="currency",
        history_years=3.0,
        targets=["return"],
        lookback=5,
        learners=["pooled"],
        baselines=["zero"],
        pooled_epochs=1,
    )
    p = run_experiment(config, write=False).predictions
    assert set(p.loc[p["eval_set"] == "held_out_assets", "symbol"]) == {"GBPUSD", "JPYUSD"}
    assert set(p.loc[p["eval_set"] == "later_periods", "symbol"]) == {"SP500", "NASDAQ"}
    with pytest.raises(ValueError, match=r"held_out_class.*Received: held_out_class='crypto'"):
        run_experiment(dataclasses.replace(config, held_out_class="crypto"), write=False)


def test_a_users_single_asset_is_held_out_against_the_bundled_markets(tmp_path):
    mine = make_prices(400, symbols=("MINE",), seed=5, start="2016-01-04")
    path = tmp_path / "mine.csv"
    mine.to_csv(path, index=False)
    config = chronology_config(
        path, symbols=["SP500", "NASDAQ", "MINE"], history_years=2.0, folds=5
    )
    result = run_experiment(config, write=False)
    p = result.predictions
    assert set(p.loc[p["eval_set"] == "held_out_assets", "symbol"]) == {"MINE"}
    assert set(p["fold"]) == {"MINE"}
    assert set(p.loc[p["eval_set"] == "later_periods", "symbol"]) == {"SP500", "NASDAQ"}


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"folds": 0}, r"folds expected an integer >= 1. Received: folds=0"),
        ({"embargo": -1}, r"embargo expected an integer >= 0. Received: embargo=-1"),
        ({"test_fraction": 1.0}, r"test_fraction expected a number in \(0, 1\)"),
        ({"history_years": 0}, r"history_years expected a finite number > 0 or None"),
        (
            {"held_out": ["MSFT"], "held_out_class": "stock"},
            r"held_out and held_out_class expected one of them",
        ),
    ],
)
def test_bad_protocol_settings_are_refused(setting, message):
    with pytest.raises(ValueError, match=message):
        ExperimentConfig(**setting).validated()


def test_period_outside_its_choices_is_refused():
    with pytest.raises(ValueError, match=r"period expected one of \('Q', 'M', 'Y'\). Received"):
        ExperimentConfig(period="W").validated()


def test_a_failed_run_says_why_and_leaves_no_run_folder(spans_file, tmp_path):
    config = chronology_config(
        spans_file, test_start="2030-01-01", output=str(tmp_path), run_name="late"
    )
    with pytest.raises(
        ValueError, match=r"the data ends on 2020-05-18\. Received: test_start='2030-01-01'"
    ):
        run_experiment(config)
    assert not (tmp_path / "late").exists()


@pytest.mark.slow
def test_quick_run_on_a_users_yahoo_file_holds_out_that_asset(tmp_path):
    prices = make_prices(800, symbols=("X",), seed=7, start="2015-01-01")
    yahoo = pd.DataFrame(
        {
            "Date": prices["date"].dt.strftime("%Y-%m-%d"),
            "Open": prices["open"],
            "High": prices["high"],
            "Low": prices["low"],
            "Close": prices["close"],
            "Adj Close": prices["close"] * 0.98,
            "Volume": prices["volume"],
        }
    )
    path = tmp_path / "acme.csv"
    yahoo.to_csv(path, index=False)
    config = ExperimentConfig(
        data=str(path), quick=True, targets=["return"], learners=["pooled"], baselines=["zero"]
    )
    with pytest.warns(UserWarning, match="adjusted close"):
        result = run_experiment(config, write=False)
    p = result.predictions
    assert result.config.symbols is None and result.config.test_start is None
    assert set(p["fold"]) == {"acme"}
    assert set(p.loc[p["eval_set"] == "held_out_assets", "symbol"]) == {"acme"}
    assert len(set(p.loc[p["eval_set"] == "later_periods", "symbol"])) >= 20
