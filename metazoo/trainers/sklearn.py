"""A scikit-learn regressor around a zoo model, for `cross_val_score`, pipelines and searches."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from metazoo.trainers.candidates import check_hyperparameters
from metazoo.trainers.trial import (
    TrialSettings,
    check_settings,
    check_xy,
    fit_model,
    predict_model,
)

__all__ = ["ZooRegressor"]


class ZooRegressor(RegressorMixin, BaseEstimator):
    """A zoo model as a scikit-learn regressor on windows `(n, lookback, n_features)`.

    Flat features `(n, n_features)`, the usual scikit-learn input, are read as windows of
    one day, `(n, 1, n_features)`, so the regressor also works on tables, in pipelines after
    transformers, and passes scikit-learn's estimator checks. Targets may be `(n,)` or
    `(n, n_targets)`: one model forecasts every column (multi-output). Input is checked as
    scikit-learn does: NaN, infinities, complex numbers, empty arrays and sparse matrices
    are refused (sparse ones with a `TypeError` that says to densify them; a Keras model
    takes dense arrays).

    `fit` builds the model with `seed`, compiles it with Adam and the loss and trains it with
    `keras.Model.fit` on standardized targets (the training targets' mean and standard
    deviation per column, as in `ModelSelection`); `predict` maps the outputs back to the
    original scale. So `cross_val_score(ZooRegressor("lstm"), X, y, cv=WalkForward())` works
    with the default R^2 scoring or any scikit-learn scorer.

    Args:
        model: A zoo name (see `metazoo.models.available()`) or a picklable
            `build_fn(input_shape, output_dim, seed, **hparams)` returning a `keras.Model`.
        hparams: Hyperparameters of the model (None for its defaults).
        epochs: Passes over the training data.
        batch_size: Samples per gradient step.
        learning_rate: Adam's learning rate.
        loss: A Keras loss.
        seed: Seed of the build and the fit.
        verbose: Keras `fit` verbosity.

    Attributes:
        model_: The fitted `keras.Model`; its outputs are standardized targets.
        target_scaling_: The `TargetScaling` that maps them back.
        input_shape_: `(lookback, n_features)` seen in `fit` (`(1, n_features)` for flat
            features).
        n_features_in_: `n_features`.
        feature_names_in_: column names of a DataFrame `X` given to `fit` (flat features).
        target_ndim_: 1 if `fit` got `y` of shape `(n,)`, else 2.
    """

    def __init__(
        self,
        model="mlp",
        hparams=None,
        epochs=10,
        batch_size=64,
        learning_rate=1e-3,
        loss="mse",
        seed=0,
        verbose=0,
    ):
        self.model = model
        self.hparams = hparams
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.loss = loss
        self.seed = seed
        self.verbose = verbose

    def fit(self, X, y) -> ZooRegressor:
        """Build and train the model.

        Args:
            X: `(n, lookback, n_features)` windows or `(n, n_features)` flat features.
            y: `(n,)` or `(n, n_targets)` targets.

        Returns:
            self.

        Raises:
            ValueError: If X is not 2-D or 3-D or has no samples, y does not match it, a
                value is not finite or is complex, the model or a hyperparameter is unknown,
                or a training setting is out of range.
            TypeError: If X is sparse.
        """
        X, y = self._check_input(X, y, reset=True)
        X, y, self.target_ndim_ = check_xy(X, y)
        hparams = dict(self.hparams or {})
        check_hyperparameters(self.model, hparams)
        settings = check_settings(
            TrialSettings(
                epochs=self.epochs,
                batch_size=self.batch_size,
                learning_rate=self.learning_rate,
                loss=self.loss,
                seed=self.seed,
            )
        )
        self.model_, self.target_scaling_ = fit_model(
            self.model, hparams, X, y, settings, verbose=self.verbose
        )
        self.input_shape_ = tuple(X.shape[1:])
        return self

    def predict(self, X) -> np.ndarray:
        """Forecasts on the original scale of `y`.

        Args:
            X: `(n, lookback, n_features)` windows shaped as in `fit`, or `(n, n_features)`
                after a fit on flat features.

        Returns:
            `(n,)` if `fit` got `y` of shape `(n,)`, else `(n, n_targets)`.

        Raises:
            ValueError: If X does not have the shape seen in `fit`, has no samples or holds
                NaN, infinities or complex numbers.
            TypeError: If X is sparse.
        """
        check_is_fitted(self, "model_")
        X, _ = self._check_input(X, reset=False)
        if X.shape[1:] != self.input_shape_:
            raise ValueError(
                f"X must have shape (n, *{self.input_shape_}) as in fit. "
                f"Received: X.shape={X.shape}"
            )
        pred = predict_model(self.model_, self.target_scaling_, X)
        return pred[:, 0] if self.target_ndim_ == 1 else pred

    def _check_input(self, X, y=None, *, reset: bool):
        """scikit-learn's checks of `X` (and `y`); flat features become one-day windows."""
        if _ndim(X) == 3:
            X = check_array(X, allow_nd=True, dtype=np.float32, input_name="X", estimator=self)
            if reset and y is None:
                raise ValueError(
                    "ZooRegressor requires y to be passed, but the target y is None. "
                    "Received: y=None"
                )
            if y is not None:
                y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
            if reset:
                self.n_features_in_ = int(X.shape[2])
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            return X, y
        if not reset:
            X = validate_data(self, X, reset=False, dtype=np.float32)
        else:
            X, y = validate_data(
                self, X, y, reset=reset, dtype=np.float32, multi_output=True, y_numeric=True
            )
        return X[:, None, :], y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.three_d_array = True
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.target_tags.multi_output = True
        return tags


def _ndim(X):
    """The number of dimensions of array-like `X`, or None if it has none (sparse, ragged)."""
    ndim = getattr(X, "ndim", None)
    if ndim is not None or hasattr(X, "toarray"):
        return ndim
    try:
        return np.ndim(X)
    except (TypeError, ValueError):  # ragged nested lists, objects that refuse numpy calls
        return None
