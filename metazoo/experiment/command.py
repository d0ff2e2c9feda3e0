"""`metazoo run`: options, their precedence (defaults < --config file < flags), and output."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from metazoo.experiment.config import (
    BASELINE_KINDS,
    DEFAULTS,
    LEARNER_KINDS,
    QUICK,
    ExperimentConfig,
    load_config,
)
from metazoo.experiment.environment import MAX_AUTO_JOBS

# option: (type, help); every field of ExperimentConfig but the switches `quick`,
# `with_bundled` and `validation` has a flag.
OPTIONS = {
    "data": (str, "CSV file of prices, long or wide (default: the bundled markets)"),
    "missing": (str, "missing values in --data: raise, drop or ffill"),
    "layout": (str, "layout of --data: auto, long, single (one asset) or wide"),
    "symbols": (str, "comma-separated symbols to use (default: all)"),
    "targets": (
        str,
        "comma-separated targets: return, direction, variance, variance:h (mean daily "
        "variance over h days)",
    ),
    "lookback": (int, "days of features per input window"),
    "horizon": (int, "trading days ahead to forecast"),
    "period": (str, "calendar period of a task: Q, M or Y"),
    "history_years": (float, "years of each asset's history used, back from its last date"),
    "test_fraction": (float, "share of each asset's own history that is evaluated (its last)"),
    "embargo": (int, "trading days between an asset's last training label and its evaluation"),
    "test_start": (
        str,
        "one calendar date starting every asset's evaluation (instead of --test-fraction)",
    ),
    "test_end": (str, "last date of the evaluation period (default: end of data)"),
    "folds": (int, "held-out asset groups, stratified by asset class; each held out once"),
    "held_out": (str, "comma-separated assets held out together as the run's one fold"),
    "held_out_class": (str, "an asset class held out as the run's one fold, e.g. currency"),
    "support_size": (int, "samples each evaluation task adapts on (K)"),
    "query_size": (int, "query samples per meta-training episode"),
    "models": (str, "comma-separated zoo base networks (see metazoo.models.available())"),
    "learners": (str, "comma-separated learners, or all: " + ", ".join(LEARNER_KINDS)),
    "baselines": (str, "comma-separated baselines: " + ", ".join(BASELINE_KINDS)),
    "meta_batch_size": (int, "tasks per meta-batch"),
    "meta_steps": (int, "meta-training steps of each meta-learner"),
    "inner_lr": (float, "inner-loop (and fine-tuning) learning rate"),
    "inner_steps": (int, "inner gradient steps in meta-training"),
    "adapt_steps": (int, "gradient steps when adapting to an evaluation task"),
    "inner_clip_norm": (float, "global-norm clip of inner and fine-tuning gradient steps"),
    "pooled_epochs": (int, "epochs of the pooled networks and the averaging members"),
    "scratch_steps": (int, "Adam steps of a network trained from scratch on one task"),
    "learning_rate": (float, "Adam learning rate of outer and pooled training"),
    "cost_bps": (float, "transaction cost per unit of turnover, in basis points"),
    "var_alpha": (float, "Value-at-Risk tail probability"),
    "variance_models": (str, "comma-separated base networks of the variance section"),
    "variance_features": (str, "comma-separated features of the variance section"),
    "variance_inner_lr": (float, "inner-loop learning rate of the variance section"),
    "variance_inner_steps": (int, "inner steps in meta-training, variance section"),
    "variance_adapt_steps": (int, "adaptation steps of the variance section"),
    "variance_meta_steps": (int, "meta-training steps of the variance section"),
    "variance_pooled_epochs": (int, "pooled-network epochs of the variance section"),
    "variance_learning_rate": (float, "outer and pooled Adam learning rate, variance section"),
    "seed": (int, "random seed; the same seed gives the same numbers"),
    "jobs": (
        int,
        "processes that train the (target, fold) parts in parallel; 0: one per CPU core, "
        f"at most {MAX_AUTO_JOBS}. The numbers do not depend on it",
    ),
    "output": (str, "folder that receives the run folder"),
    "run_name": (str, "name of the run folder (default: date and time)"),
}


def add_run_parser(commands) -> argparse.ArgumentParser:
    """Add the `run` subcommand to an argparse subparsers object."""
    run = commands.add_parser(
        "run",
        help="run the experiment: meta-learning vs baselines on market data",
        description=(
            "Meta-train on tasks (asset x period) before each asset's evaluation period "
            "(its last --test-fraction); evaluate on the evaluation periods of the training "
            "assets and of held-out asset groups (--folds), adapting from the "
            "first K observations of every evaluation task. Prints a leaderboard and writes "
            "a run folder: results.csv, predictions, TensorBoard logs, saved models and "
            "report.md with plots. Settings: defaults < --config file < flags."
        ),
    )
    run.add_argument("--config", help="YAML or TOML file of settings (the names below, with _)")
    run.add_argument(
        "--quick",
        action="store_true",
        help="reduced run for first contact and tests (under a minute): "
        + "; ".join(f"{k}={v}" for k, v in QUICK.items()),
    )
    add_options(run, OPTIONS)
    run.add_argument(
        "--with-bundled",
        action="store_true",
        default=None,
        help="add the bundled markets to --data and hold out the assets of --data",
    )
    run.add_argument(
        "--validation",
        action="store_true",
        default=None,
        help="score on validation periods only: each asset's evaluation period and the "
        "embargo before it are removed first (for choosing hyperparameters)",
    )
    return run


def add_options(parser, names, defaults=None) -> None:
    """Add the flags of `OPTIONS` named in `names` to `parser`, with the help text of the
    table. Without `defaults` a flag defaults to None (the config decides, as for `run`);
    with it, to `defaults[name]` (or the config's default), parsed as the flag would be."""
    for name in names:
        kind, text = OPTIONS[name]
        default = getattr(DEFAULTS, name)
        shown = ",".join(default) if isinstance(default, list) else default
        value = None
        if defaults is not None:
            value = defaults.get(name, shown)
            shown = value
        parser.add_argument(
            "--" + name.replace("_", "-"), type=kind, default=value, help=f"{text} [{shown}]"
        )
    if "held_out" in names:  # the former name of --held-out
        parser.add_argument(
            "--test-symbols", dest="held_out", type=str, default=None, help=argparse.SUPPRESS
        )


def config_from_args(args) -> ExperimentConfig:
    config = load_config(args.config) if args.config else ExperimentConfig()
    names = (*OPTIONS, "with_bundled", "validation")
    flags = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    config = dataclasses.replace(config, **flags)
    if args.quick:
        config.quick = True
    return config.validated(zoo=False)  # the model names: checked where the parts train


def run_command(args) -> None:
    """Run the experiment, printing progress, then the leaderboard."""
    from metazoo.experiment.run import run_experiment

    config = config_from_args(args)
    began = time.perf_counter()

    def progress(line):
        print(f"{time.perf_counter() - began:7.1f}s  {line}", flush=True)

    what = "quick run" if config.quick else "run"
    progress(
        f"metazoo {what}: targets {config.targets}, models {config.models}, "
        f"variance models {config.variance_models}, learners {config.learners}, "
        f"seed {config.seed}" + (", validation periods only" if config.validation else "")
    )
    result = run_experiment(config, progress=progress)
    from metazoo.experiment.report import leaderboard_table  # after the workers have started

    for target in config.targets:
        table = leaderboard_table(result.leaderboard, target)
        print(f"\nLeaderboard: {target} (query samples of the evaluation tasks)")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nresults: {result.run_dir / 'results.csv'}; report: {result.run_dir / 'report.md'}")
    print(f"tensorboard --logdir {result.run_dir / 'tensorboard'}")
    sys.stdout.flush()
