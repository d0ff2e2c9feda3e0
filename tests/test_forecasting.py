"""The forecaster artifact: a trained learner applied to raw prices, saved and loaded."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

import metazoo
from metazoo import data as mdata
from metazoo import models
from metazoo.forecasting import Forecaster
from metazoo.trainers import MAML, ContextMetaLearner, Pooled
from tests.conftest import make_prices

FEATURES = ("log_return", "rv_cc:5", "log_rv:1")
LOOKBACK, K = 4, 6


def windows_of(prices, target="return"):
    return mdata.make_windows(prices, LOOKBACK, 1, FEATURES, target)


def trained(kind="maml", target="return", seed=0):
    """A learner meta-trained for a few steps on two synthetic assets, and its scaler."""
    keras.utils.set_random_seed(seed)
    prices = make_prices(160, symbols=("AAA", "BBB"), seed=seed)
    windows = windows_of(prices, target)
    scaler = mdata.WindowScaler(scale_targets=True).fit(windows)
    tasks = mdata.TaskSet.from_windows(scaler.transform(windows), period="M")
    base = models.build("mlp", (LOOKBACK, len(FEATURES)), 1, seed=seed, units=(4,))
    if kind == "maml":
        learner = MAML(base, inner_lr=0.05, inner_steps=1)
    elif kind == "context":
        learner = ContextMetaLearner(base)
    else:
        learner = Pooled(base)
    learner.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    learner.fit(tasks.meta_batches(2, K, 4, n_batches=3, seed=seed), epochs=1, verbose=0)
    return Forecaster.from_scaler(learner, scaler, windows, K, target=target), scaler


@pytest.fixture(scope="module")
def maml():
    return trained("maml")


@pytest.fixture(scope="module")
def new_assets():
    return make_prices(80, symbols=("NEW", "OLD"), seed=7, start="2022-03-01")


def test_forecast_has_one_row_per_symbol_at_its_last_date(maml, new_assets):
    forecaster, _ = maml
    table = forecaster.forecast(new_assets)
    assert list(table.columns) == [
        "date",
        "symbol",
        "target",
        "horizon",
        "forecast",
        "lower",
        "upper",
    ]
    assert list(table["symbol"]) == ["NEW", "OLD"]
    last = new_assets.groupby("symbol")["date"].max()
    assert list(table["date"]) == list(last.loc[["NEW", "OLD"]])
    assert (table["target"] == "return_1").all() and (table["horizon"] == 1).all()
    assert (table["lower"] < table["forecast"]).all() and (table["forecast"] < table["upper"]).all()


def test_forecast_equals_the_learner_on_windows_built_by_hand(maml, new_assets):
    forecaster, scaler = maml
    expected = []
    for symbol in ("NEW", "OLD"):
        part = new_assets[new_assets["symbol"] == symbol].reset_index(drop=True)
        windows = scaler.transform(windows_of(part))
        support = windows[np.arange(len(windows) - K, len(windows))]
        feats = mdata.compute_features(part, list(FEATURES))[list(FEATURES)].to_numpy()
        last = (feats[-LOOKBACK:] - scaler.mean_) / scaler.scale_
        adapted = forecaster.model.adapt(support.X, support.y)
        output = adapted.predict(last[None].astype("float32"), verbose=0)
        expected.append(float(scaler.inverse_targets(output)[0, 0]))
    table = forecaster.forecast(new_assets)
    np.testing.assert_allclose(table["forecast"], expected, rtol=1e-4, atol=1e-7)


def test_save_and_load_forecast_the_same(maml, new_assets, tmp_path):
    forecaster, _ = maml
    folder = forecaster.save(tmp_path / "fc")
    assert sorted(p.name for p in folder.iterdir()) == ["forecaster.json", "model.keras"]
    loaded = metazoo.load_forecaster(folder)
    assert type(loaded.model) is MAML and loaded.features == FEATURES
    pd.testing.assert_frame_equal(loaded.forecast(new_assets), forecaster.forecast(new_assets))
    pd.testing.assert_frame_equal(
        metazoo.load_forecaster(folder / "forecaster.json").forecast(new_assets, 4),
        forecaster.forecast(new_assets, support_days=4),
    )


def test_prices_before_the_rows_it_reads_change_nothing(maml, new_assets):
    forecaster, _ = maml
    rows = forecaster.history_rows(K)
    assert rows == K + 1 + LOOKBACK + 5 - 1  # rv_cc:5 reads 5 rows before its date
    changed = new_assets.copy()
    early = changed.groupby("symbol").cumcount(ascending=False) >= rows
    for column in ("open", "high", "low", "close"):
        changed.loc[early, column] *= np.exp(np.random.default_rng(1).normal(0, 0.05, early.sum()))
    changed[["high", "low"]] = np.column_stack(
        [
            changed[["open", "high", "low", "close"]].max(axis=1),
            changed[["open", "high", "low", "close"]].min(axis=1),
        ]
    )
    pd.testing.assert_frame_equal(forecaster.forecast(changed), forecaster.forecast(new_assets))
    # One row more is read: changing the first row it reads changes the forecast.
    inside = changed.groupby("symbol").cumcount(ascending=False) == rows - 1
    changed.loc[inside, "close"] *= 1.05
    changed[["high", "low"]] = np.column_stack(
        [
            changed[["open", "high", "low", "close"]].max(axis=1),
            changed[["open", "high", "low", "close"]].min(axis=1),
        ]
    )
    assert not np.allclose(
        forecaster.forecast(changed)["forecast"], forecaster.forecast(new_assets)["forecast"]
    )


def test_a_single_asset_frame_and_a_variance_target(new_assets):
    forecaster, _ = trained("pooled", target="rv:squared_return")
    one = new_assets[new_assets["symbol"] == "NEW"].drop(columns="symbol")
    table = forecaster.forecast(one)
    assert len(table) == 1 and table["target"].iloc[0] == "rv_squared_return_1"
    sigma = np.sqrt(max(table["forecast"].iloc[0], 0.0))
    np.testing.assert_allclose(
        table[["lower", "upper"]].iloc[0], [-1.96 * sigma, 1.96 * sigma], rtol=1e-3
    )


def test_an_amortized_learner_forecasts(new_assets):
    forecaster, _ = trained("context")
    assert np.isfinite(forecaster.forecast(new_assets)["forecast"]).all()


def test_errors_name_the_argument(maml, new_assets):
    forecaster, _ = maml
    with pytest.raises(TypeError, match="prices expected a DataFrame"):
        forecaster.forecast(new_assets.to_numpy())
    with pytest.raises(ValueError, match="support_days expected an integer >= 1"):
        forecaster.forecast(new_assets, support_days=0)
    with pytest.raises(ValueError, match=r"at least \d+ rows per symbol for support_days=200"):
        forecaster.forecast(new_assets, support_days=200)
    with pytest.raises(ValueError, match="at least 15 rows per symbol"):
        forecaster.forecast(new_assets.groupby("symbol").tail(10))
    with pytest.raises(ValueError, match="Missing"):
        forecaster.forecast(new_assets.drop(columns="close"))
    with pytest.raises(FileNotFoundError, match="forecaster folder"):
        metazoo.load_forecaster("/nonexistent/forecaster")
    with pytest.raises(ValueError, match="output expected"):
        Forecaster(forecaster.model, FEATURES, LOOKBACK, "return", output="log")


def yahoo_csv(path, n=90, seed=3):
    """A Yahoo Finance download of one asset: Date, Open, High, Low, Close, Adj Close, Volume."""
    frame = make_prices(n, symbols=("X",), seed=seed).drop(columns="symbol")
    frame = frame.rename(columns=str.capitalize)
    frame.insert(5, "Adj Close", frame["Close"] * 0.99)
    frame.to_csv(path, index=False)
    return path


def test_cli_forecasts_a_yahoo_csv_with_a_run_folder(maml, tmp_path, capsys):
    from metazoo import cli

    forecaster, _ = maml
    forecaster.save(tmp_path / "run" / "models" / "return" / "AAA" / "maml_mlp")
    csv, out = yahoo_csv(tmp_path / "acme.csv"), tmp_path / "forecasts.csv"
    args = ["forecast", "--model", str(tmp_path / "run"), "--data", str(csv)]
    assert cli.main([*args, "--output", str(out), "--support-days", "5"]) == 0
    printed = capsys.readouterr().out
    assert "support: the last 5 labelled days" in printed and "acme" in printed
    table = pd.read_csv(out, parse_dates=["date"])
    assert list(table["symbol"]) == ["acme"] and np.isfinite(table["forecast"]).all()
    with pytest.warns(mdata.AdjustedPricesWarning):
        expected = forecaster.forecast(mdata.load_prices(csv), support_days=5)
    np.testing.assert_allclose(table["forecast"], expected["forecast"], rtol=1e-6)
    forecaster.save(tmp_path / "run" / "models" / "return" / "AAA" / "pooled_mlp")
    assert cli.main([*args, "--output", str(out)]) == 2
    assert "holds 2" in capsys.readouterr().err
    assert cli.main([*args[:2], str(tmp_path / "run" / "nope"), *args[3:]]) == 2


def test_layout_option_of_data_and_run(tmp_path, capsys):
    from metazoo import cli
    from metazoo.experiment.command import OPTIONS

    csv = yahoo_csv(tmp_path / "acme.csv")
    assert cli.main(["data", "--data", str(csv), "--layout", "single"]) == 0
    assert "acme" in capsys.readouterr().out
    assert cli.main(["data", "--data", str(csv), "--layout", "wide"]) == 2
    assert "layout" in OPTIONS
    from metazoo.experiment import ExperimentConfig

    assert ExperimentConfig(layout="single").validated().layout == "single"
    with pytest.raises(ValueError, match="layout must be one of"):
        ExperimentConfig(layout="tall").validated()


def close_only(returns, symbol="SYN"):
    dates = pd.bdate_range("2021-01-04", periods=len(returns) + 1)
    close = 50 * np.exp(np.concatenate([[0.0], np.cumsum(returns)]))
    return pd.DataFrame({"date": dates, "symbol": symbol, "close": close})


def test_the_shipped_variance_forecaster_scales_with_the_returns():
    from metazoo.forecasting import SHIPPED

    forecaster = metazoo.load_forecaster(SHIPPED)
    assert forecaster.target == "rv:squared_return" and forecaster.output == "exp"
    assert sum(p.stat().st_size for p in SHIPPED.iterdir()) < 100_000  # KB, not MB
    returns = np.random.default_rng(5).standard_t(5, size=120) * 0.01 / np.sqrt(5 / 3)
    base = forecaster.forecast(close_only(returns))["forecast"].iloc[0]
    assert np.isfinite(base) and 2e-5 < base < 1e-3  # a daily variance near 1e-4
    for c in (0.5, 3.0):
        scaled = forecaster.forecast(close_only(c * returns))["forecast"].iloc[0]
        # Returns c times larger give a variance about c^2 larger: exactly c^(2 e), with e
        # the elasticity of the log-HAR forecast (its slopes sum to about 0.86, and one
        # inner step on 20 days moves the level little), so a little below c^2.
        elasticity = np.log(scaled / base) / np.log(c**2)
        assert 0.8 < elasticity < 1.05, (c, elasticity)


def test_forecast_without_model_uses_the_shipped_forecaster(tmp_path, capsys):
    from metazoo import cli

    csv, out = yahoo_csv(tmp_path / "acme.csv", n=60), tmp_path / "f.csv"
    assert cli.main(["forecast", "--data", str(csv), "--output", str(out)]) == 0
    assert "variance_1d" in capsys.readouterr().out
    table = pd.read_csv(out)
    assert list(table["target"]) == ["rv_squared_return_mean_1"] and table["forecast"][0] > 0


def test_a_plain_keras_model_forecasts_its_last_window_as_it_is(new_assets):
    network = models.build("mlp", (LOOKBACK, len(FEATURES)), 1, seed=0, units=(4,))
    forecaster = Forecaster(network, FEATURES, LOOKBACK, "direction", support_size=K)
    table = forecaster.forecast(new_assets)
    part = new_assets[new_assets["symbol"] == "OLD"]
    last = mdata.compute_features(part, list(FEATURES))[list(FEATURES)].to_numpy()[-LOOKBACK:]
    expected = network.predict(last[None].astype("float32"), verbose=0)[0, 0]
    np.testing.assert_allclose(table["forecast"].iloc[1], expected, rtol=1e-5)
    assert table[["lower", "upper"]].isna().all(axis=None)  # no interval for a direction
