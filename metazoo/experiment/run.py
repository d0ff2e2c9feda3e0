"""The protocol behind `metazoo run`: folds, training, evaluation episodes, forecasts.

For each target and each fold (a group of held-out assets):

1. Evaluation periods: each asset's last `test_fraction` of forecast dates, in its own
   chronology (or every date from one calendar `test_start` on). Training samples are
   those of the other assets whose labels end `embargo` trading days before their asset's
   evaluation period. Features and targets are standardized with statistics of those
   windows only.
2. Tasks: one per asset and calendar period. Meta-learners train on episodes of the
   training tasks; pooled networks and averaging on their windows; baselines on the price
   rows of the training assets before their label cutoffs.
3. Evaluation: the tasks in the evaluation periods of (1) the training assets (later
   periods) and (2) the held-out assets. Each gives its first `support_size` samples to
   adapt on (fine-tuning, meta-learned adaptation, a from-scratch fit, the support mean)
   and is forecast on the rest, after a purge gap of `horizon - 1` samples.

Each target token has its own windows, horizon, loss and units (see
`metazoo.experiment.targets`): the purge gap and the training-label embargo follow the
target's own horizon (a `variance:5` label ends 5 days after its forecast date). Variance
learners train with QLIKE on log-variance outputs and forecast `exp(output)`.

With `validation`, every asset's evaluation period (of any target) and the embargo before
it are removed from the data first, and the same protocol runs on what is left: its
"held-out" scores are on validation periods, and hyperparameters are chosen on them.

Forecasts of every learner and baseline go back to the data's units and onto the
calendar; `metazoo.experiment.scoring` turns them into the leaderboard.
"""

from __future__ import annotations

import dataclasses
import queue
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from metazoo import data as mdata
from metazoo.experiment import workers
from metazoo.experiment.config import ExperimentConfig
from metazoo.experiment.environment import import_tensorflow_quietly, resolve_jobs
from metazoo.experiment.targets import parse_token, section_config, target_spec
from metazoo.forecasting import save_run_forecaster

if TYPE_CHECKING:  # the learners import TensorFlow, which only the parts need
    from metazoo.experiment.learners import TrainingData

VALID_FRACTION = 0.2  # last share of the training dates that averaging weights are fitted on
# The in-sample episodes that a 1-day variance target's calibrated VaR is read from: the
# last CALIBRATION_PERIODS training tasks of every training asset, forecast by every model
# as an evaluation task is (adapting on its first K samples).
CALIBRATION, CALIBRATION_PERIODS = "calibration", 8


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
        calibration: the in-sample prediction rows (`eval_set` "calibration") of the 1-day
            variance targets, on the training tasks of each fold; the calibrated VaR is
            read from them. Empty without such a target.
        machine: what the parts were trained on (`describe_machine`).
        plots: target -> `(title, file name)` of the plots already in the run folder.
        drawing: processes still drawing some of those plots (the run folder's report
            waits for them: `metazoo.experiment.report.wait_for`).
    """

    config: ExperimentConfig
    predictions: pd.DataFrame
    leaderboard: pd.DataFrame
    strategies: pd.DataFrame
    run_dir: Path | None
    seconds: float
    calibration: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    machine: str = ""
    plots: dict = dataclasses.field(default_factory=dict)
    drawing: list = dataclasses.field(default_factory=list, repr=False)


def load_frame(config: ExperimentConfig) -> pd.DataFrame:
    """The price frame of the run: the bundled markets and/or the user's CSV, some
    symbols, each cut to its last `history_years`."""
    if config.data is None:
        frame = mdata.load_markets()
    else:
        frame = mdata.load_prices(config.data, missing=config.missing, layout=config.layout)
        own = sorted(frame["symbol"].unique())
        if config.with_bundled or len(own) == 1:  # one asset: train on the bundle, test on it
            bundled = mdata.load_markets()
            clash = sorted(set(frame["symbol"]) & set(bundled["symbol"]))
            if clash:
                raise ValueError(
                    f"with_bundled expected symbols of --data that the bundle does not have. "
                    f"Received: {clash} in both; rename them in the file."
                )
            frame = pd.concat([bundled, frame], ignore_index=True)
            frame = frame.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)
            frame.attrs["held_out"] = own
    have = sorted(frame["symbol"].unique())
    symbols = config.symbols or have
    unknown = sorted(set(symbols) - set(have))
    if unknown:
        raise ValueError(f"symbols {unknown} are not in the data; it has {have}.")
    held = config.held_out or []
    unknown = sorted(set(held) - set(symbols))
    if unknown:
        raise ValueError(f"held_out {unknown} are not among the run's symbols {symbols}.")
    if len(symbols) < 2:
        raise ValueError(
            "A run needs at least 2 symbols (held-out ones, and others to train on). "
            f"Received: {symbols}"
        )
    frame = frame[frame["symbol"].isin(symbols)].reset_index(drop=True)
    if config.test_end is not None:
        frame = frame[frame["date"] <= pd.Timestamp(config.test_end)].reset_index(drop=True)
    if config.history_years is not None:
        last = frame.groupby("symbol")["date"].transform("max")
        first = last - pd.to_timedelta(round(config.history_years * 365.25), unit="D")
        frame = frame[frame["date"] > first].reset_index(drop=True)
    return frame


def asset_classes(frame: pd.DataFrame) -> pd.DataFrame:
    """Symbol -> asset class of the run's symbols (`other` where the data do not say)."""
    table = mdata.universe()["asset_class"]
    symbols = sorted(frame["symbol"].unique())
    classes = table.reindex(symbols).fillna("other")
    return classes.rename_axis("symbol").reset_index()


