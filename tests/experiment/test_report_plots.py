"""The report's plots on a tiny fake run: intervals, chosen curves, titles, scales."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer, ErrorbarContainer

from metazoo.experiment import plots, scoring
from metazoo.experiment.config import ExperimentConfig
from metazoo.experiment.run import RunResult
from metazoo.metrics import finance

LEARNERS = ["pooled:mlp", "finetune:mlp", "scratch:mlp", "maml:mlp", "context:mlp"]
BASELINES = ["zero", "historical_mean", "linear_lags"]
VARIANCE_BASELINES = ["historical_mean", "linear_lags", "har_rv", "garch11"]
TARGETS = ["return", "variance", "variance:5"]
PERIODS = ["2015Q1", "2015Q2", "2015Q3"]
HELD = "held_out_assets"


def _truth(target, returns):
    """Next-day return, its square, or the mean square over the next 5 days."""
    if target == "return":
        return returns
    squares = pd.Series(returns**2)
    if target == "variance":
        return squares.to_numpy()
    return squares[::-1].rolling(5, min_periods=1).mean()[::-1].to_numpy()


def _forecast(rng, target, model, truth, scale, days):
    """A forecast of `model` with more noise the later the learner; variance forecasts
    are positive: a mix of the truth and the true level, times lognormal noise."""
    noise = 0.5 * (1 + LEARNERS.index(model)) if model in LEARNERS else 1.0
    if target == "return":
        if model == "historical_mean":
            return np.full(days, truth.mean() * 0.5 + 0.0002)
        if model == "zero":
            return np.zeros(days)
        return truth + rng.normal(0, noise * scale, days)
    if model == "historical_mean":
        return np.full(days, truth.mean() * 0.5 + 1e-5)
    spread = {"har_rv": 0.2, "garch11": 0.3, "linear_lags": 0.6}.get(model, 0.1 * noise)
    return (0.3 * truth + 0.7 * scale**2) * np.exp(rng.normal(0, spread, days))


def fake_predictions(seed=0, loud_task="CCC@2015Q2", days=30) -> pd.DataFrame:
    """Predictions of three targets on two evaluation sets: AAA, BBB later; CCC held out.
    The returns of `loud_task` are five times as volatile as the others'."""
    rng = np.random.default_rng(seed)
    rows = []
    sets = {"later_periods": ("AAA", "BBB"), HELD: ("CCC",)}
    for eval_set, symbols in sets.items():
        fold = "CCC"
        for symbol in symbols:
            for q, period in enumerate(PERIODS):
                task = f"{symbol}@{period}"
                dates = pd.bdate_range(f"2015-{1 + 3 * q:02d}-05", periods=days)
                scale = 0.05 if task == loud_task else 0.01
                returns = rng.normal(0.0005, scale, days)
                for target in TARGETS:
                    truth = _truth(target, returns)
                    baselines = BASELINES if target == "return" else VARIANCE_BASELINES
                    for model in LEARNERS + baselines:
                        rows.append(
                            pd.DataFrame(
                                {
                                    "target": target,
                                    "fold": fold,
                                    "eval_set": eval_set,
                                    "model": model,
                                    "kind": "learner" if model in LEARNERS else "baseline",
                                    "task": task,
                                    "date": dates,
                                    "symbol": symbol,
                                    "pred_1": _forecast(rng, target, model, truth, scale, days),
                                    "true_1": truth,
                                    "next_return": returns,
                                    "trailing_vol": np.full(days, scale),
                                }
                            )
                        )
    return pd.concat(rows, ignore_index=True)


def fake_result(run_dir, seed=0) -> RunResult:
    """A RunResult scored as a real run is, without training anything."""
    config = ExperimentConfig(targets=list(TARGETS), held_out=["CCC"], seed=seed)
    predictions = fake_predictions(seed)
    leaderboard, strategies = scoring.score(predictions, config)
    return RunResult(config, predictions, leaderboard, strategies, run_dir, 1.0)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return fake_result(tmp_path_factory.mktemp("fake_run"))


def _board(result, target):
    return result.leaderboard[result.leaderboard["target"] == target]


def _predictions(result, target):
    return result.predictions[result.predictions["target"] == target]


def test_task_intervals_hold_the_leaderboard_value_and_are_reproducible(result):
    predictions = _predictions(result, "return")
    state = np.random.get_state()  # noqa: NPY002 (checks the legacy global RNG)
    first = plots.task_intervals(predictions, "r2_oos", seed=3)
    assert np.array_equal(np.random.get_state()[1], state[1])  # noqa: NPY002
    again = plots.task_intervals(predictions, "r2_oos", seed=3)
    pd.testing.assert_frame_equal(first, again)
    other = plots.task_intervals(predictions, "r2_oos", seed=4)
    assert not np.allclose(first["low"], other["low"])
    board = _board(result, "return").set_index(["eval_set", "model"])
    merged = first.set_index(["eval_set", "model"]).join(board["r2_oos"])
    merged = merged.drop(index="historical_mean", level="model")
    assert (merged["low"] <= merged["r2_oos"] + 1e-12).all()
    assert (merged["r2_oos"] <= merged["high"] + 1e-12).all()
    assert (merged["high"] > merged["low"]).all()
    reference = first[first["model"] == "historical_mean"]
    assert np.allclose(reference[["low", "high"]], 0.0)
    assert set(first.loc[first["eval_set"] == HELD, "n_tasks"]) == {len(PERIODS)}


