import numpy as np
import pandas as pd
import pytest

from metazoo.data import (
    DEFAULT_FEATURES,
    available_features,
    compute_features,
    compute_targets,
    load_prices,
)
from tests.conftest import make_prices

ALL_FEATURES = [
    "log_return",
    "abs_return",
    "rv_cc:3",
    "parkinson:3",
    "garman_klass:3",
    "momentum:2",
    "ma_gap:3",
    "rsi:3",
    "range",
    "volume_z:3",
]


def _tiny():
    return load_prices(
        pd.DataFrame(
            {
                "date": pd.bdate_range("2021-01-04", periods=5),
                "symbol": "X",
                "open": [100.0, 101.0, 99.0, 102.0, 103.0],
                "high": [102.0, 103.0, 101.0, 104.0, 105.0],
                "low": [99.0, 100.0, 97.0, 100.0, 102.0],
                "close": [101.0, 100.0, 100.5, 103.0, 104.0],
                "volume": [10.0, 20.0, 30.0, 40.0, 50.0],
            }
        )
    )


def test_values_match_hand_computation():
    frame = _tiny()
    feats = compute_features(frame, ALL_FEATURES)
    c, o, h, lo, v = (frame[k].to_numpy() for k in ("close", "open", "high", "low", "volume"))
    r = np.log(c[1:] / c[:-1])  # r[0] is dated row 1
    t = 4  # the last row
    expected = {
        "log_return": r[-1],
        "abs_return": abs(r[-1]),
        "rv_cc:3": np.sqrt(np.mean(r[-3:] ** 2)),
        "parkinson:3": np.sqrt(np.mean(np.log(h[2:] / lo[2:]) ** 2) / (4 * np.log(2))),
        "garman_klass:3": np.sqrt(
            np.mean(
                0.5 * np.log(h[2:] / lo[2:]) ** 2 - (2 * np.log(2) - 1) * np.log(c[2:] / o[2:]) ** 2
            )
        ),
        "momentum:2": np.log(c[t] / c[t - 2]),
        "ma_gap:3": np.log(c[t] / c[2:].mean()),
        "range": np.log(h[t] / lo[t]),
        "volume_z:3": (np.log1p(v[t]) - np.log1p(v[2:]).mean()) / np.log1p(v[2:]).std(ddof=1),
    }
    for name, value in expected.items():
        assert feats[name].iloc[t] == pytest.approx(value, rel=1e-12), name
    # Wilder RSI over 3 days: gains and losses smoothed with alpha 1/3, seeded at the first change.
    changes = np.diff(c)
    gain = loss = 0.0
    for step, change in enumerate(changes):
        g, l_ = max(change, 0), max(-change, 0)
        gain, loss = (g, l_) if step == 0 else (gain + (g - gain) / 3, loss + (l_ - loss) / 3)
    assert feats["rsi:3"].iloc[t] == pytest.approx((gain - loss) / (gain + loss))


def test_warm_up_rows_are_nan_and_the_rest_finite():
    feats = compute_features(load_prices(make_prices(60)), ALL_FEATURES)
    first = feats[feats.symbol == "AAA"]
    assert first["log_return"].isna().sum() == 1
    assert first["rv_cc:3"].isna().sum() == 3
    assert first["momentum:2"].isna().sum() == 2
    assert first["volume_z:3"].isna().sum() == 2
    assert first.iloc[5:, 2:].notna().all().all()
    assert feats["rsi:3"].dropna().between(-1, 1).all()


@pytest.mark.parametrize("cut", [30, 55, 88])
def test_features_are_causal(cut):
    """Changing prices after date t changes no feature at or before t."""
    base = make_prices(120, seed=3)
    dates = np.sort(base["date"].unique())
    t = dates[cut]
    changed = base.copy()
    after = changed["date"] > t
    rng = np.random.default_rng(cut)
    factor = np.exp(rng.normal(0, 0.05, after.sum()))
    for column in ("open", "high", "low", "close"):
        changed.loc[after, column] *= factor
    changed.loc[after, "volume"] *= 3.0
    before = compute_features(load_prices(base), ALL_FEATURES)
    after_change = compute_features(load_prices(changed), ALL_FEATURES)
    past = before["date"] <= t
    pd.testing.assert_frame_equal(before[past], after_change[past])
    assert not np.allclose(before.loc[~past, "log_return"], after_change.loc[~past, "log_return"])


