"""The protocol behind `metazoo run`: folds, training, evaluation episodes, forecasts.

For each target and each held-out asset (leave-one-asset-out):

1. Training data: windows of the other assets whose labels end before `test_start`.
   Features and targets are standardized with statistics of those windows only.
2. Tasks: one per asset and calendar period. Meta-learners train on episodes of the
   training tasks; pooled networks and averaging on their windows; baselines on the price
   rows of the training assets before `test_start`.
3. Evaluation: tasks from `test_start` to `test_end` of (1) the training assets (later
   periods) and (2) the held-out asset. Each gives its first `support_size` samples to
   adapt on (fine-tuning, meta-learned adaptation, a from-scratch fit, the support mean) and
   is forecast on the rest, after a purge gap of `horizon - 1` samples.

Forecasts of every learner and baseline go back to the data's units and onto the
calendar; `metazoo.experiment.scoring` turns them into the leaderboard.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from metazoo import data as mdata
from metazoo.experiment.config import ExperimentConfig
from metazoo.experiment.learners import TrainingData, make_learners

VALID_FRACTION = 0.2  # last share of the training dates that averaging weights are fitted on


@dataclass
class RunResult:
    """What a run produced.

    Attributes:
        config: the validated config.
        predictions: one row per (target, fold, evaluation set, model, query sample).
        leaderboard: one row per (target, evaluation set, model) with its metrics.
        strategies: daily net returns of the trading and portfolio strategies.
        run_dir: the run folder (None if nothing was written).
        seconds: wall time.
    """

    config: ExperimentConfig
    predictions: pd.DataFrame
    leaderboard: pd.DataFrame
    strategies: pd.DataFrame
    run_dir: Path | None
    seconds: float


def load_frame(config: ExperimentConfig) -> pd.DataFrame:
    """The price frame of the run: the bundled markets or the user's CSV, some symbols."""
    if config.data is None:
        frame = mdata.load_markets()
    else:
        frame = mdata.load_prices(config.data, missing=config.missing)
    have = sorted(frame["symbol"].unique())
    symbols = config.symbols or have
    unknown = sorted(set(symbols) - set(have))
    if unknown:
        raise ValueError(f"symbols {unknown} are not in the data; it has {have}.")
    held = config.held_out or symbols
    unknown = sorted(set(held) - set(symbols))
    if unknown:
        raise ValueError(f"held_out {unknown} are not among the run's symbols {symbols}.")
    if len(symbols) < 2:
        raise ValueError(
            "A run needs at least 2 symbols (one held out, the others to train on). "
            f"Received: {symbols}"
        )
    frame = frame[frame["symbol"].isin(symbols)].reset_index(drop=True)
    if config.test_end is not None:
        frame = frame[frame["date"] <= pd.Timestamp(config.test_end)].reset_index(drop=True)
    return frame


def run_experiment(
    config: ExperimentConfig | None = None,
    progress: Callable[[str], None] | None = None,
    write: bool = True,
) -> RunResult:
    """Run the experiment of `config` and (with `write`) fill its run folder.

    Args:
        config: the settings (default `ExperimentConfig()`).
        progress: called with one line per finished stage (the CLI prints them).
        write: write the run folder (`results.csv`, `predictions.csv.gz`, TensorBoard logs,
            saved models, `report.md` with plots).

    Returns:
        A `RunResult`.
    """
    import keras
    import tensorflow as tf

    from metazoo.experiment import report, scoring

    began = time.perf_counter()
    config = (config or ExperimentConfig()).validated()
    say = progress or (lambda line: None)
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    frame = load_frame(config)
    run_dir = _run_dir(config) if write else None
    symbols = sorted(frame["symbol"].unique())
    held_out = config.held_out or symbols
    parts = []
    for target in config.targets:
        windows = mdata.make_windows(
            frame, lookback=config.lookback, horizon=config.horizon, target=target
        )
        rows = []
        for number, held in enumerate(held_out, start=1):
            label = f"[{target} | fold {number}/{len(held_out)}: {held} held out]"
            rows += _run_fold(config, frame, windows, target, held, run_dir, label, say)
        parts.append(_with_truth(pd.concat(rows, ignore_index=True), frame, target, config))
    predictions = pd.concat(parts, ignore_index=True)
    next_returns = mdata.compute_targets(frame, "return", 1).rename(
        columns={"return_1": "next_return"}
    )
    trailing_vol = mdata.compute_features(frame, ["rv_cc:21"]).rename(
        columns={"rv_cc:21": "trailing_vol"}
    )
    predictions = predictions.merge(next_returns, on=["date", "symbol"], how="left").merge(
        trailing_vol, on=["date", "symbol"], how="left"
    )
    leaderboard, strategies = scoring.score(predictions, config)
    result = RunResult(
        config, predictions, leaderboard, strategies, run_dir, time.perf_counter() - began
    )
    if write:
        report.write_run(result)
        say(f"run folder: {run_dir}")
    return result