def make_folds(frame: pd.DataFrame, config: ExperimentConfig) -> list:
    """The run's `AssetFold`s: `held_out` or `held_out_class` as one fold, or `folds`
    groups stratified by asset class (a symbol of the user's data held out in each)."""
    classes = asset_classes(frame)
    symbols = tuple(classes["symbol"])
    if config.held_out:
        test = tuple(sorted(config.held_out))
        train = tuple(s for s in symbols if s not in test)
        return [mdata.AssetFold(",".join(test), train, test)]
    own = tuple(s for s in frame.attrs.get("held_out", ()) if s in symbols)
    if own:
        train = tuple(s for s in symbols if s not in own)
        return [mdata.AssetFold(",".join(own), train, own)]
    if config.held_out_class is not None:
        return mdata.asset_group_folds(
            classes, stratify="asset_class", held_out_class=config.held_out_class
        )
    n_groups = min(config.folds, len(symbols))
    if n_groups < 2:
        test = symbols[-1:]
        return [mdata.AssetFold(test[0], symbols[:-1], test)]
    return mdata.asset_group_folds(classes, n_groups=n_groups, seed=config.seed)


def evaluation_cutoffs(windows, config: ExperimentConfig):
    """`(eval_start, label_cutoff)`: one date each, or symbol -> date Series, where every
    asset's evaluation period starts and its training labels must end before."""
    if config.test_start is not None:
        start = pd.Timestamp(config.test_start)
        last = pd.Timestamp(windows.times.max())
        if start > last:
            raise ValueError(
                f"test_start expected a date on or before the last forecast date "
                f"{last:%Y-%m-%d}; the data ends on {pd.Timestamp(windows.label_end.max()):%Y-%m-%d}. "
                f"Received: test_start={config.test_start!r}"
            )
        return start, start
    cutoffs = mdata.chronological_cutoffs(
        windows, test_fraction=config.test_fraction, embargo=config.embargo
    )
    return cutoffs["eval_start"], cutoffs["label_cutoff"]


def target_windows(frame: pd.DataFrame, spec) -> mdata.WindowSet:
    """The windows of one target (its features, lookback, horizon and data target)."""
    return mdata.make_windows(
        frame,
        lookback=spec.lookback,
        horizon=spec.horizon,
        features=None if spec.features is None else list(spec.features),
        target=spec.data_target,
        cumulative=spec.cumulative,
    )


