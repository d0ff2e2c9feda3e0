"""One trial of model selection: a candidate with fixed hyperparameters, fitted on one
fold's training samples and scored on its test samples.

A trial is a pure function of picklable arguments (`run_trial`), so trials can run in
this process, in worker processes, or on a distributed joblib backend (Ray, Dask).

Targets are standardized for training with the training fold's mean and standard deviation
per column, and predictions are mapped back before scoring. Daily returns (~1e-2) and
variances (~1e-4) are otherwise far below the scale at which default initializations and
learning rates work; scores stay on the original scale.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass

import keras
import numpy as np

from metazoo import models
from metazoo.callbacks.hparams import trial_hparams, write_trial
from metazoo.metrics.forecast import get_scorer
from metazoo.seeding import process_seeded, weights_seeded
from metazoo.validation import check_count, check_positive, check_seed

__all__ = [
    "TargetScaling",
    "TrialSettings",
    "compile_model",
    "fit_model",
    "predict_model",
    "run_trial",
]

MIN_TRAIN, MIN_TEST = 2, 1
PREDICT_CHUNK = 1024


@dataclass(frozen=True)
class TrialSettings:
    """What every trial shares: training settings, scoring and where to log.

    Attributes:
        epochs: Passes over each training fold.
        batch_size: Samples per gradient step.
        learning_rate: Adam's learning rate.
        loss: A Keras loss (name or picklable object).
        seed: Seed of every build and fit, so each trial and fold starts from the same
            weights and shuffles alike in any process.
        scoring: A name in `metazoo.metrics.SCORERS` or a picklable `f(y_true, y_pred)`.
        log_dir: The trial's TensorBoard directory (fold `k` logs to `log_dir/fold_k`), or
            None for no logging.
    """

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    loss: object = "mse"
    seed: int = 0
    scoring: object = "mse"
    log_dir: str | None = None


@dataclass(frozen=True)
class TargetScaling:
    """Per-column standardization of targets `(n, n_targets)`, fitted on training targets.

    A constant column is only centered (its scale is 1).
    """

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, y) -> TargetScaling:
        y = np.asarray(y, dtype=np.float64)
        scale = np.where(np.ptp(y, axis=0) > 0, y.std(axis=0), 1.0)
        return cls(mean=y.mean(axis=0), scale=scale)

    def transform(self, y) -> np.ndarray:
        return ((np.asarray(y, dtype=np.float64) - self.mean) / self.scale).astype(np.float32)

    def inverse(self, y) -> np.ndarray:
        return np.asarray(y, dtype=np.float64) * self.scale + self.mean


def build_model(spec, params: dict, input_shape, output_dim: int, seed: int) -> keras.Model:
    """An uncompiled model from a zoo name or `build_fn(input_shape, output_dim, seed, **params)`."""
    if isinstance(spec, str):
        return models.build(spec, input_shape, output_dim, seed=seed, **params)
    with weights_seeded(seed):
        return spec(tuple(input_shape), int(output_dim), int(seed), **params)


def compile_model(model, settings: TrialSettings) -> None:
    """Compile `model` with Adam and the loss of `settings`, and make Adam's slots now.

    Made lazily inside the first traced training step, the slots' initializers become
    functions of TensorFlow's process-wide function library that outlive the model: about
    4 MiB per fit, never freed, over the hundreds of fits of a search in one process.
    """
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate), loss=settings.loss)
    model.optimizer.build(model.trainable_variables)


def fit_model(spec, params, X, y, settings: TrialSettings, callbacks=(), verbose=0):
    """Build, compile with Adam and fit on standardized targets.

    The fit is seeded with `settings.seed` (its shuffling and dropout), so a trial gives the
    same model in any process; the caller's generators are restored afterwards
    (`metazoo.seeding.process_seeded`).

    Args:
        spec: A zoo name or a build function.
        params: Hyperparameters of `spec`.
        X: `(n, lookback, n_features)` inputs.
        y: `(n, n_targets)` targets on their original scale.
        settings: Training settings.
        callbacks: Keras callbacks for `fit`.
        verbose: Keras `fit` verbosity.

    Returns:
        `(model, scaling)`: the fitted model, whose outputs are standardized targets, and the
        `TargetScaling` that maps them back (see `predict_model`).
    """
    scaling = TargetScaling.fit(y)
    with process_seeded(settings.seed):
        model = build_model(spec, params, X.shape[1:], y.shape[1], settings.seed)
        compile_model(model, settings)
        model.fit(
            X,
            scaling.transform(y),
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            verbose=verbose,
            callbacks=list(callbacks),
        )
    return model, scaling


def predict_model(model, scaling: TargetScaling, X, chunk_size: int = PREDICT_CHUNK) -> np.ndarray:
    """Forecasts `(n, n_targets)` of a model from `fit_model`, on the original scale.

    Calls the model on chunks of `chunk_size` samples: for the few thousand samples of a
    test fold this skips tracing a predict function for every fitted model, which costs
    more than the forecasts themselves.
    """
    chunks = [
        keras.ops.convert_to_numpy(model(X[start : start + chunk_size], training=False))
        for start in range(0, len(X), chunk_size)
    ]
    empty = np.zeros((0, len(scaling.mean)))
    return scaling.inverse(np.concatenate(chunks) if chunks else empty)


def run_trial(spec, params, fold, train_idx, test_idx, X, y, settings: TrialSettings) -> dict:
    """Fit one trial on one fold's training samples and score it on the fold's test samples.

    A pure function of picklable arguments, so that any joblib backend can run it.

    Args:
        spec: A zoo name or a picklable `build_fn(input_shape, output_dim, seed, **params)`.
        params: Hyperparameters of `spec`.
        fold: The fold's number (names its TensorBoard run `fold_{fold}`).
        train_idx: Indices of the training samples.
        test_idx: Indices of the test samples.
        X: `(n, lookback, n_features)` inputs.
        y: `(n, n_targets)` targets.
        settings: The shared `TrialSettings`.

    Returns:
        A dict with `score` (on the original scale of `y`), `fit_time` (seconds), `n_train`
        and `n_test`.
    """
    scorer, _, _ = get_scorer(settings.scoring)
    run_dir = None if settings.log_dir is None else os.path.join(settings.log_dir, f"fold_{fold}")
    callbacks = [] if run_dir is None else [keras.callbacks.TensorBoard(log_dir=run_dir)]
    start = time.perf_counter()
    model, scaling = fit_model(spec, params, X[train_idx], y[train_idx], settings, callbacks)
    fit_time = time.perf_counter() - start
    pred = predict_model(model, scaling, X[test_idx])
    if np.isfinite(pred).all():
        score = float(scorer(y[test_idx], pred))
    else:  # training diverged: the trial ranks last instead of stopping the search
        warnings.warn(
            f"Trial {trial_hparams(spec, params)} diverged on fold {fold}: its forecasts are "
            "not finite, so it scores NaN. Lower the learning rate or rescale the data.",
            RuntimeWarning,
            stacklevel=2,
        )
        score = float("nan")
    if run_dir is not None:
        write_trial(run_dir, trial_hparams(spec, params), score, settings.epochs)
    return {
        "score": score,
        "fit_time": fit_time,
        "n_train": len(train_idx),
        "n_test": len(test_idx),
    }


def _run_indexed(key, *args):
    """`run_trial` tagged with its `(trial, fold)` key, for results arriving out of order."""
    return key, run_trial(*args)


def check_xy(X, y) -> tuple[np.ndarray, np.ndarray, int]:
    """Inputs `(n, lookback, n_features)` as float32 and targets as `(n, n_targets)`.

    Returns:
        `(X, y, y_ndim)`, where `y_ndim` is 1 if `y` was given as `(n,)`.

    Raises:
        ValueError: If the shapes or lengths do not fit, or a value is not finite.
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 3:
        raise ValueError(
            f"X must be windows of shape (n, lookback, n_features). Received: X.shape={X.shape}"
        )
    if y is None:
        raise ValueError("y is required unless X is a WindowSet. Received: y=None")
    y = np.asarray(y, dtype=np.float64)
    y_ndim = y.ndim
    if y_ndim not in (1, 2) or len(y) != len(X):
        raise ValueError(
            "y must have shape (n,) or (n, n_targets) with n = len(X). "
            f"Received: X.shape={X.shape}, y.shape={y.shape}"
        )
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ValueError("X and y must hold only finite values. Received: NaN or infinity")
    return X, y.reshape(len(y), -1), y_ndim


def check_settings(settings: TrialSettings) -> TrialSettings:
    """`settings` after checking the epochs, batch size, learning rate and seed.

    Raises:
        ValueError: If one of them is out of range.
    """
    check_count("epochs", settings.epochs, allow_float=False)
    check_count("batch_size", settings.batch_size, allow_float=False)
    check_seed("seed", settings.seed)
    check_positive("learning_rate", settings.learning_rate)
    return settings