def test_targets_look_ahead_by_design():
    frame = _tiny()
    c = frame["close"].to_numpy()
    r = np.log(c[1:] / c[:-1])
    ret = compute_targets(frame, "return", horizon=2)
    assert list(ret.columns) == ["date", "symbol", "return_1", "return_2"]
    np.testing.assert_allclose(ret["return_1"].iloc[:4], r)
    np.testing.assert_allclose(ret["return_2"].iloc[:3], r[1:])
    assert ret["return_2"].iloc[3:].isna().all()
    var = compute_targets(frame, "variance", horizon=3, cumulative=True)
    assert list(var.columns) == ["date", "symbol", "variance_sum_3"]
    np.testing.assert_allclose(
        var["variance_sum_3"].iloc[:2], [np.sum(r[0:3] ** 2), np.sum(r[1:4] ** 2)]
    )
    assert var["variance_sum_3"].iloc[2:].isna().all()
    direction = compute_targets(frame, "direction", horizon=1)
    np.testing.assert_array_equal(direction["direction_1"].iloc[:4], (r > 0).astype(float))
    up2 = compute_targets(frame, "direction", horizon=2, cumulative=True)["direction_sum_2"]
    np.testing.assert_array_equal(up2.iloc[:3], (r[:3] + r[1:4] > 0).astype(float))


def test_targets_do_not_cross_symbols():
    frame = load_prices(make_prices(10))
    ret = compute_targets(frame, "return", horizon=1)
    last_rows = ret.groupby("symbol").tail(1)
    assert last_rows["return_1"].isna().all()


def test_default_features_follow_available_fields():
    frame = load_prices(make_prices(40))
    assert available_features(frame) == list(DEFAULT_FEATURES)
    close_only = frame.copy()
    close_only.loc[close_only.symbol == "BBB", ["open", "high", "low", "volume"]] = np.nan
    close_only = load_prices(close_only)
    kept = available_features(close_only)
    assert "parkinson:21" not in kept and "volume_z:21" not in kept and "rv_cc:21" in kept
    assert list(compute_features(close_only).columns[2:]) == kept
    with pytest.raises(
        ValueError, match="needs \\['high', 'low'\\], which symbols \\['BBB'\\] lack"
    ):
        compute_features(close_only, ["parkinson:5"])


@pytest.mark.parametrize(
    "features, message",
    [
        (["sharpe:5"], "Unknown feature kind"),
        (["rv_cc"], "needs a window"),
        (["log_return:5"], "takes no window"),
        (["momentum:1"], "integer >= 2"),
        (["momentum:x"], "integer >= 2"),
        ([], "at least one feature"),
        (["range", "range"], "unique"),
    ],
)
def test_bad_feature_names(features, message):
    with pytest.raises(ValueError, match=message):
        compute_features(load_prices(make_prices(30)), features)


def test_bad_targets_and_unvalidated_frames():
    frame = load_prices(make_prices(30))
    with pytest.raises(ValueError, match="target must be one of"):
        compute_targets(frame, "price")
    with pytest.raises(ValueError, match="horizon expected an integer >= 1"):
        compute_targets(frame, "return", horizon=0)
    with pytest.raises(ValueError, match="in date order"):
        compute_features(frame.iloc[::-1], ["log_return"])
    with pytest.raises(ValueError, match="Missing columns: \\['close'\\]"):
        compute_targets(frame.drop(columns="close"))


VARIANCE_FEATURES = [
    "log_rv:1",
    "log_rv:5",
    "log_rv:22",
    "log_parkinson:3",
    "log_garman_klass:3",
    "log_rogers_satchell:1",
    "vol_return:3",
]


