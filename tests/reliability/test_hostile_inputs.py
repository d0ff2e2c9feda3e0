"""Hostile inputs at every public entry point: each call either works, with finite output,
or raises a clear `ValueError` or `TypeError` from metazoo's own checks (or from Keras'
argument checks), never a `KeyError`, `IndexError`, TensorFlow error or a NaN in the output.

Malformed frames (missing, renamed or garbage columns, NaN, infinities, negative prices,
duplicate or unsorted dates, object dtypes, empty frames), extreme magnitudes (1e300,
1e-300, subnormals), gaps, tiny series and wrong shapes are drawn with hypothesis (see
`hostile.py` for the contract and the strategies). Most draws make one argument hostile and
keep the others valid, so both the refusals and the working paths are exercised; run with
`--hypothesis-show-statistics` to see how often each call worked or refused. The examples
are derandomized (the same on every run) and few, to keep the file under a minute; the
library was explored with thousands of random examples per test before they were fixed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

from metazoo import metrics, models
from metazoo.backtest import backtest, forward_returns
from metazoo.baselines import GARCH11, HARRV, HistoricalMean, LinearLags, ZeroForecast
from metazoo.data import (
    ARTasks,
    PurgedKFold,
    TaskSet,
    WalkForward,
    WindowScaler,
    load_prices,
    make_windows,
)
from metazoo.trainers import ANIL, MAML, MetaSGD, ModelAveraging, ModelSelection, Reptile
from tests.conftest import make_prices
from tests.reliability.hostile import (
    FAST,
    NUMERIC,
    SLOW,
    Hostile,
    array_pair,
    assert_finite,
    attempt,
    hostile_frames,
    hostile_meta_batch,
    sized,
    sometimes_bad,
    vendor_frames,
    wide_frames,
    window_set,
)


# -- loading and windows ---------------------------------------------------------------------
def check_prices(frame) -> None:
    """What a validated frame promises."""
    assert list(frame.columns[:7]) == ["date", "symbol", "open", "high", "low", "close", "volume"]
    assert len(frame) and not frame.duplicated(["symbol", "date"]).any()
    assert_finite(frame["close"])
    assert (frame["close"] > 0).all()
    for column in NUMERIC:
        values = frame[column].to_numpy(dtype=np.float64)
        assert not np.isinf(values).any()
        for symbol, present in frame.groupby("symbol")[column].count().items():
            assert present in (0, (frame["symbol"] == symbol).sum()), "a gap left in the data"
    for _, dates in frame.groupby("symbol")["date"]:
        assert dates.is_monotonic_increasing


@FAST
@given(
    frame=hostile_frames(), missing=st.sampled_from(["raise", "drop", "ffill"]), sort=st.booleans()
)
def test_load_prices(frame, missing, sort):
    loaded = attempt(load_prices, frame, missing=missing, sort=sort)
    if loaded is not None:
        check_prices(loaded)


def check_vendor_load(family, other, frame, loaded, symbol) -> None:
    """What a file in one of the vendor families must give once loaded."""
    check_prices(loaded)
    report = loaded.attrs["cleaning_report"]
    change = loaded.groupby("symbol", sort=False)["close"].pct_change()
    flagged = loaded.loc[(change > 1.0) | (change < -0.5), ["symbol", "date"]]
    assert flagged.values.tolist() == report.jumps[["symbol", "date"]].values.tolist()
    if other is not None:
        return
    if family in ("_integer_dates", "_offset_dates"):
        # daily dates stay on their calendar day: not nanoseconds since 1970, not moved to UTC
        assert (loaded["date"] == loaded["date"].dt.normalize()).all()
        assert loaded["date"].dt.year.between(1970, 2100).all()
    if family == "_yahoo_layout":
        assert loaded["symbol"].unique().tolist() == [symbol]
        adjusted = [c for c in frame.columns if c.lower().replace("_", " ") == "adj close"]
        if adjusted:
            np.testing.assert_allclose(loaded["close"], frame[adjusted[0]].to_numpy())
            assert "unadjusted_close" in loaded


@FAST
@given(case=vendor_frames(), through_csv=st.booleans())
def test_load_prices_on_vendor_files(case, through_csv):
    """yyyymmdd and offset dates, split-like jumps and Yahoo files, as a frame or a CSV."""
    family, other, frame = case
    if through_csv:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "ABC.csv"
            frame.to_csv(path, index=False)
            loaded = attempt(load_prices, path, missing="drop", sort=True)
    else:
        loaded = attempt(load_prices, frame, missing="drop", sort=True)
    if loaded is not None:
        check_vendor_load(family, other, frame, loaded, "ABC" if through_csv else "ASSET")


@FAST
@given(data=st.data(), frame=hostile_frames(max_mutations=2, lengths=(3, 30, 60, 120)))
def test_make_windows_on_validated_and_raw_frames(data, frame):
    pick = Hostile(data.draw, ["lookback", "horizon", "target"], calm=3)
    lookback = pick("lookback", [1, 3, 20], [0, -1, 2.5, None, "3", True])
    horizon = pick("horizon", [1, 2], [0, -2, 1.5, None, "1"])
    target = pick("target", ["return", "variance", "direction"], ["price", None])
    loaded = attempt(load_prices, frame, missing="drop", sort=True)
    for prices in (frame, loaded) if loaded is not None else (frame,):
        windows = attempt(make_windows, prices, lookback=lookback, horizon=horizon, target=target)
        if windows is not None:
            check_windows(windows)
            scaled = attempt(lambda w: WindowScaler(per_symbol=True).fit(w).transform(w), windows)
            if scaled is not None:
                assert_finite(scaled.X, scaled.y)


def check_windows(windows) -> None:
    n = len(windows)
    assert n > 0 and windows.X.ndim == 3 and windows.y.shape[0] == n
    assert windows.times.shape == windows.symbols.shape == windows.label_end.shape == (n,)
    assert_finite(windows.X, windows.y)
    assert (np.diff(windows.times.astype("datetime64[ns]").astype(np.int64)) >= 0).all()


# -- windows, scalers, splitters and tasks ---------------------------------------------------
@pytest.fixture(scope="module")
def clean_windows():
    return make_windows(load_prices(make_prices(200, symbols=("AAA", "BBB"))), lookback=5)


@FAST
@given(data=st.data(), n=st.sampled_from([0, 1, 2, 5, 30]), per_symbol=st.booleans())
@np.errstate(over="ignore")
def test_window_scaler(data, n, per_symbol):
    windows = window_set(data.draw, n)
    scaler = attempt(WindowScaler(per_symbol=per_symbol, scale_targets=True).fit, windows)
    if scaler is None:
        return
    other = data.draw(st.sampled_from(["same", "fresh", "array", "none"]))
    target = {"same": windows, "fresh": window_set(data.draw, 5), "array": np.zeros((3, 4, 2))}
    scaled = attempt(scaler.transform, target.get(other))
    if scaled is not None:
        assert_finite(scaled.X, scaled.y)
        assert scaled.X.shape == target[other].X.shape


BAD_COUNTS = [0, -1, 2.5, "3", None, True, np.inf]


@FAST
@given(
    data=st.data(),
    n=st.sampled_from([0, 3, 40, 60]),
    splitter=st.sampled_from(["walk", "rolling", "purged"]),
)
def test_splitters(data, n, splitter):
    pick = Hostile(data.draw, ["groups", "n_splits", "size", "horizon", "gap"], calm=3)
    X = np.zeros((n, 3, 1))
    groups = pick("groups", ["none", "dates", "repeated"], ["nan", "mixed", "short", "2d"])
    times = {
        "none": None,
        "dates": np.arange("2020-01-01", n, dtype="datetime64[D]"),
        "repeated": np.repeat(np.arange(n), 2)[:n],
        "nan": np.where(np.arange(n) % 3, np.arange(n), np.nan),
        "mixed": np.array([i if i % 2 else str(i) for i in range(n)], dtype=object),
        "short": np.arange(max(n - 1, 0)),
        "2d": np.zeros((n, 2)),
    }[groups]
    n_splits = pick("n_splits", [2, 3], BAD_COUNTS)
    size = pick("size", [1, 3], BAD_COUNTS)
    horizon = pick("horizon", [1, 2], BAD_COUNTS)
    gap = pick("gap", [0, 1, 0.1], [-1, 1.5, -0.1, None, "1", np.nan])
    if splitter == "purged":
        cv = PurgedKFold(n_splits=n_splits, horizon=horizon, embargo=gap)
    else:
        rolling = splitter == "rolling"
        gap = (
            int(gap) if isinstance(gap, float) and gap == 0.1 else gap
        )  # a fraction is for embargo
        cv = WalkForward(
            n_splits=n_splits,
            mode="rolling" if rolling else "expanding",
            train_size=size if rolling else None,
            test_size=size,
            gap=gap,
            horizon=horizon,
        )
    folds = attempt(lambda: list(cv.split(X, groups=times)))
    if folds is None:
        return
    assert folds
    for train, test in folds:
        assert len(train) and len(test) and not set(train) & set(test)
        assert 0 <= min(train.min(), test.min()) and max(train.max(), test.max()) < n


@SLOW
@given(data=st.data())
def test_task_sets_and_meta_batches(clean_windows, data):
    names = ["period", "min_samples", "meta_batch_size", "support", "query", "n_batches", "seed"]
    pick = Hostile(data.draw, names)
    period = pick("period", ["Q", "M", "Y"], ["Z", "", None, 5, "W-XYZ"])
    tasks = attempt(
        TaskSet.from_windows,
        clean_windows,
        period=period,
        min_samples=pick("min_samples", [1, 5], BAD_COUNTS),
    )
    if tasks is None:
        return
    size = pick("meta_batch_size", [1, 4], BAD_COUNTS)
    support = pick("support", [1, 5], [*BAD_COUNTS, 10_000])
    query = pick("query", [1, 5], BAD_COUNTS)
    n_batches = pick("n_batches", [None, 2], BAD_COUNTS)
    seed = pick("seed", [0, 7], [-1, 2.5, "x", None, True])
    batches = attempt(tasks.meta_batches, size, support, query, n_batches, seed)
    if batches is None:
        return
    batch = next(iter(batches))
    assert_finite(*batch)
    assert tuple(batch[0].shape[:2]) == (size, support)
    assert tuple(batch[2].shape[:2]) == (size, query)


def test_entry_points_refuse_what_is_not_their_input(clean_windows):
    for function, argument in [
        (load_prices, 42),
        (load_prices, np.zeros((3, 3))),
        (make_windows, np.zeros((3, 3))),
        (make_windows, None),
        (WindowScaler().fit, clean_windows.X),
        (TaskSet.from_windows, clean_windows.X),
        (TaskSet, [1, 2]),
    ]:
        assert attempt(function, argument) is None


# -- models and trainers ---------------------------------------------------------------------
SMALL_HPARAMS = [0, -1, 1, 2, 3, 0.5, 1.5, -0.2, 1.0, None, "x", "relu", (), (0,), (2,), (2, 3)]
SMALL_HPARAMS += [True, np.nan, np.inf, [1, 2], {"a": 1}]


@st.composite
def builds(draw):
    pick = Hostile(draw, ["name", "shape", "output_dim", "hparams"], calm=3)
    name = pick("name", models.available(), ["nope", None, 3])
    known = models.hyperparameters(name) if name in models.available() else {}
    chosen = draw(st.lists(st.sampled_from(sorted(known) + ["bogus"]), max_size=2, unique=True))
    hparams = (
        {} if pick.bad != "hparams" else {k: draw(st.sampled_from(SMALL_HPARAMS)) for k in chosen}
    )
    shape = pick(
        "shape", [(4, 2), (1, 1), [6, 3]], [(0, 3), (3,), (3, 2, 1), (-1, 2), (2.5, 2), None, "ab"]
    )
    output_dim = pick("output_dim", [1, 2], [0, -1, 1.5, None, "2", True])
    return name, shape, output_dim, hparams


@FAST
@given(spec=builds(), probabilistic=st.booleans())
def test_models_build(spec, probabilistic):
    name, shape, output_dim, hparams = spec
    model = attempt(
        models.build, name, shape, output_dim, probabilistic=probabilistic, seed=0, **hparams
    )
    if model is None:
        return
    x = np.random.default_rng(0).normal(size=(3, *model.input_shape[1:])).astype("float32")
    out = model(x)
    assert out.shape == (3, (2 if probabilistic else 1) * output_dim)
    assert_finite(out)


TRAINERS = {"maml": MAML, "meta_sgd": MetaSGD, "anil": ANIL, "reptile": Reptile}


@pytest.fixture(scope="module")
def learners():
    built = {}
    for key, cls in TRAINERS.items():
        learner = cls(models.build("mlp", (3, 1), 1, seed=0, units=(4,)), inner_lr=0.05)
        learner.compile(optimizer="sgd", loss="mse")
        built[key] = learner
    return built


WORKING_CHANGES = ("none", "huge", "tiny")


def _fresh_fit(learner, data):
    """`fit` for one epoch, traced afresh: a learner refitted on data of other shapes retraces
    with relaxed (unknown) dimensions, which no static check can see."""
    learner.train_function = None
    return learner.fit(data, epochs=1, verbose=0).history


@SLOW
@given(data=st.data(), key=st.sampled_from(sorted(TRAINERS)))
def test_meta_learners_fit_and_adapt_with_wrong_shapes(learners, data, key):
    learner = learners[key]
    weights = learner.get_weights()
    change, batch = hostile_meta_batch(data.draw)
    history = attempt(_fresh_fit, learner, tf.data.Dataset.from_tensors(batch))
    learner.set_weights(weights)
    if change not in WORKING_CHANGES:
        assert history is None, f"a meta-batch with {change} was not refused"
    elif change != "huge":  # squared errors of 1e30 overflow float32: TerminateOnNaN's job
        assert_finite(history["loss"])
    support_x, support_y = (
        part[0] if part.ndim == 3 + (i == 0) and len(part) else part
        for i, part in enumerate(batch[:2])
    )
    steps = data.draw(st.sampled_from([None, 1, 3, 0, -1, 2.5, "2", True]))
    adapted = attempt(learner.adapt, support_x, support_y, steps=steps)
    if adapted is not None:
        x = np.zeros((2, *learner.model.input_shape[1:]), dtype="float32")
        assert_finite(adapted.predict(x, verbose=0))


@SLOW
@given(
    kind=st.sampled_from(["nan", "inf", "strings", "objects", "wrong_rank", "ints", "lists"]),
    key=st.sampled_from(sorted(TRAINERS)),
)
def test_meta_learners_adapt_and_fit_on_malformed_values(learners, kind, key):
    learner = learners[key]
    sx, sy, qx, qy = ARTasks(order=2, lookback=3, unit_variance=True).sample(2, 4, 4, seed=0)
    support_x, support_y = sx[0].copy(), sy[0].copy()
    if kind == "nan":
        support_y[0] = np.nan
    elif kind == "inf":
        support_x[0, 0] = np.inf
    elif kind == "strings":
        support_x = np.full(support_x.shape, "a")
    elif kind == "objects":
        support_y = np.array([object()] * len(support_y))
    elif kind == "wrong_rank":
        support_x = support_x[..., 0]
    elif kind == "ints":
        support_x, support_y = support_x.astype(int), support_y.astype(int)
    elif kind == "lists":
        support_x, support_y = support_x.tolist(), support_y.tolist()
    adapted = attempt(learner.adapt, support_x, support_y)
    assert (adapted is not None) == (kind in ("ints", "lists"))
    weights = learner.get_weights()
    for batch in ({"support_x": sx}, (sx, sy, qx, qy, qy), ("a", "b", "c", "d")):
        assert attempt(_fresh_fit, learner, tf.data.Dataset.from_tensors(batch)) is None
    learner.set_weights(weights)


# -- metrics, baselines and backtests --------------------------------------------------------
@FAST
@given(data=st.data(), name=st.sampled_from(["mse", "mae", "hit_rate", "ic", "rank_ic"]))
@np.errstate(all="ignore")
def test_forecast_metrics(data, name):
    y_true, y_pred = array_pair(data.draw)
    value = attempt(getattr(metrics, name), y_true, y_pred)
    if value is None:
        return
    if name in ("ic", "rank_ic") and np.isnan(value):  # documented: constant input
        assert np.ptp(np.asarray(y_true, float)) == 0 or np.ptp(np.asarray(y_pred, float)) == 0
    else:
        assert_finite(value)
    if name in ("ic", "rank_ic", "hit_rate") and not np.isnan(value):
        assert -1 <= value <= 1


@FAST
@given(
    data=st.data(),
    name=st.sampled_from(
        [
            "qlike",
            "ic_by_period",
            "icir",
            "annualized_return",
            "annualized_volatility",
            "sharpe_ratio",
            "max_drawdown",
            "turnover",
            "strategy_summary",
            "var_breaches",
            "kupiec_pof",
            "var_report",
        ]
    ),
    scalar=sometimes_bad([252, 0.01, 10**6], [0, -1, 1.5, np.nan, np.inf, None, "x", True]),
)
@np.errstate(all="ignore")
def test_finance_metrics(data, name, scalar):
    a, b = array_pair(data.draw)
    function = getattr(metrics, name)
    calls = {
        "qlike": lambda: function(np.abs(a) if isinstance(a, np.ndarray) else a, b),
        "ic_by_period": lambda: function(a, b, np.arange(len(a)) // 3 if sized(a) else a),
        "icir": lambda: function(a),
        "annualized_return": lambda: function(a, periods_per_year=scalar),
        "annualized_volatility": lambda: function(a, periods_per_year=scalar),
        "sharpe_ratio": lambda: function(a, risk_free=0.01, periods_per_year=scalar),
        "max_drawdown": lambda: function(a),
        "turnover": lambda: function(a, periods_per_year=scalar),
        "strategy_summary": lambda: function(a, positions=b),
        "var_breaches": lambda: function(a, b),
        "kupiec_pof": lambda: function(
            data.draw(st.integers(-1, 5)) if scalar != "x" else "x", 5, scalar
        ),
        "var_report": lambda: function(a, np.abs(b) if isinstance(b, np.ndarray) else b, scalar),
    }
    result = attempt(calls[name])
    if result is None:
        return
    if isinstance(result, dict):
        if name == "strategy_summary":
            assert result["ruined"] == (result["ruin_date"] is not None)
        result = {k: v for k, v in result.items() if k not in ("ruined", "ruin_date")}
        result = {k: v for k, v in result.items() if k != "sharpe_ratio" or not np.isnan(v)}
        assert_finite(list(result.values()))
    elif name == "ic_by_period":
        assert_finite(result.to_numpy())
    elif name not in ("icir", "sharpe_ratio") or not np.isnan(result):  # NaN: no variation
        assert_finite(np.asarray(result, dtype=float))


BASELINES = {  # name: (class, its parameter, valid values)
    "zero": (ZeroForecast, None, [None]),
    "historical_mean": (HistoricalMean, "window", [None, 5]),
    "linear_lags": (LinearLags, "lags", [1, 5]),
    "har_rv": (HARRV, None, [None]),
    "garch11": (GARCH11, "mean", ["zero", "constant"]),
}


def check_forecasts(forecasts, prices) -> None:
    """Forecasts are finite after each symbol's warm-up: NaN only in a leading run."""
    assert len(forecasts) == len(prices)
    values = forecasts.drop(columns=["date", "symbol"]).to_numpy(dtype=np.float64)
    assert not np.isinf(values).any()
    for rows in forecasts.groupby("symbol", sort=False).indices.values():
        known = ~np.isnan(values[rows]).any(axis=1)
        assert known.all() or not known.any() or known[known.argmax() :].all(), "a NaN gap"


