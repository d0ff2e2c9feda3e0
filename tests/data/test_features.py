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
    with pytest.raises(ValueError, match="horizon must be an integer >= 1"):
        compute_targets(frame, "return", horizon=0)
    with pytest.raises(ValueError, match="in date order"):
        compute_features(frame.iloc[::-1], ["log_return"])
    with pytest.raises(ValueError, match="Missing columns: \\['close'\\]"):
        compute_targets(frame.drop(columns="close"))
