"""Output heads of the zoo: the plain linear head and a variance head positive by construction."""

from __future__ import annotations

import math

import keras
from keras import ops

HEADS = ("linear", "variance")
"""`linear`: a `Dense` layer; `variance`: a `Dense` layer, then `PositiveVariance`."""


@keras.saving.register_keras_serializable(package="metazoo")
class PositiveVariance(keras.layers.Layer):
    """Maps any real pre-activation to a variance in `[exp(low), exp(high)]`.

    `"exp"`: `exp(clip(z, low, high))`, so `z` is the log variance (the natural scale for
    QLIKE and the likelihood losses); `"softplus"`: `clip(softplus(z), exp(low), exp(high))`,
    linear for large `z`. Both are > 0 and finite for every finite or infinite `z`, so no
    forecast ever needs flooring. Outside the bounds the gradient is 0: keep targets well
    inside them (daily variances are ~1e-4, `exp(-9.2)`). A NaN pre-activation (an overflow
    inside the network, `inf - inf` on extreme inputs or weights) gives the upper bound
    `exp(high)`, the most cautious variance, rather than a NaN risk figure.

    Input and output: `(batch, units)`. No weights.

    Args:
        activation: `"exp"` or `"softplus"`.
        log_var_bounds: `(low, high)` bounds of the log variance.
    """

    def __init__(self, activation="exp", log_var_bounds=(-30.0, 10.0), **kwargs):
        super().__init__(**kwargs)
        if activation not in ("exp", "softplus"):
            raise ValueError(
                f"`activation` expected 'exp' or 'softplus'. Received: activation={activation!r}"
            )
        low, high = (float(b) for b in log_var_bounds)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(
                "`log_var_bounds` expected finite (low, high) with low < high. "
                f"Received: log_var_bounds={log_var_bounds!r}"
            )
        self.activation = activation
        self.log_var_bounds = (low, high)

    def call(self, inputs):
        low, high = self.log_var_bounds
        overflowed = ops.isnan(inputs)
        inputs = ops.where(overflowed, 0.0, inputs)
        if self.activation == "exp":
            variance = ops.exp(ops.clip(inputs, low, high))
        else:
            variance = ops.clip(ops.softplus(inputs), math.exp(low), math.exp(high))
        return ops.where(overflowed, math.exp(high), variance)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "activation": self.activation,
            "log_var_bounds": list(self.log_var_bounds),
        }


def add_head(body, units: int, head: str, name: str):
    """The head on `body`: a `Dense(units)` layer named `name`, then for `head="variance"`
    a `PositiveVariance` layer named `name + "_variance"` (in `head_layers`, no weights)."""
    if head not in HEADS:
        raise ValueError(f"`head` expected one of {HEADS}. Received: head={head!r}")
    outputs = keras.layers.Dense(units, name=name)(body)
    if head == "variance":
        outputs = PositiveVariance(name=f"{name}_variance")(outputs)
    return outputs