def test_variance_features_match_hand_computation():
    frame = _tiny()
    feats = compute_features(frame, ["log_rv:1", "log_rv:3", *VARIANCE_FEATURES[3:]])
    c, o, h, lo = (frame[k].to_numpy() for k in ("close", "open", "high", "low"))
    r = np.log(c[1:] / c[:-1])  # r[0] is dated row 1
    hl, co = np.log(h / lo), np.log(c / o)
    rs = np.log(h / c) * np.log(h / o) + np.log(lo / c) * np.log(lo / o)
    expected = {
        "log_rv:1": np.log(r[-1] ** 2),
        "log_rv:3": np.log(np.mean(r[-3:] ** 2)),
        "log_parkinson:3": np.log(np.mean(hl[2:] ** 2) / (4 * np.log(2))),
        "log_garman_klass:3": np.log(
            np.mean(0.5 * hl[2:] ** 2 - (2 * np.log(2) - 1) * co[2:] ** 2)
        ),
        "log_rogers_satchell:1": np.log(rs[-1]),
        "vol_return:3": r[-1] / np.sqrt(np.mean(r[-4:-1] ** 2)),  # vol of the 3 days before
    }
    for name, value in expected.items():
        assert feats[name].iloc[4] == pytest.approx(value, rel=1e-12), name
    assert feats["vol_return:3"].iloc[:4].isna().all()  # warm-up: 3 returns before t
    assert feats["log_rv:3"].iloc[:3].isna().all() and np.isfinite(feats["log_rv:3"].iloc[3])


def test_variance_features_are_scale_free():
    """Doubling every log price ratio (returns x2, ranges x2) shifts log variances by log 4
    and leaves vol-normalized returns unchanged."""
    base = load_prices(make_prices(80, seed=5))
    doubled = base.copy()
    for column in ("open", "high", "low", "close"):
        doubled[column] = base[column] ** 2 / 100.0  # ln(P^2 / 100) = 2 ln P - const
    one = compute_features(base, VARIANCE_FEATURES)
    two = compute_features(load_prices(doubled), VARIANCE_FEATURES)
    for name in VARIANCE_FEATURES:
        shift = 0.0 if name.startswith("vol_return") else np.log(4.0)
        np.testing.assert_allclose(two[name], one[name] + shift, rtol=1e-9, atol=1e-9)
        assert one[name].notna().sum() > 40, name


@pytest.mark.parametrize("cut", [30, 55, 88])
def test_variance_features_are_causal(cut):
    base = make_prices(120, seed=4)
    t = np.sort(base["date"].unique())[cut]
    changed = base.copy()
    after = changed["date"] > t
    factor = np.exp(np.random.default_rng(cut).normal(0, 0.05, after.sum()))
    for column in ("open", "high", "low", "close"):
        changed.loc[after, column] *= factor
    changed.loc[after, "high"] *= 1.01  # wider ranges after t
    before = compute_features(load_prices(base), VARIANCE_FEATURES)
    later = compute_features(load_prices(changed), VARIANCE_FEATURES)
    past = before["date"] <= t
    pd.testing.assert_frame_equal(before[past], later[past])
    for name in VARIANCE_FEATURES:
        assert not np.allclose(before.loc[~past, name], later.loc[~past, name]), name


def test_variance_targets_are_means_of_daily_proxies_ahead():
    frame = _tiny()
    c, o, h, lo = (frame[k].to_numpy() for k in ("close", "open", "high", "low"))
    r2 = np.log(c[1:] / c[:-1]) ** 2  # r2[0] is dated row 1
    gk = 0.5 * np.log(h / lo) ** 2 - (2 * np.log(2) - 1) * np.log(c / o) ** 2
    mean3 = compute_targets(frame, "log_rv:garman_klass", horizon=3, cumulative=True)
    assert list(mean3.columns) == ["date", "symbol", "log_rv_garman_klass_mean_3"]
    np.testing.assert_allclose(
        mean3.iloc[:2, 2], [np.log(gk[1:4].mean()), np.log(gk[2:5].mean())], rtol=1e-12
    )
    assert mean3.iloc[2:, 2].isna().all()
    per_day = compute_targets(frame, "rv:squared_return", horizon=2)
    assert list(per_day.columns[2:]) == ["rv_squared_return_1", "rv_squared_return_2"]
    np.testing.assert_allclose(per_day.iloc[:4, 2], r2, rtol=1e-12)
    np.testing.assert_allclose(per_day.iloc[:3, 3], r2[1:], rtol=1e-12)
    # The squared-return proxy matches the existing variance target.
    legacy = compute_targets(frame, "variance", horizon=2)
    np.testing.assert_allclose(per_day.iloc[:, 2:], legacy.iloc[:, 2:], rtol=1e-12)
    # The log target is the log of the mean over the horizon, not the mean of logs.
    mean_sq = compute_targets(frame, "rv:squared_return", horizon=2, cumulative=True)
    log_sq = compute_targets(frame, "log_rv:squared_return", horizon=2, cumulative=True)
    np.testing.assert_allclose(np.exp(log_sq.iloc[:3, 2]), mean_sq.iloc[:3, 2], rtol=1e-12)


