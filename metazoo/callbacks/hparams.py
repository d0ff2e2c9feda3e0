"""TensorBoard HParams logging of model selection: each trial and fold a run with its
hyperparameters and score, and the experiment's hyperparameter domains and metrics."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp


def hparam_value(value):
    """A value the HParams plugin accepts: bool, int, float or str (tuples become strings)."""
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, bool | int | float | str) else str(value)


def trial_hparams(spec, params) -> dict:
    """The trial's hyperparameters for the HParams plugin, with its model under `model`."""
    model = spec if isinstance(spec, str) else getattr(spec, "__name__", repr(spec))
    return {"model": model, **{name: hparam_value(value) for name, value in params.items()}}


def write_trial(run_dir, hparams, score, step) -> None:
    """Write one trial's hyperparameters and CV score as a TensorBoard HParams run."""
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        hp.hparams(hparams)
        tf.summary.scalar("cv_score", score, step=step)
    writer.close()


def write_experiment(log_dir, trials, scoring_name) -> None:
    """Write the HParams experiment: every hyperparameter's values and the metrics."""
    values = {}
    for trial in trials:
        for name, value in trial_hparams(trial.spec, trial.params).items():
            values.setdefault(name, set()).add(value)
    hparams = []
    for name, domain in sorted(values.items()):
        kinds = {type(v) for v in domain}
        if kinds == {int, float}:
            domain, kinds = {float(v) for v in domain}, {float}
        hparams.append(hp.HParam(name, hp.Discrete(domain) if len(kinds) == 1 else None))
    metrics = [
        hp.Metric("cv_score", display_name=f"CV {scoring_name}"),
        hp.Metric("epoch_loss", group="train", display_name="train loss"),
    ]
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        hp.hparams_config(hparams=hparams, metrics=metrics)
    writer.close()