def test_task_intervals_collapse_when_every_task_is_alike():
    one = fake_predictions().query("target == 'return' and task == 'CCC@2015Q1'")
    copies = [one.assign(task=f"CCC@2015Q{q}") for q in (1, 2, 3)]
    intervals = plots.task_intervals(pd.concat(copies), "mse")
    assert np.allclose(intervals["low"], intervals["high"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"metric": "sharpe"}, "`metric` expected"), ({"level": 1.5}, "`level` expected")],
)
def test_task_intervals_refuse_bad_arguments(result, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plots.task_intervals(_predictions(result, "return"), **kwargs)


def test_sharpe_interval_is_centred_on_the_sharpe_ratio_and_shrinks_with_days():
    rng = np.random.default_rng(0)
    returns = rng.normal(0.001, 0.01, 1000)
    sharpe, low, high = plots.sharpe_interval(returns)
    assert np.isclose(sharpe, finance.sharpe_ratio(returns))
    assert low < sharpe < high and np.isclose(sharpe - low, high - sharpe)
    _, low4, high4 = plots.sharpe_interval(np.tile(returns, 4))
    assert np.isclose((high - low) / (high4 - low4), 2.0, rtol=0.01)
    assert np.isnan(plots.sharpe_interval(np.zeros(10))).all()


def test_leaderboard_chart_writes_every_value_and_draws_an_interval_per_bar(result):
    board = _board(result, "return")
    fig = plots.leaderboard_chart(board, _predictions(result, "return"), "return")
    try:
        for ax, eval_set in zip(fig.axes, ["later_periods", HELD], strict=True):
            rows = board[board["eval_set"] == eval_set].dropna(subset=["r2_oos"])
            texts = {t.get_text() for t in ax.texts}
            assert texts == {f"{v:.3g}" for v in rows["r2_oos"]}
            bars = [c for c in ax.containers if isinstance(c, BarContainer)]
            assert len(bars) == 1 and len(bars[0]) == len(rows)  # one bar per model
            errors = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
            segments = errors[0].lines[2][0].get_segments()
            assert len(segments) == len(rows)
            drawn = sum(np.ptp(np.asarray(seg)[:, 0]) > 0 for seg in segments)
            # intervals show wherever they reach above the cut at R^2 = -1
            intervals = plots.task_intervals(_predictions(result, "return"))
            visible = intervals[(intervals["eval_set"] == eval_set) & (intervals["high"] > -1)]
            assert drawn == (visible["high"] > visible["low"]).sum() > 0
            assert ax.get_xlabel() == "r2_oos (return, day 1 ahead)"
            assert ("CCC" if eval_set == HELD else "AAA, BBB") in ax.get_title()
        assert "95%" in fig._suptitle.get_text()
    finally:
        plt.close(fig)


def test_equity_chart_shows_the_top_learners_baselines_and_buy_and_hold_only(result):
    board = _board(result, "return")
    top = plots.best_learners(board)
    held = board[(board["eval_set"] == HELD) & (board["kind"] == "learner")]
    assert top == held.sort_values("sharpe", ascending=False)["model"][:3].tolist()
    fig = plots.equity_chart(board, result.strategies, _predictions(result, "return"), "return")
    try:
        for ax in fig.axes:
            labels = [line.get_label().split(" (")[0] for line in ax.get_lines()]
            labels = [x for x in labels if not x.startswith("_")]
            assert labels == [*top, "historical_mean", "linear_lags", "buy_and_hold"]
            colors = [line.get_color() for line in ax.get_lines()[: len(labels)]]
            assert len(set(colors)) == len(colors)
            legend = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
            assert legend.x0 >= ax.get_window_extent().x1  # outside the curves
            assert ax.get_xlabel() == "date" and "equity" in ax.get_ylabel()
            assert "top 3 learners by held-out Sharpe" in ax.get_title()
    finally:
        plt.close(fig)


@pytest.mark.parametrize("target", TARGETS)
def test_forecast_chart_picks_the_loudest_held_out_quarter_and_a_meta_learner(result, target):
    assert plots.stress_task(_predictions(result, target)) == ("CCC", "CCC@2015Q2")
    board = _board(result, target)
    metric = "mse" if target == "return" else "qlike"
    models = plots.forecast_models(board, metric)
    held = board[board["eval_set"] == HELD]
    learners = held[held["kind"] == "learner"].sort_values(metric)
    assert models[0] == learners["model"].iloc[0]
    assert any(plots.is_meta_learner(m) for m in models)
    baselines = BASELINES if target == "return" else VARIANCE_BASELINES
    assert "pooled:mlp" in models and any(m in baselines for m in models)
    fig = plots.forecast_chart(board, _predictions(result, target), target)
    try:
        ax = fig.axes[0]
        title = ax.get_title()
        assert "Held-out CCC, 2015Q2" in title and "largest return variance" in title
        assert f"(by held-out {metric.upper()})" in title
        assert ax.get_yscale() == ("linear" if target == "return" else "log")
        labels = [line.get_label() for line in ax.get_lines() if line.get_label()[0] != "_"]
        assert labels == ["actual", *models]
    finally:
        plt.close(fig)


def test_the_loudest_quarter_follows_the_data():
    predictions = fake_predictions(loud_task="CCC@2015Q3").query("target == 'return'")
    assert plots.stress_task(predictions) == ("CCC", "CCC@2015Q3")