@FAST
@given(
    data=st.data(),
    frame=hostile_frames(max_mutations=1, lengths=(3, 80, 120)),
    name=st.sampled_from(sorted(BASELINES)),
    target=sometimes_bad(["return", "variance", "direction"], ["price", None]),
    horizon=sometimes_bad([1, 3], [0, 1.5, None]),
    cumulative=st.booleans(),
    validate=st.booleans(),
)
def test_baselines(data, frame, name, target, horizon, cumulative, validate):
    prices = attempt(load_prices, frame, missing="drop", sort=True) if validate else frame
    if prices is None:
        return
    cls, parameter, valid = BASELINES[name]
    value = data.draw(sometimes_bad(valid, [0, -1, 2.5, "x", True]))
    baseline = attempt(
        lambda: cls(**({parameter: value} if parameter else {})).fit(
            prices, target, horizon=horizon, cumulative=cumulative
        )
    )
    if baseline is None:
        return
    forecasts = attempt(baseline.predict, prices)
    if forecasts is not None:
        check_forecasts(forecasts, prices)


@FAST
@given(
    positions=wide_frames("positions"),
    returns=wide_frames("returns"),
    cost=sometimes_bad([0, 5, 2.5], [-1, np.nan, np.inf, "5", None, True]),
    periods=sometimes_bad([252], [0, np.inf, "x"]),
)
@np.errstate(all="ignore")
def test_backtest(positions, returns, cost, periods):
    result = attempt(backtest, positions, returns, cost_bps=cost, periods_per_year=periods)
    if result is None:
        return
    assert_finite(result.net_returns, result.equity, result.costs, result.turnover)
    summary = attempt(result.summary)
    if summary is not None:
        numbers = {k: v for k, v in summary.items() if k not in ("ruined", "ruin_date")}
        assert_finite([v for k, v in numbers.items() if "sharpe" not in k or not np.isnan(v)])


