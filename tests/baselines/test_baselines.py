"""Tests for the baselines in metazoo.baselines: causality, hand-built fits and errors."""

import numpy as np
import pandas as pd
import pytest
from arch import arch_model
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from metazoo.baselines import (
    BASELINES,
    GARCH11,
    HARRV,
    HistoricalMean,
    LinearLags,
    ZeroForecast,
    available_baselines,
    forecasts_at,
)
from metazoo.data import compute_targets, make_windows
from tests.conftest import make_prices

FACTORIES = {
    "zero": ZeroForecast,
    "historical_mean": HistoricalMean,
    "trailing_mean": lambda: HistoricalMean(window=5),
    "linear_lags": lambda: LinearLags(lags=3),
    "har_rv": HARRV,
    "garch11": GARCH11,
}
CASES = [
    (name, target) for name, factory in FACTORIES.items() for target in factory().supported_targets
]


def _garch_prices(n, omega=0.02, alpha=0.08, beta=0.9, seed=0, symbol="AAA"):
    """Closes whose daily log returns (in percent) follow a Gaussian GARCH(1,1)."""
    rng = np.random.default_rng(seed)
    variance, returns = omega / (1 - alpha - beta), np.empty(n)
    for t in range(n):
        returns[t] = np.sqrt(variance) * rng.standard_normal()
        variance = omega + alpha * returns[t] ** 2 + beta * variance
    close = 100 * np.exp(np.cumsum(np.concatenate([[0.0], returns / 100])))
    dates = pd.bdate_range("2000-01-03", periods=n + 1)
    return pd.DataFrame({"date": dates, "symbol": symbol, "close": close})


