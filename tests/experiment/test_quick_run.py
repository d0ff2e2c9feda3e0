"""`metazoo run --quick` end to end: the run folder exists and is consistent."""

from __future__ import annotations

import json
import re

import keras
import numpy as np
import pandas as pd
import pytest

from metazoo import cli
from metazoo.experiment.config import QUICK

pytestmark = pytest.mark.slow  # a whole (quick) run of the experiment

# Baselines that forecast each target (the others are skipped for it), and the naive strategy.
VARIANCE_BASELINES = [
    "historical_mean",
    "support_mean",
    "linear_lags",
    "har_rv",
    "har_log",
    "garch11",
]
BASELINES = {
    "return": ["zero", "historical_mean", "support_mean", "linear_lags", "buy_and_hold"],
    "variance": VARIANCE_BASELINES,
}
BASES = {"return": "mlp", "variance": "har"}  # the sections' base networks


# The quick preset's learners, assets and targets, with fewer steps and one evaluation year:
# what is under test is the run folder, not how well the learners learn.
SMALLER = ["--meta-steps", "20", "--scratch-steps", "10", "--adapt-steps", "2"]
SMALLER += ["--pooled-epochs", "1", "--test-end", "2015-12-31"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("runs")
    code = cli.main(["run", "--quick", *SMALLER, "--output", str(output), "--run-name", "quick"])
    assert code == 0
    return output / "quick"


def test_leaderboard_has_one_row_per_model_and_evaluation_set(quick_run):
    results = pd.read_csv(quick_run / "results.csv")
    learners = QUICK["learners"]
    assert QUICK["targets"] == list(BASELINES)
    assert set(results["target"]) == set(BASELINES)
    for target, baselines in BASELINES.items():
        rows = results[results["target"] == target]
        base = BASES[target]
        expected = {f"{kind}:{base}" for kind in learners if kind != "averaging"}
        expected |= {f"averaging:{base}+linear", *baselines}
        for eval_set in ("later_periods", "held_out_assets"):
            models = rows.loc[rows["eval_set"] == eval_set, "model"]
            assert sorted(models) == sorted(expected)
        forecasters = rows[rows["model"] != "buy_and_hold"]
        assert np.isfinite(forecasters[["mse", "mae", "r2_oos"]].to_numpy()).all()
    strategy = results.loc[results["target"] == "return", ["sharpe", "max_drawdown", "turnover"]]
    assert np.isfinite(strategy.dropna(how="all").to_numpy()).sum() > 0
    variance = results[results["target"].str.startswith("variance")]
    assert np.isfinite(variance["qlike"]).all() and "n_floored" not in results
    # VaR is scored on the 1-day target only (a row carries the next day's return)
    one_day = variance["target"] == "variance"
    assert np.isfinite(variance.loc[one_day, ["var_breach_rate", "var1t_breach"]]).all(axis=None)
    assert variance.loc[~one_day, "var_breach_rate"].isna().all()


def test_predictions_match_the_leaderboard(quick_run):
    results = pd.read_csv(quick_run / "results.csv")
    predictions = pd.read_csv(quick_run / "predictions.csv.gz", parse_dates=["date"])
    row = results[(results["target"] == "return") & (results["model"] == "maml:mlp")]
    row = row[row["eval_set"] == "held_out_assets"].iloc[0]
    mine = predictions[
        (predictions["target"] == "return")
        & (predictions["model"] == "maml:mlp")
        & (predictions["eval_set"] == "held_out_assets")
    ]
    assert len(mine) == row["n"]
    assert np.isclose(np.mean((mine["pred_1"] - mine["true_1"]) ** 2), row["mse"])
    assert set(mine["symbol"]) == {"MSFT"}


def test_report_references_existing_plots_and_tensorboard_logs_exist(quick_run):
    report = (quick_run / "report.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert len(images) >= 5
    for name in images:
        assert (quick_run / name).is_file(), name
    assert "| later_periods | maml:mlp | learner |" in report
    for learner in ("pooled_mlp", "maml_mlp", "reptile_mlp"):
        logs = quick_run / "tensorboard" / "return" / "MSFT" / learner
        assert any(logs.rglob("events.out.tfevents*")), learner
    projector = quick_run / "tensorboard" / "variance" / "MSFT" / "context_har" / "projector"
    metadata = (projector / "metadata.tsv").read_text().splitlines()
    assert metadata[0] == "symbol\tperiod" and {r.split("\t")[0] for r in metadata[1:]} == {
        "SP500",
        "NASDAQ",
    }
    assert (projector / "projector_config.pbtxt").is_file()
    config = json.loads((quick_run / "config.json").read_text())
    assert config["quick"] is True and config["seed"] == 0


def test_saved_models_load_in_safe_mode(quick_run):
    path = quick_run / "models" / "variance" / "MSFT" / "maml_har.keras"
    model = keras.saving.load_model(path, safe_mode=True)
    assert type(model).__name__ == "MAML"
    assert (quick_run / "models" / "return" / "MSFT" / "averaging_mlp_linear.keras").is_file()


def test_run_folder_is_not_overwritten(quick_run, capsys):
    code = cli.main(["run", "--quick", "--output", str(quick_run.parent), "--run-name", "quick"])
    assert code == 2
    assert "exists and is not empty" in capsys.readouterr().err


def test_every_saved_learner_has_a_forecaster_that_forecasts_its_asset(quick_run):
    import metazoo
    from metazoo import data as mdata

    saved = sorted((quick_run / "models").rglob("*.keras"))
    files = [p for p in saved if p.name != "model.keras"]
    folders = sorted(p.parent for p in (quick_run / "models").rglob("forecaster.json"))
    assert files and folders == [p.with_suffix("") for p in files]
    msft = mdata.load_markets(symbols=["MSFT"])
    for folder in folders:
        forecaster = metazoo.load_forecaster(folder)
        table = forecaster.forecast(msft)
        assert list(table["symbol"]) == ["MSFT"] and np.isfinite(table["forecast"]).all()
        assert table["date"].iloc[0] == msft["date"].max()