@FAST
@given(data=st.data(), n=st.integers(2, 12))
def test_backtest_through_ruin(data, n):
    """Shorts through doublings and levered longs through crashes: a strategy may lose more
    than its capital, and the backtest and its summary must say so, not crash."""
    dates = pd.bdate_range("2021-01-01", periods=n)
    positions = data.draw(st.lists(st.sampled_from([-3.0, -1.0, 0.0, 0.5, 1.0, 2.0]), min_size=n))
    returns = data.draw(
        st.lists(st.sampled_from([-0.99, -0.6, -0.01, 0.0, 0.01, 0.5, 1.0, 2.0, 9.0]), min_size=n)
    )
    result = attempt(
        backtest, pd.Series(positions[:n], dates), pd.Series(returns[:n], dates), cost_bps=5
    )
    assert result is not None, "a valid backtest was refused"
    equity, net = result.equity.to_numpy(), result.net_returns.to_numpy()
    assert_finite(equity, net)
    assert (equity >= 0).all()
    summary = result.summary()
    assert summary["ruined"] == (result.ruin_date is not None) == bool((net <= -1).any())
    assert -1.0 <= summary["max_drawdown"] <= 0.0
    if result.ruin_date is not None:
        ruin = int(np.argmax(net <= -1))
        assert result.ruin_date == summary["ruin_date"] == dates[ruin]
        assert (equity[ruin:] == 0).all() and (equity[:ruin] > 0).all()
        assert summary["max_drawdown"] == summary["total_return"] == -1.0
    else:
        assert (equity > 0).all()
    numbers = {k: v for k, v in summary.items() if k not in ("ruined", "ruin_date")}
    assert_finite([v for k, v in numbers.items() if "sharpe" not in k or not np.isnan(v)])