def validation_frame(frame: pd.DataFrame, config: ExperimentConfig) -> pd.DataFrame:
    """The price rows a validation run may read: of each asset, those before the earliest
    training-label cutoff of any target (its evaluation period and the embargo before it
    removed)."""
    cut = None
    for token in config.targets:
        _, label_cutoff = evaluation_cutoffs(
            target_windows(frame, target_spec(token, config)), config
        )
        if not isinstance(label_cutoff, pd.Series):
            label_cutoff = pd.Series(label_cutoff, index=sorted(frame["symbol"].unique()))
        cut = label_cutoff if cut is None else np.minimum(cut, label_cutoff.reindex(cut.index))
    kept = frame[frame["date"] < frame["symbol"].map(cut)].reset_index(drop=True)
    kept.attrs = dict(frame.attrs)
    return kept


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
    config = (config or ExperimentConfig()).validated(zoo=False)  # the zoo: where parts train
    say = progress or (lambda line: None)
    frame = load_frame(config)
    folds = make_folds(frame, config)
    protocol = config
    if config.validation:
        frame = validation_frame(frame, config)
        protocol = dataclasses.replace(config, test_start=None, test_end=None)
        say(f"validation: {len(frame)} price rows before every evaluation period")
    run_dir = _run_dir(config) if write else None
    try:
        result = _run(protocol, frame, folds, run_dir, say)
        result.config = config
        if write:
            from metazoo.experiment import report  # (matplotlib and SciPy: after the start)

            report.write_run(result)
            say(f"run folder: {run_dir}")
    except BaseException:
        if run_dir is not None:  # a failed run leaves no run folder behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return result


def _run(config, frame, folds, run_dir, say) -> RunResult:
    """Every fold of every target, scored. A target is scored, and with a run folder
    plotted, as soon as its last part is done, while the parts of others still train."""
    began = time.perf_counter()
    parts = [(token, number) for token in config.targets for number in range(len(folds))]
    done, drawing = {}, []  # the plot processes of the target done last, still drawing

    def finished(token, tables, idle=False):
        from metazoo.experiment import report, scoring  # (imported once the workers train)

        rows = _ordered(pd.concat(tables, ignore_index=True))
        in_sample = (rows["eval_set"] == CALIBRATION).to_numpy()
        predictions = rows[~in_sample].reset_index(drop=True)
        board, strategies = scoring.score(predictions, config, rows[in_sample])
        plots = None
        if run_dir is not None:
            plots = report.write_plots(
                run_dir, token, board, predictions, strategies, drawing if idle else None
            )
        done[token] = (rows, board, strategies, plots)

    machine = _run_parts(config, frame, folds, run_dir, say, parts, finished)
    scored = [done[token] for token in config.targets]
    rows = _ordered(pd.concat([s[0] for s in scored], ignore_index=True))
    in_sample = (rows["eval_set"] == CALIBRATION).to_numpy()
    calibration = rows[in_sample].reset_index(drop=True)
    predictions = rows[~in_sample].reset_index(drop=True)
    leaderboard = pd.concat([s[1] for s in scored], ignore_index=True)
    trades = [s[2] for s in scored if len(s[2])]
    strategies = pd.concat(trades, ignore_index=True) if trades else pd.DataFrame()
    plots = {token: s[3] for token, s in zip(config.targets, scored, strict=True) if s[3]}
    seconds = time.perf_counter() - began
    return RunResult(
        config,
        predictions,
        leaderboard,
        strategies,
        run_dir,
        seconds,
        calibration,
        machine,
        plots,
        drawing,
    )


def _ordered(rows: pd.DataFrame) -> pd.DataFrame:
    """Prediction rows with their columns in order: the keys and forecasts, the truth,
    then what the windows carried for scoring."""
    carried = ["next_return", "trailing_vol"]
    truth = [c for c in rows if c.startswith("true_")]
    return rows[[c for c in rows if c not in carried and c not in truth] + truth + carried]