def _run_dir(config: ExperimentConfig) -> Path:
    path = Path(config.output) / (config.run_name or time.strftime("%Y%m%d-%H%M%S"))
    if path.exists() and any(path.iterdir()):
        raise ValueError(f"The run folder {path} exists and is not empty; choose another.")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run_fold(config, frame, windows, target, held, run_dir, label, say) -> list:
    """Forecasts of every learner and baseline on both evaluation sets of one fold."""
    from metazoo.experiment import baselines

    start = pd.Timestamp(config.test_start)
    train_symbols = sorted(set(windows.symbols) - {held})
    train = windows.select(symbols=train_symbols, label_end_before=start)
    if len(train) < 2:
        raise ValueError(f"No training windows of {train_symbols} end before {config.test_start}.")
    scaler = mdata.WindowScaler(scale_targets=True).fit(train)
    tasks = mdata.TaskSet.from_windows(scaler.transform(windows), period=config.period)
    split = tasks.split(test_start=start, held_out=[held])
    training = _training_data(split.train, scaler.transform(train))
    sets = [
        mdata.EvaluationEpisodes.from_tasks(name, part, config.support_size)
        for name, part in split.evaluation_sets().items()
    ]
    rows = []
    shape, out = windows.X.shape[1:], windows.y.shape[1]
    for learner in make_learners(config, shape, out):
        began = time.perf_counter()
        log_dir = _path(run_dir, "tensorboard", target, held, learner.name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Keras notes on retracing and such
            learner.fit(training, log_dir)
            for episodes in sets:
                forecast = scaler.inverse_targets(episodes.unpad(learner.predict(episodes)))
                rows.append(_rows(episodes, forecast, target, held, learner.name))
        if run_dir is not None:
            learner.save(_path(run_dir, "models", target, held, learner.name + ".keras"))
        say(f"{label} {learner.name}: {time.perf_counter() - began:.1f}s")
    began = time.perf_counter()
    fit_frame = frame[frame["symbol"].isin(train_symbols) & (frame["date"] < start)]
    for name, forecasts in baselines.forecasts(config, target, fit_frame, frame, sets, scaler):
        for episodes, forecast in zip(sets, forecasts, strict=True):
            rows.append(_rows(episodes, forecast, target, held, name, kind="baseline"))
    say(f"{label} baselines: {time.perf_counter() - began:.1f}s")
    return rows


def _training_data(tasks, windows) -> TrainingData:
    dates = np.unique(windows.times)
    cut = pd.Timestamp(dates[int(len(dates) * (1 - VALID_FRACTION))])
    return TrainingData(
        tasks=tasks,
        windows=windows,
        fit_windows=windows.select(label_end_before=cut),
        valid_windows=windows.select(start=cut),
    )


def _rows(episodes: mdata.EvaluationEpisodes, forecast, target, held, model, kind="learner"):
    """Prediction rows: one per query sample, forecasts `pred_1..pred_n` in the data's units."""
    query = episodes.query_windows()
    table = pd.DataFrame(
        {
            "target": target,
            "fold": held,
            "eval_set": episodes.name,
            "model": model,
            "kind": kind,
            "task": episodes.task_labels(),
            "date": query.times,
            "symbol": query.symbols.astype(str),
        }
    )
    forecast = np.asarray(forecast, dtype=np.float64).reshape(len(query), -1)
    for column in range(forecast.shape[1]):
        table[f"pred_{column + 1}"] = forecast[:, column]
    return table


def _with_truth(predictions, frame, target, config) -> pd.DataFrame:
    """The exact targets (`true_1..true_n`, unscaled) of every prediction row."""
    truth = mdata.compute_targets(frame, target, config.horizon)
    names = list(truth.columns[2:])
    truth = truth.rename(columns={n: f"true_{i + 1}" for i, n in enumerate(names)})
    merged = predictions.merge(truth, on=["date", "symbol"], how="left", validate="many_to_one")
    if merged[[c for c in merged if c.startswith("true_")]].isna().any(axis=None):
        raise RuntimeError("Some forecast has no target in the data; this is a bug.")
    merged.attrs["target_names"] = names
    return merged


def _path(run_dir, *parts) -> Path | None:
    if run_dir is None:
        return None
    return Path(run_dir).joinpath(*(str(p).replace(":", "_").replace("+", "_") for p in parts))
