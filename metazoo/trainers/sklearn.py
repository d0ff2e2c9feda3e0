"""A scikit-learn regressor around a zoo model, for `cross_val_score`, pipelines and searches."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

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
        input_shape_: `(lookback, n_features)` seen in `fit`.
        n_features_in_: `n_features`.
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
            X: `(n, lookback, n_features)` windows.
            y: `(n,)` or `(n, n_targets)` targets.

        Returns:
            self.

        Raises:
            ValueError: If X is not 3-D, y does not match it, a value is not finite, the
                model or a hyperparameter is unknown, or a training setting is out of range.
        """
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
        self.n_features_in_ = int(X.shape[2])
        return self

    def predict(self, X) -> np.ndarray:
        """Forecasts on the original scale of `y`.

        Args:
            X: `(n, lookback, n_features)` windows, shaped as in `fit`.

        Returns:
            `(n,)` if `fit` got `y` of shape `(n,)`, else `(n, n_targets)`.

        Raises:
            ValueError: If X does not have the shape seen in `fit`.
        """
        check_is_fitted(self, "model_")
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 3 or X.shape[1:] != self.input_shape_:
            raise ValueError(
                f"X must have shape (n, *{self.input_shape_}) as in fit. "
                f"Received: X.shape={X.shape}"
            )
        pred = predict_model(self.model_, self.target_scaling_, X)
        return pred[:, 0] if self.target_ndim_ == 1 else pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags
