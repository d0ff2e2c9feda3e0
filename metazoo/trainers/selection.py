"""Model selection: score candidate models with time-ordered cross-validation.

`ModelSelection` expands candidates (zoo models or build functions, each with a parameter
grid) into trials, fits every trial on every fold through plain `keras.Model.fit` and ranks
the trials by their mean fold score, in the style of scikit-learn's `GridSearchCV`. Each
(trial, fold) pair is one call of the pure function `run_trial`, so the pairs can be fanned
out over any joblib backend: processes by default, or Ray or Dask where registered.
Targets are standardized per training fold (see `metazoo.trainers.trial`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace

import joblib
import keras
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from metazoo.callbacks.hparams import write_experiment
from metazoo.data.splits import WalkForward
from metazoo.data.windows import WindowSet
from metazoo.metrics.forecast import get_scorer
from metazoo.trainers.candidates import expand_candidates
from metazoo.trainers.trial import (
    MIN_TEST,
    MIN_TRAIN,
    TrialSettings,
    _run_indexed,
    check_settings,
    check_xy,
    fit_model,
    predict_model,
)

__all__ = ["ModelSelection"]


def _joblib_backend(backend):
    """`backend`, with Ray's joblib backend registered first when `"ray"` is asked for."""
    if backend == "ray" and "ray" not in joblib.parallel.BACKENDS:
        try:
            from ray.util.joblib import register_ray
        except ImportError as error:
            raise ImportError(
                "backend='ray' needs Ray: pip install 'metazoo[ray]'. Received: backend='ray'"
            ) from error
        register_ray()
    return backend


def _streams_results(backend) -> bool:
    """Whether the joblib backend hands results back as they finish (Ray's cannot)."""
    config = joblib.parallel_config(backend=backend) if backend else contextlib.nullcontext()
    with config:
        active, _ = joblib.parallel.get_active_backend()
    return active.supports_return_generator


class ModelSelection(BaseEstimator):
    """Choose among candidate models by time-ordered cross-validation.

    Every trial (a candidate with one setting of its hyperparameters) is built with the same
    seed, trained on each fold's training samples with Adam through `keras.Model.fit` and
    scored on the fold's test samples (see `run_trial`); trials are ranked by mean score.

    Args:
        candidates: `{zoo_name: param_grid}` and/or `{label: (zoo_name_or_build_fn,
            param_grid)}`, where a param grid is what `sklearn.model_selection.ParameterGrid`
            takes (`{}` for the defaults) and `build_fn(input_shape, output_dim, seed,
            **params)` returns an uncompiled `keras.Model`.
        cv: A scikit-learn splitter, an int (that many `WalkForward` folds) or None:
            `WalkForward(n_splits=3, horizon=windows.horizon)` for a `WindowSet`, else
            `WalkForward(n_splits=3)` (arrays carry no horizon: pass a splitter that purges
            multi-step labels).
        scoring: A name in `metazoo.metrics.SCORERS` or a callable `f(y_true, y_pred)`.
        greater_is_better: Direction for a callable scoring (default True).
        epochs, batch_size, learning_rate, loss: Training settings of every fit.
        refit: Refit the best trial on all the data, for `predict`.
        n_jobs: Parallel fits; 1 runs in this process, others go through `joblib.Parallel`.
        backend: joblib backend (default: the active one, processes unless configured by
            `joblib.parallel_config`). `"ray"` runs trials as tasks of the Ray instance
            (`ray.init()` first to choose one; needs `pip install 'metazoo[ray]'`); `"dask"`
            needs a `dask.distributed.Client`. Build functions and scoring must be picklable
            to run in other processes.
        log_dir: TensorBoard root: `trial_{i:03d}/fold_{k}` per fit, with the HParams
            plugin's experiment at the root.
        seed: Seed of every build and fit.
        verbose: 1 or more shows a `keras.utils.Progbar` over trials x folds.

    Attributes:
        cv_results_: `pandas.DataFrame`, one row per trial: `candidate`, `params`,
            `param_<name>`, `split<k>_score`, `mean_score`, `std_score`, `rank` (1 = best)
            and `mean_fit_time`.
        best_index_, best_candidate_, best_params_, best_score_: The best trial.
        folds_: `(train_idx, test_idx)` of each fold.
        best_model_: With `refit`, the best trial fitted on all the data. It is trained on
            standardized targets; `predict` maps its outputs back (`target_scaling_`).
        target_scaling_: With `refit`, the `TargetScaling` of all the targets.
        target_ndim_: 1 if `fit` got `y` of shape `(n,)`, else 2.

    References:
        Bergmeir, C. and Benitez, J. M. (2012). On the use of cross-validation for time
        series predictor evaluation. Information Sciences 191, 192-213.
        Lopez de Prado, M. (2018). Advances in Financial Machine Learning, ch. 7
        "Cross-Validation in Finance". Wiley.
    """

    def __init__(
        self,
        candidates,
        cv=None,
        scoring="mse",
        greater_is_better=None,
        epochs=10,
        batch_size=64,
        learning_rate=1e-3,
        loss="mse",
        refit=True,
        n_jobs=1,
        backend=None,
        log_dir=None,
        seed=0,
        verbose=1,
    ):
        self.candidates = candidates
        self.cv = cv
        self.scoring = scoring
        self.greater_is_better = greater_is_better
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.loss = loss
        self.refit = refit
        self.n_jobs = n_jobs
        self.backend = backend
        self.log_dir = log_dir
        self.seed = seed
        self.verbose = verbose

    def fit(self, X, y=None, groups=None) -> ModelSelection:
        """Score every trial on every fold, rank them and refit the best.

        Args:
            X: A `WindowSet`, or windows `(n, lookback, n_features)`.
            y: Targets `(n, n_targets)` or `(n,)`; taken from a `WindowSet` if None.
            groups: Sample times for the splitter; a `WindowSet`'s `times` if None.

        Returns:
            self.

        Raises:
            ValueError: For invalid settings, candidates, data or folds.
        """
        for stale in ("best_model_", "target_scaling_"):  # from an earlier fit with refit
            vars(self).pop(stale, None)
        if isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, int) or self.n_jobs == 0:
            raise ValueError(f"n_jobs must be a nonzero int. Received: n_jobs={self.n_jobs!r}")
        trials = expand_candidates(self.candidates)
        _, greater, scoring_name = get_scorer(self.scoring, self.greater_is_better)
        settings = check_settings(
            TrialSettings(
                self.epochs, self.batch_size, self.learning_rate, self.loss, self.seed, self.scoring
            )
        )
        X, y, groups, cv = self._resolve_data(X, y, groups)
        folds = [(np.asarray(a), np.asarray(b)) for a, b in cv.split(X, y, groups)]
        for k, (train, test) in enumerate(folds):
            if len(train) < MIN_TRAIN or len(test) < MIN_TEST:
                raise ValueError(
                    f"Every fold needs at least {MIN_TRAIN} training and {MIN_TEST} test "
                    f"samples. Received: fold {k} with n_train={len(train)}, n_test={len(test)}"
                )
        if self.log_dir is not None:
            write_experiment(os.fspath(self.log_dir), trials, scoring_name)
        results = self._run(trials, folds, X, y, settings)
        self.folds_ = folds
        self.cv_results_ = _results_frame(trials, results, len(folds), greater)
        self.best_index_ = int(self.cv_results_["rank"].to_numpy().argmin())
        best = self.cv_results_.iloc[self.best_index_]
        if np.isnan(best["mean_score"]):
            raise ValueError(
                "Every trial scored NaN (e.g. the IC of constant forecasts, or training that "
                "diverged), so none is best. "
                f"Received: mean scores {self.cv_results_['mean_score'].tolist()}"
            )
        self.best_candidate_, self.best_params_ = best["candidate"], dict(best["params"])
        self.best_score_ = float(best["mean_score"])
        if self.refit:
            trial = trials[self.best_index_]
            self.best_model_, self.target_scaling_ = fit_model(
                trial.spec, trial.params, X, y, settings
            )
        return self

    def _resolve_data(self, X, y, groups):
        horizon = 1
        if isinstance(X, WindowSet):
            groups = X.times if groups is None else groups
            horizon = X.horizon
            X, y = X.X, X.y if y is None else y
        X, y, self.target_ndim_ = check_xy(X, y)
        cv = self.cv
        if cv is None or isinstance(cv, int | np.integer):
            cv = WalkForward(n_splits=3 if cv is None else int(cv), horizon=horizon)
        if isinstance(cv, str) or not callable(getattr(cv, "split", None)):
            raise ValueError(
                "cv must be None, an int or a splitter with split(X, y, groups). "
                f"Received: cv={cv!r}"
            )
        return X, y, groups, cv

    def _run(self, trials, folds, X, y, settings) -> dict:
        """`{(trial, fold): run_trial result}` for every pair."""
        tasks = []
        for i, trial in enumerate(trials):
            trial_dir = (
                None if self.log_dir is None else os.path.join(self.log_dir, f"trial_{i:03d}")
            )
            trial_settings = replace(settings, log_dir=trial_dir)
            for k, (train, test) in enumerate(folds):
                args = (trial.spec, trial.params, k, train, test, X, y, trial_settings)
                tasks.append(((i, k), args))
        progbar = keras.utils.Progbar(len(tasks), unit_name="fit") if self.verbose else None
        if self.n_jobs == 1:
            outputs = (_run_indexed(key, *args) for key, args in tasks)
        else:
            backend = _joblib_backend(self.backend)
            stream = _streams_results(backend)
            parallel = joblib.Parallel(
                n_jobs=self.n_jobs,
                backend=backend,
                return_as="generator_unordered" if stream else "list",
            )
            outputs = parallel(joblib.delayed(_run_indexed)(key, *args) for key, args in tasks)
        results = {}
        for key, result in outputs:
            results[key] = result
            if progbar is not None:
                progbar.add(1)
        return results

    def predict(self, X) -> np.ndarray:
        """Forecasts of the refitted best model, on the original scale of `y`.

        Args:
            X: A `WindowSet` or windows `(n, lookback, n_features)` shaped as in `fit`.

        Returns:
            `(n, n_targets)`, or `(n,)` if `fit` got `y` of shape `(n,)`.

        Raises:
            NotFittedError: If not fitted, or fitted with `refit=False`.
        """
        if not hasattr(self, "best_model_"):
            hint = "refit=False keeps no model" if hasattr(self, "cv_results_") else "call fit"
            raise NotFittedError(
                f"predict needs the best model refitted on all the data ({hint}). "
                "Received: a ModelSelection without best_model_"
            )
        X = X.X if isinstance(X, WindowSet) else np.asarray(X, dtype=np.float32)
        expected = tuple(self.best_model_.input_shape[1:])
        if X.ndim != 3 or X.shape[1:] != expected:
            raise ValueError(f"X must have shape (n, *{expected}). Received: X.shape={X.shape}")
        pred = predict_model(self.best_model_, self.target_scaling_, X)
        return pred[:, 0] if self.target_ndim_ == 1 else pred


def _results_frame(trials, results, n_folds, greater) -> pd.DataFrame:
    """scikit-learn style `cv_results_`, one row per trial."""
    scores = np.array(
        [[results[i, k]["score"] for k in range(n_folds)] for i in range(len(trials))]
    )
    fit_times = np.array(
        [[results[i, k]["fit_time"] for k in range(n_folds)] for i in range(len(trials))]
    )
    names = sorted({name for trial in trials for name in trial.params})
    frame = pd.DataFrame(
        {
            "candidate": [trial.candidate for trial in trials],
            "params": [trial.params for trial in trials],
            **{f"param_{n}": [trial.params.get(n) for trial in trials] for n in names},
            **{f"split{k}_score": scores[:, k] for k in range(n_folds)},
            "mean_score": scores.mean(axis=1),
            "std_score": scores.std(axis=1),
        }
    )
    frame["rank"] = (
        frame["mean_score"]
        .rank(method="min", ascending=not greater, na_option="bottom")
        .astype(int)
    )
    frame["mean_fit_time"] = fit_times.mean(axis=1)
    return frame