@pytest.mark.parametrize("cumulative", [False, True])
@pytest.mark.parametrize(("name", "target"), CASES)
def test_forecasts_are_causal(name, target, cumulative):
    prices = make_prices(80)
    baseline = FACTORIES[name]().fit(prices, target=target, horizon=2, cumulative=cumulative)
    before = baseline.predict(prices)
    cutoff = prices["date"].iloc[50]
    changed = prices.copy()
    later = changed["date"] > cutoff
    noise = np.random.default_rng(1).normal(0, 0.05, later.sum())
    changed.loc[later, "close"] *= np.exp(noise)
    after = baseline.predict(changed)
    expected = compute_targets(prices, target, 2, cumulative)
    assert list(before.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(before[["date", "symbol"]], expected[["date", "symbol"]])
    known = before["date"] <= cutoff
    pd.testing.assert_frame_equal(before[known], after[known])
    constant = name == "historical_mean" or (name in ("zero", "garch11") and target != "variance")
    if not constant:  # the change after the cutoff does reach these forecasts
        assert not before[later].iloc[:, 2:].equals(after[later].iloc[:, 2:])


@pytest.mark.parametrize(("name", "target"), CASES)
def test_unseen_symbol_gets_a_forecast(name, target):
    baseline = FACTORIES[name]().fit(make_prices(80), target=target, horizon=1)
    forecast = baseline.predict(make_prices(80, symbols=("NEW",), seed=5))
    assert forecast["symbol"].eq("NEW").all()
    assert np.isfinite(forecast.iloc[30:, 2:].to_numpy()).all()


def test_zero_forecast_by_hand():
    prices = make_prices(6, symbols=("AAA",))
    r = np.diff(np.log(prices["close"].to_numpy()))
    variance = ZeroForecast().fit(prices, "variance", horizon=2).predict(prices)
    np.testing.assert_allclose(variance["variance_1"].to_numpy()[1:], r**2)
    np.testing.assert_allclose(variance["variance_2"].to_numpy()[1:], r**2)
    assert np.isnan(variance["variance_1"].iloc[0])
    summed = ZeroForecast().fit(prices, "variance", horizon=3, cumulative=True).predict(prices)
    np.testing.assert_allclose(summed["variance_sum_3"].to_numpy()[1:], 3 * r**2)
    flat = prices.assign(close=prices["close"].where(prices.index != 3, prices["close"][2]))
    flat_forecast = ZeroForecast().fit(flat, "variance").predict(flat)["variance_1"]
    assert flat_forecast.iloc[3] == 1e-12  # an unchanged close: floored, not 0
    assert (ZeroForecast().fit(prices).predict(prices)["return_1"] == 0).all()
    assert (ZeroForecast().fit(prices, "direction").predict(prices)["direction_1"] == 0.5).all()


def test_historical_mean_per_symbol_and_pooled():
    prices = make_prices(30)
    targets = compute_targets(prices, "return", 2)
    baseline = HistoricalMean().fit(prices, "return", horizon=2)
    expected = targets.groupby("symbol")[["return_1", "return_2"]].mean()
    pd.testing.assert_frame_equal(baseline.means_, expected, check_names=False)
    np.testing.assert_allclose(baseline.pooled_mean_, targets[["return_1", "return_2"]].mean())
    forecast = baseline.predict(prices)
    np.testing.assert_allclose(forecast["return_2"].iloc[0], expected.loc["AAA", "return_2"])
    unseen = baseline.predict(make_prices(5, symbols=("NEW",)))
    np.testing.assert_allclose(unseen[["return_1", "return_2"]].iloc[0], baseline.pooled_mean_)


def test_trailing_mean_by_hand():
    prices = make_prices(10, symbols=("AAA",))
    r = np.diff(np.log(prices["close"].to_numpy()))  # r[k] is the return of row k + 1
    forecast = HistoricalMean(window=3).fit(prices, "variance").predict(prices)
    # at row 5: mean of r^2 of rows 3, 4, 5; rows 0-2 lack 3 returns
    assert forecast["variance_1"].iloc[5] == pytest.approx(np.mean(r[2:5] ** 2))
    assert forecast["variance_1"].iloc[:3].isna().all()
    summed = HistoricalMean(window=2).fit(prices, "return", 2, cumulative=True).predict(prices)
    # at row 5: the 2-day returns ending at rows 5 and 4: (r4 + r5 + r3 + r4) / 2
    assert summed["return_sum_2"].iloc[5] == pytest.approx((r[3] + r[4] + r[2] + r[3]) / 2)
    assert summed["return_sum_2"].iloc[:3].isna().all()  # first w + h - 1 rows
    assert np.isfinite(summed["return_sum_2"].iloc[3])


def test_forecasts_at_reads_each_windows_date_and_symbol():
    prices = make_prices(40, symbols=("AAA", "BBB"))
    windows = make_windows(prices, lookback=5, horizon=1, target="variance")
    table = HistoricalMean(window=3).fit(prices, "variance").predict(prices)
    values = forecasts_at(table, windows)
    assert values.shape == (len(windows), 1)
    by_key = table.set_index(["date", "symbol"])["variance_1"]
    expected = [by_key[(t, s)] for t, s in zip(windows.times, windows.symbols, strict=True)]
    np.testing.assert_array_equal(values[:, 0], expected)
    assert np.isfinite(values).all()
    # a window the table has no row for gets NaN, not another row's forecast
    missing = forecasts_at(table[table["symbol"] != "BBB"], windows, ["variance_1"])
    np.testing.assert_array_equal(np.isnan(missing[:, 0]), windows.symbols == "BBB")


def _har_by_hand(prices, horizon):
    """Regressors (1, rv_d, rv_w, rv_m) and targets r^2 of each day ahead, built with loops."""
    rows, targets = [], []
    for _, group in prices.groupby("symbol"):
        r = np.diff(np.log(group["close"].to_numpy()), prepend=np.nan)
        for t in range(22, len(r) - horizon):
            squared = r[t - 21 : t + 1] ** 2
            rows.append([1.0, squared[-1], squared[-5:].mean(), squared.mean()])
            targets.append(r[t + 1 : t + 1 + horizon] ** 2)
    return np.array(rows), np.array(targets)


def test_har_rv_equals_hand_built_ols():
    prices = make_prices(70)
    baseline = HARRV().fit(prices, "variance", horizon=2)
    design, y = _har_by_hand(prices, horizon=2)
    solution = np.linalg.lstsq(design, y, rcond=None)[0]
    np.testing.assert_allclose(baseline.intercept_, solution[0], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(baseline.coef_, solution[1:].T, rtol=1e-8)
    assert baseline.feature_names_ == ("rv_d", "rv_w", "rv_m")
    assert baseline.n_samples_ == len(y)
    forecast = baseline.predict(prices)
    # the first hand-built row is AAA at row 22
    np.testing.assert_allclose(
        forecast[["variance_1", "variance_2"]].iloc[22], design[0] @ solution
    )
    assert forecast["variance_1"].iloc[:22].isna().all()


def test_linear_lags_equals_hand_built_ols():
    prices = make_prices(40)
    baseline = LinearLags(lags=3).fit(prices, "return", horizon=2, cumulative=True)
    rows, y = [], []
    for _, group in prices.groupby("symbol"):
        r = np.diff(np.log(group["close"].to_numpy()), prepend=np.nan)
        for t in range(3, len(r) - 2):
            rows.append([1.0, r[t], r[t - 1], r[t - 2]])
            y.append([r[t + 1] + r[t + 2]])
    solution = np.linalg.lstsq(np.array(rows), np.array(y), rcond=None)[0]
    np.testing.assert_allclose(baseline.intercept_, solution[0])
    np.testing.assert_allclose(baseline.coef_, solution[1:].T)
    assert baseline.feature_names_ == ("lag_1", "lag_2", "lag_3")
    forecast = baseline.predict(prices)["return_sum_2"]
    assert forecast.iloc[3] == pytest.approx(rows[0] @ solution[:, 0])


def test_linear_lags_variance_uses_squared_returns_and_stays_positive():
    prices = make_prices(60)
    baseline = LinearLags(lags=2).fit(prices, "variance")
    r = np.diff(np.log(prices["close"].to_numpy()[:60]))
    forecast = baseline.predict(prices)["variance_1"]
    expected = baseline.intercept_[0] + baseline.coef_[0] @ [r[9] ** 2, r[8] ** 2]
    assert forecast.iloc[10] == pytest.approx(max(expected, 1e-12))
    assert (forecast.dropna() > 0).all()


def test_garch_recovers_persistence():
    prices = _garch_prices(2000)
    params = GARCH11().fit(prices, "variance").params_.loc["AAA"]
    assert params["alpha"] + params["beta"] == pytest.approx(0.98, abs=0.02)
    assert params["alpha"] == pytest.approx(0.08, abs=0.03)


def test_garch_filter_matches_arch_with_the_fitted_parameters():
    prices = _garch_prices(600, seed=3)
    baseline = GARCH11().fit(prices, "variance", horizon=3)
    params = baseline.params_.loc["AAA"]
    returns = 100 * np.diff(np.log(prices["close"].to_numpy()))
    fixed = arch_model(returns, mean="zero", rescale=False).fix(
        [params["omega"], params["alpha"], params["beta"]]
    )
    forecast = baseline.predict(prices)[["variance_1", "variance_2", "variance_3"]].to_numpy()
    # arch's sigma_k^2 is the variance of return k (row k + 1) known at row k; arch starts
    # from a backcast, we from the sample variance, which washes out over the rows
    np.testing.assert_allclose(forecast[300:-1, 0] * 1e4, fixed.conditional_volatility[300:] ** 2)
    ahead = fixed.forecast(horizon=3, reindex=False).variance.iloc[-1].to_numpy()
    np.testing.assert_allclose(forecast[-1] * 1e4, ahead, rtol=1e-6)


def test_garch_return_is_the_mean():
    prices = _garch_prices(300)
    baseline = GARCH11(mean="constant").fit(prices, "return", horizon=2, cumulative=True)
    mu = baseline.params_.loc["AAA", "mu"]
    assert mu != 0
    np.testing.assert_allclose(baseline.predict(prices)["return_sum_2"], 2 * mu / 100)


def test_garch_unseen_symbol_uses_average_parameters():
    prices = pd.concat([_garch_prices(300, seed=1), _garch_prices(300, seed=2, symbol="BBB")])
    baseline = GARCH11().fit(prices.reset_index(drop=True), "variance")
    pd.testing.assert_series_equal(baseline.pooled_params_, baseline.params_.mean())
    new = _garch_prices(300, seed=4, symbol="NEW")
    first = baseline.predict(new)["variance_1"].iloc[0]
    assert first * 1e4 == pytest.approx(baseline.pooled_params_["start_variance"])


@pytest.mark.parametrize(
    ("baseline", "target"),
    [(HARRV(), "return"), (HARRV(), "direction"), (GARCH11(), "direction")],
)
def test_unsupported_target_is_refused(baseline, target):
    with pytest.raises(ValueError, match=rf"forecasts only target.*Received: target='{target}'"):
        baseline.fit(make_prices(80), target=target)


def test_bad_input_is_refused():
    prices = make_prices(30)
    with pytest.raises(ValueError, match=r"Missing columns: \['close'\]"):
        ZeroForecast().fit(prices.drop(columns="close"))
    with pytest.raises(ValueError, match=r"target must be one of .*Received: target='vol'"):
        LinearLags().fit(prices, target="vol")
    with pytest.raises(ValueError, match=r"horizon expected an integer >= 1. Received: horizon=0"):
        HARRV().fit(prices, target="variance", horizon=0)
    with pytest.raises(NotFittedError, match=r"not fitted"):
        ZeroForecast().predict(prices)
    with pytest.raises(ValueError, match=r"in date order"):
        ZeroForecast().fit(prices).predict(prices.iloc[::-1])
    with pytest.raises(ValueError, match=r"lags expected an integer >= 1. Received: lags=0"):
        LinearLags(lags=0).fit(prices)
    with pytest.raises(ValueError, match=r"window expected an integer >= 1. Received: window=0"):
        HistoricalMean(window=0).fit(prices)
    with pytest.raises(ValueError, match=r"mean expected one of .*Received: mean='ar'"):
        GARCH11(mean="ar").fit(prices, "variance")


def test_fit_frame_too_short_is_refused():
    short = make_prices(12)
    with pytest.raises(ValueError, match=r"at least 11 rows .*Received: 2 usable of 24 rows"):
        LinearLags(lags=10).fit(short)
    with pytest.raises(ValueError, match=r"at least 4 rows .*first 22 rows"):
        HARRV().fit(short, "variance")
    with pytest.raises(ValueError, match=r"at least 50 finite daily returns.*Received: 11"):
        GARCH11().fit(short, "variance")


def test_registry():
    assert set(BASELINES) == {"zero", "historical_mean", "linear_lags", "har_rv", "garch11"}
    assert list(available_baselines("variance")) == list(BASELINES)
    assert list(available_baselines("return")) == [
        "zero",
        "historical_mean",
        "linear_lags",
        "garch11",
    ]
    assert list(available_baselines("direction")) == ["zero", "historical_mean", "linear_lags"]
    with pytest.raises(ValueError, match=r"target must be one of .*Received: target='vol'"):
        available_baselines("vol")
    with pytest.raises(TypeError):
        BASELINES["new"] = ZeroForecast


def test_estimator_conventions():
    baseline = LinearLags(lags=3)
    assert clone(baseline).get_params() == {"lags": 3}
    assert baseline.fit(make_prices(30)) is baseline
    assert baseline.symbols_ == ("AAA", "BBB")
    assert (baseline.target_, baseline.horizon_, baseline.cumulative_) == ("return", 1, False)


def test_garch_starts_from_the_sample_variance_of_its_fit():
    # A near-integrated fit has an unconditional variance far from the data's; the filter
    # starts where arch's does, near the data's own variance.
    prices = _garch_prices(400, seed=5)
    baseline = GARCH11().fit(prices, "variance")
    returns = 100 * np.diff(np.log(prices["close"].to_numpy()))
    start = baseline.params_.loc["AAA", "start_variance"]
    assert start == pytest.approx(np.var(returns))
    assert baseline.predict(prices)["variance_1"].iloc[0] * 1e4 == pytest.approx(start)
