"""Dense families on the flattened window: multilayer perceptron and linear model."""

from __future__ import annotations

from collections.abc import Iterable

import keras

from metazoo.models.registry import _is_count, register


@register("mlp")
def mlp(inputs, units=(64, 32), activation="relu", dropout=0.0):
    """Dense layers on the flattened window `(lookback * n_features,)`.

    Hyperparameters:
        units: width of each hidden layer, e.g. `(64, 32)`.
        activation: activation of the hidden layers.
        dropout: dropout rate after each hidden layer.
    """
    x = keras.layers.Flatten(name="flatten")(inputs)
    for i, width in enumerate(_as_tuple(units, "units")):
        x = keras.layers.Dense(width, activation=activation, name=f"dense_{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    return x


def _as_tuple(values, name):
    iterable = isinstance(values, Iterable) and not isinstance(values, (str, bytes, dict))
    values = tuple(values) if iterable else (values,)
    if not values or not all(_is_count(v) for v in values):
        raise ValueError(f"{name} must be positive integers. Received: {name}={values}")
    return tuple(int(v) for v in values)


@register("linear")
def linear(inputs):
    """Linear regression on the flattened window: the head applied to every lag and feature.

    No hyperparameters. A baseline family and the usual first candidate in model selection.
    """
    return keras.layers.Flatten(name="flatten")(inputs)
