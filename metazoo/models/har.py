"""HAR as a zoo model, and HARNet: a nonlinear network that starts as HAR.

Both read the HAR components as named input features of the window's last day, by default
`HAR_FEATURES = ("log_rv:1", "log_rv:5", "log_rv:22")` (the log of the mean squared return
over 1, 5 and 22 days, see `metazoo.data.features`; `log_garman_klass:w` etc. work the same
way). Build the windows with those features first, or pass `feature_indices` to pick them
from a wider feature set:

    windows = make_windows(prices, lookback=1, horizon=1, features=HAR_FEATURES,
                           target="log_rv:squared_return")
    model = models.build("har", (1, 3))  # log v_{t+1} = b + w_d c_d + w_w c_w + w_m c_m

The forecast is a log variance: train it with MSE on `log_rv:` targets (OLS on the log HAR
regression, then map back with a bias factor, see `metazoo.data.variance`) or with
`QLIKE(log_pred=True)` on `rv:` targets (then `exp(output)` is the variance forecast).

References:
    Corsi, F. (2009). A simple approximate long-memory model of realized volatility.
    Journal of Financial Econometrics, 7(2), 174-196.
    Christensen, K., Siggaard, M., & Veliyev, B. (2023). A machine learning approach to
    volatility forecasting. Journal of Financial Econometrics, 21(5), 1680-1727.
"""

from __future__ import annotations

from numbers import Integral

import keras
import numpy as np
from keras import ops

from metazoo.models.mlp import _as_tuple
from metazoo.models.registry import HEAD_PREFIX, register

HAR_FEATURES = ("log_rv:1", "log_rv:5", "log_rv:22")


@keras.saving.register_keras_serializable(package="metazoo")
class SelectFeatures(keras.layers.Layer):
    """The last time step of a window, restricted to some features.

    Input `(batch, time, n_features)`, output `(batch, len(indices))` (all features when
    `indices` is None).

    Args:
        indices: positions of the features on the last axis, or None for all.
    """

    def __init__(self, indices=None, **kwargs):
        super().__init__(**kwargs)
        self.indices = None if indices is None else [int(i) for i in indices]

    def call(self, inputs):
        last = inputs[:, -1]
        return last if self.indices is None else ops.take(last, self.indices, axis=-1)

    def compute_output_shape(self, input_shape):
        width = input_shape[-1] if self.indices is None else len(self.indices)
        return (input_shape[0], width)

    def get_config(self):
        return {**super().get_config(), "indices": self.indices}


def _components(inputs, feature_indices):
    n_features = int(inputs.shape[-1])
    if feature_indices is not None:
        values = list(feature_indices) if np.ndim(feature_indices) else [feature_indices]
        ok = values and all(
            isinstance(i, Integral) and not isinstance(i, bool) and 0 <= i < n_features
            for i in values
        )
        if not ok or len(set(values)) != len(values):
            raise ValueError(
                f"`feature_indices` expected distinct feature positions in [0, {n_features}). "
                f"Received: feature_indices={feature_indices!r}"
            )
        feature_indices = [int(i) for i in values]
    return SelectFeatures(feature_indices, name="har_components")(inputs)


@register("har")
def har(inputs, feature_indices=None):
    """HAR: the head (a linear layer) on the HAR components of the window's last day.

    With the `HAR_FEATURES` as inputs this is the log HAR regression of Corsi (2009); it
    has `n_components + 1` weights per target, all in the head (ANIL adapts all of them).

    Hyperparameters:
        feature_indices: positions of the HAR components among the features (default:
            every feature of the last day).
    """
    return _components(inputs, feature_indices)


@register("harnet")
def harnet(inputs, feature_indices=None, units=(16,), activation="relu"):
    """HARNet-style residual network that equals HAR at initialization.

    The head reads the HAR components plus a correction `g(window)`, an MLP on the
    flattened window whose output layer (`residual`) starts at zero kernel and bias, so the
    initial model is exactly `har` with the same head weights (start it from a fitted HAR
    with `set_har_coefficients`). Training then bends HAR where the data ask for it.

    Hyperparameters:
        feature_indices: positions of the HAR components among the features (default all).
        units: widths of the hidden layers of `g`.
        activation: activation of the hidden layers.
    """
    components = _components(inputs, feature_indices)
    x = keras.layers.Flatten(name="flatten")(inputs)
    for i, width in enumerate(_as_tuple(units, "units")):
        x = keras.layers.Dense(width, activation=activation, name=f"dense_{i}")(x)
    correction = keras.layers.Dense(
        int(components.shape[-1]),
        kernel_initializer="zeros",
        bias_initializer="zeros",
        name="residual",
    )(x)
    return keras.layers.Add(name="har_corrected")([components, correction])


def set_har_coefficients(model: keras.Model, intercept, coef) -> keras.Model:
    """Set the head of a `har` or `harnet` model to given HAR coefficients (e.g. OLS).

    Args:
        model: a model from `build("har" | "harnet", ...)` with a linear head.
        intercept: `(output_dim,)` intercepts.
        coef: `(output_dim, n_components)` slopes (the layout of `HARRV.coef_`).

    Returns:
        `model`, changed in place.
    """
    head = model.get_layer(HEAD_PREFIX)
    kernel, bias = (np.asarray(w) for w in head.get_weights())
    coef = np.asarray(coef, dtype=kernel.dtype)
    intercept = np.asarray(intercept, dtype=bias.dtype).reshape(-1)
    if coef.shape != kernel.T.shape or intercept.shape != bias.shape:
        raise ValueError(
            f"`coef` expected shape {kernel.T.shape} and `intercept` {bias.shape}. "
            f"Received: coef.shape={coef.shape}, intercept.shape={intercept.shape}"
        )
    head.set_weights([coef.T, intercept])
    return model