def _run_parts(config, frame, folds, run_dir, say, parts, finished) -> str:
    """Train every `(target token, fold number)` part; call `finished(token, tables)`
    with a target's prediction rows (its parts' tables, in `parts`' order) as soon as its
    last part is done, and `finished(token, tables, idle=True)` for the target done last,
    once no worker is left (the cores are then free for its plots). Returns the
    description of the machine they ran on.

    Each target's windows and evaluation cutoffs are made here, once (so that a bad
    setting fails before any training). With one job the parts then run here, one after
    the other; otherwise in `jobs` worker processes (spawned: each imports its own
    TensorFlow, and this process never does), the costliest target kinds handed out
    first, their progress lines passed on to `say` as they come. The model names are
    checked against the zoo (`check_zoo`) first, where TensorFlow is. Every part starts
    from `config.seed`, so its numbers are the same either way.
    """
    from metazoo.experiment.config import check_zoo
    from metazoo.experiment.environment import describe_machine

    jobs = resolve_jobs(config.jobs, len(parts))
    tokens = list(dict.fromkeys(token for token, _ in parts))
    if jobs == 1:
        import_tensorflow_quietly()
        check_zoo(config)
        for token in tokens:
            section = _section(config, frame, token)
            tables = [
                table
                for t, n in parts
                if t == token
                for table in _run_part(
                    config, frame, folds[n], n, len(folds), section, run_dir, say
                )
            ]
            finished(token, tables)
        return describe_machine()
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")
    lines = context.Queue()

    def relay():
        while True:
            try:
                say(lines.get_nowait())
            except queue.Empty:
                return

    results, last = [None] * len(parts), []
    pool = ProcessPoolExecutor(
        jobs, mp_context=context, initializer=workers.start, initargs=(lines,)
    )
    try:
        for _ in range(jobs):  # the workers start (import TensorFlow) while sections are made
            pool.submit(workers.ready)
        checked = pool.submit(workers.check_zoo, config)
        futures = {checked: None}
        for token in sorted(tokens, key=_part_cost):  # workers start on the first parts
            section = _section(config, frame, token)
            for i, (t, n) in enumerate(parts):
                if t == token:
                    args = (config, frame, folds[n], n, len(folds), section, run_dir)
                    futures[pool.submit(workers.run_part, *args)] = i
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            relay()
            for future in done:
                value = future.result()  # an error of the check or of a part, raised here
                if future is checked:
                    continue
                results[futures[future]] = value
                token = parts[futures[future]][0]
                mine = [i for i, (t, _) in enumerate(parts) if t == token]
                if all(results[i] is not None for i in mine):  # the target's last part
                    relay()
                    last.append((token, [table for i in mine for table in results[i]]))
                    if pending:
                        finished(*last.pop())
    except BaseException:
        processes = list((pool._processes or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:  # parts still training are of no use now
            process.terminate()
        raise
    pool.shutdown()
    relay()
    for token, tables in last:
        finished(token, tables, idle=True)
    return checked.result()


def _section(config, frame, token) -> tuple:
    """`(spec, windows, cutoffs)` of one target token."""
    spec = target_spec(token, config)
    windows = target_windows(frame, spec)
    return spec, windows, evaluation_cutoffs(windows, config)


def _part_cost(token: str) -> int:
    """0 for the sections whose learners train longest (returns and directions on the
    `models` networks), 1 for the variance sections (on small HAR networks)."""
    return 1 if parse_token(token)[0] == "variance" else 0


def _run_part(config, frame, fold, number, n_folds, section, run_dir, say) -> list:
    """The prediction rows of one target's one fold, from the run's seed."""
    import keras
    import tensorflow as tf

    spec, windows, cutoffs = section
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    label = f"[{spec.token} | fold {number + 1}/{n_folds}: {','.join(fold.test)} held out]"
    return _run_fold(config, frame, windows, spec, fold, cutoffs, run_dir, label, say)


def _run_dir(config: ExperimentConfig) -> Path:
    path = Path(config.output) / (config.run_name or time.strftime("%Y%m%d-%H%M%S"))
    if path.exists() and any(path.iterdir()):
        raise ValueError(f"The run folder {path} exists and is not empty; choose another.")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run_fold(config, frame, windows, spec, fold, cutoffs, run_dir, label, say) -> list:
    """Forecasts of every learner and baseline on both evaluation sets of one fold."""
    from metazoo.experiment import baselines
    from metazoo.experiment.learners import make_learners

    target = spec.token
    start, label_cutoff = cutoffs
    held = fold.name
    train = windows.select(symbols=fold.train, label_end_before=label_cutoff)
    if len(train) < 2:
        raise ValueError(f"No training windows of {list(fold.train)} end before their evaluation.")
    scaler = mdata.WindowScaler(scale_targets=spec.scale_targets).fit(train)
    tasks = mdata.TaskSet.from_windows(scaler.transform(windows), period=config.period)
    split = tasks.split(test_start=start, held_out=fold.test, label_end_before=label_cutoff)
    training = _training_data(split.train, scaler.transform(train))
    sets = [
        mdata.EvaluationEpisodes.from_tasks(name, part, config.support_size)
        for name, part in split.evaluation_sets().items()
    ]
    if spec.scores_risk:  # in-sample episodes for the calibrated VaR
        recent = recent_tasks(split.train, CALIBRATION_PERIODS)
        if len(recent):
            sets.append(
                mdata.EvaluationEpisodes.from_tasks(CALIBRATION, recent, config.support_size)
            )
    rows = []
    shape, out = windows.X.shape[1:], windows.y.shape[1]
    for learner in make_learners(section_config(config, spec), shape, out, spec):
        began = time.perf_counter()
        log_dir = _path(run_dir, "tensorboard", target, held, learner.name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Keras notes on retracing and such
            learner.fit(training, log_dir)
            for episodes in sets:
                outputs = scaler.inverse_targets(episodes.unpad(learner.predict(episodes)))
                forecast = spec.to_data_units(outputs)
                rows.append(_rows(episodes, forecast, target, held, learner.name))
        if run_dir is not None:
            learner.save(_path(run_dir, "models", target, held, learner.name + ".keras"))
            folder = _path(run_dir, "models", target, held, learner.name)
            save_run_forecaster(learner, scaler, windows, spec, config, folder)
        say(f"{label} {learner.name}: {time.perf_counter() - began:.1f}s")
    began = time.perf_counter()
    fit_frame = frame[frame["symbol"].isin(fold.train)]
    if isinstance(label_cutoff, pd.Series):
        fit_frame = fit_frame[fit_frame["date"] < fit_frame["symbol"].map(label_cutoff)]
    else:
        fit_frame = fit_frame[fit_frame["date"] < label_cutoff]
    for name, forecasts in baselines.forecasts(config, spec, fit_frame, frame, sets, scaler):
        for episodes, forecast in zip(sets, forecasts, strict=True):
            rows.append(_rows(episodes, forecast, target, held, name, kind="baseline"))
    say(f"{label} baselines: {time.perf_counter() - began:.1f}s")
    return rows


def recent_tasks(tasks: mdata.TaskSet, periods: int) -> mdata.TaskSet:
    """The last `periods` tasks (by calendar period) of every symbol of `tasks`."""
    by_symbol = {}
    for task in tasks:
        by_symbol.setdefault(task.symbol, []).append(task)
    return mdata.TaskSet(
        task
        for symbol in sorted(by_symbol)
        for task in sorted(by_symbol[symbol], key=lambda t: t.period)[-periods:]
    )


def _training_data(tasks, windows) -> TrainingData:
    from metazoo.experiment.learners import TrainingData

    dates = np.unique(windows.times)
    cut = pd.Timestamp(dates[int(len(dates) * (1 - VALID_FRACTION))])
    return TrainingData(
        tasks=tasks,
        windows=windows,
        fit_windows=windows.select(label_end_before=cut),
        valid_windows=windows.select(start=cut),
    )


def _rows(episodes: mdata.EvaluationEpisodes, forecast, target, held, model, kind="learner"):
    """Prediction rows: one per query sample, forecasts `pred_1..pred_n` in the data's
    units, then what the query windows carry: the exact targets `true_1..true_n`,
    `next_return` and `trailing_vol`."""
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
    truth = query.annotations["truth"]
    for column in range(truth.shape[1]):
        table[f"true_{column + 1}"] = truth[:, column]
    table["next_return"] = query.annotations["next_return"]
    table["trailing_vol"] = query.annotations["trailing_vol"]
    return table


def _path(run_dir, *parts) -> Path | None:
    if run_dir is None:
        return None
    return Path(run_dir).joinpath(*(str(p).replace(":", "_").replace("+", "_") for p in parts))
