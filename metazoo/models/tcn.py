"""Temporal convolutional network: dilated causal convolutions with residual connections."""

from __future__ import annotations

import keras

from metazoo.models.layers import LastStep
from metazoo.models.mlp import _as_tuple
from metazoo.models.registry import register


@register("tcn")
def tcn(inputs, filters=32, kernel_size=3, dilations=(1, 2, 4), dropout=0.0):
    """Temporal convolutional network (Bai, Kolter and Koltun 2018).

    Residual blocks of two causal `Conv1D` layers with growing dilation; the output at the
    window's last step (which sees `1 + 2 * (kernel_size - 1) * sum(dilations)` steps).

    Hyperparameters:
        filters: channels of every convolution.
        kernel_size: width of each convolution.
        dilations: dilation of each residual block.
        dropout: dropout rate after each convolution.
    """
    x = keras.layers.Conv1D(filters, 1, name="project")(inputs)
    for i, rate in enumerate(_as_tuple(dilations, "dilations")):
        h = x
        for j in range(2):
            h = keras.layers.Conv1D(
                filters,
                kernel_size,
                padding="causal",
                dilation_rate=int(rate),
                activation="relu",
                name=f"conv_{i}_{j}",
            )(h)
            if dropout:
                h = keras.layers.Dropout(dropout, name=f"dropout_{i}_{j}")(h)
        x = keras.layers.Add(name=f"residual_{i}")([x, h])
    return LastStep(name="last_step")(x)