@SLOW
@given(frame=hostile_frames())
def test_forward_returns(frame):
    returns = attempt(forward_returns, frame)
    if returns is not None:
        assert not np.isinf(returns.to_numpy(dtype=np.float64)).any()


# -- model averaging and selection -----------------------------------------------------------
def _regression(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3, 1)).astype("float32")
    return X, X[:, -1, :] + 0.1 * rng.normal(size=(n, 1))


@SLOW
@given(data=st.data())
def test_model_selection(data):
    X, y = _regression()
    names = ["X", "y", "cv", "epochs", "learning_rate", "scoring", "n_jobs", "candidates"]
    pick = Hostile(data.draw, names, calm=2)
    X = {"ok": X, "2d": X[..., 0], "nan": np.where(X > 2, np.nan, X), "huge": X * 1e30}[
        pick("X", ["ok"], ["2d", "nan", "huge"])
    ]
    y = {"ok": y, "1d": y[:, 0], "short": y[:30], "str": y.astype(str), "huge": y * 1e200}[
        pick("y", ["ok", "1d"], ["short", "str", "huge"])
    ]
    search = ModelSelection(
        pick("candidates", [{"linear": {}}], [{}, {"nope": {}}, {"mlp": {"units": [(0,)]}}]),
        cv=pick("cv", [2, WalkForward(n_splits=2, test_size=10)], [0, "x", 2.5, object()]),
        epochs=pick("epochs", [1], [0, 1.5, None]),
        learning_rate=pick("learning_rate", [1e-2], [0.0, -1.0, np.nan, np.inf, 1e30]),
        scoring=pick("scoring", ["mse", "ic"], ["nope", None, 3]),
        n_jobs=pick("n_jobs", [1], [0, 1.5, True]),
        refit=False,
        verbose=0,
    )
    fitted = attempt(search.fit, X, y)
    if fitted is not None:
        scores = fitted.cv_results_["mean_score"].to_numpy()
        assert np.isfinite(scores[fitted.best_index_])


@SLOW
@given(data=st.data(), weighting=st.sampled_from(["uniform", "learned", "stacking"]))
def test_model_averaging_fit(data, weighting):
    X, y = _regression()
    pick = Hostile(data.draw, ["X", "y"], calm=1)
    X = {"ok": X, "lookback": X[:, 1:], "features": np.concatenate([X, X], -1)}[
        pick("X", ["ok"], ["lookback", "features"])
    ]
    y = {"ok": y, "1d": y[:, 0], "wide": np.concatenate([y, y], 1), "short": y[:30]}[
        pick("y", ["ok", "1d"], ["wide", "short"])
    ]
    members = [models.build("linear", (3, 1), 1, seed=seed) for seed in range(2)]
    ensemble = ModelAveraging(members, weighting=weighting)
    ensemble.compile(optimizer="adam", loss="mse")
    history = attempt(ensemble.fit, X, y, epochs=1, batch_size=16, verbose=0)
    if history is not None:
        assert_finite(history.history["loss"], ensemble.weights_vector())