@pytest.mark.parametrize(
    "target", ["log_rv:squared_return", "log_rv:rogers_satchell", "rv:parkinson"]
)
@pytest.mark.parametrize("horizon", [1, 5, 22])
def test_variance_targets_do_not_look_past_their_label(target, horizon):
    """Changing prices after t changes no target whose label ends at or before t."""
    base = make_prices(120, seed=7)
    dates = np.sort(base["date"].unique())
    cut = 80
    changed = base.copy()
    after = changed["date"] > dates[cut]
    for column in ("open", "high", "low", "close"):
        changed.loc[after, column] *= 1.03
    changed.loc[after, "high"] *= 1.02
    one = compute_targets(load_prices(base), target, horizon, cumulative=True)
    two = compute_targets(load_prices(changed), target, horizon, cumulative=True)
    label_end = one.groupby("symbol")["date"].shift(-horizon)
    done = label_end <= dates[cut]
    assert done.sum() > 0
    pd.testing.assert_frame_equal(one[done], two[done])
    # The first target whose label covers a changed day does move.
    first_open = one["date"] == dates[cut - horizon + 1]
    assert not np.allclose(one.loc[first_open].iloc[:, 2], two.loc[first_open].iloc[:, 2])


def test_variance_targets_refuse_symbols_without_ranges():
    frame = load_prices(make_prices(30))
    close_only = frame.copy()
    close_only.loc[close_only.symbol == "BBB", ["open", "high", "low"]] = np.nan
    close_only = load_prices(close_only)
    with pytest.raises(ValueError, match="needs \\['open', 'high', 'low', 'close'\\].*BBB"):
        compute_targets(close_only, "log_rv:garman_klass")
    assert compute_targets(close_only, "log_rv:squared_return").iloc[:, 2].notna().sum() > 50
    with pytest.raises(ValueError, match="target must be one of"):
        compute_targets(frame, "log_rv:hourly")
    with pytest.raises(ValueError, match="integer >= 1"):
        compute_features(frame, ["log_rv:0"])
    with pytest.raises(ValueError, match="integer >= 2"):
        compute_features(frame, ["vol_return:1"])


def test_log_variance_maps_back_with_a_stated_bias_correction():
    from metazoo.data import variance

    rng = np.random.default_rng(0)
    # Squared returns of a unit-variance Gaussian: log errors are log chi-square(1).
    e = np.log(rng.normal(size=200_000) ** 2)
    median_forecast = np.zeros_like(e)  # exp(0) = 1 is the true variance; log model is biased
    smear = variance.smearing_factor(e - median_forecast)
    assert smear == pytest.approx(1.0, rel=0.02)  # E[chi2(1)] = 1
    # The lognormal factor is exact for Gaussian log errors and wrong for log chi-square.
    gaussian = rng.normal(-0.3, 0.8, size=200_000)
    assert variance.lognormal_factor(gaussian) == pytest.approx(np.exp(-0.3 + 0.32), rel=0.01)
    assert variance.lognormal_factor(e) > 2 * smear
    np.testing.assert_allclose(variance.to_variance(np.log([2.0, 3.0]), 1.5), [3.0, 4.5])
    with pytest.raises(ValueError, match="factor must be a positive"):
        variance.to_variance([0.0], factor=0.0)
    with pytest.raises(ValueError, match="residuals expected"):
        variance.smearing_factor([np.nan])


def test_make_windows_builds_har_inputs_and_log_variance_targets():
    from metazoo.data import make_windows

    frame = load_prices(make_prices(80))
    har = ["log_rv:1", "log_rv:5", "log_rv:22"]
    windows = make_windows(frame, 1, 5, har, "log_rv:parkinson", cumulative=True)
    assert windows.feature_names == tuple(har)
    assert windows.target_names == ("log_rv_parkinson_mean_5",)
    feats = compute_features(frame, har).set_index(["date", "symbol"])
    targets = compute_targets(frame, "log_rv:parkinson", 5, True).set_index(["date", "symbol"])
    keys = list(zip(windows.times, windows.symbols, strict=True))
    np.testing.assert_allclose(windows.X[:, 0], feats.loc[keys].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(windows.y, targets.loc[keys].to_numpy(), rtol=1e-6)
    assert len(windows) == 2 * (80 - 22 - 5)  # every date with full history and 5 days ahead
