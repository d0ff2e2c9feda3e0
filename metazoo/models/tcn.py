"""Temporal convolutional network: dilated causal convolutions with residual connections."""

from __future__ import annotations

import keras
from keras import ops

from metazoo.models.layers import LastStep
from metazoo.models.mlp import _as_tuple
from metazoo.models.registry import register


@keras.saving.register_keras_serializable(package="metazoo")
class MatmulConv1D(keras.layers.Conv1D):
    """`keras.layers.Conv1D` computed as one matrix product per kernel tap.

    The same outputs, weights and arguments as `Conv1D`, but for stride 1 and
    `channels_last` the convolution is `sum_k x[t + k * dilation] @ kernel[k]` over the
    (causally) padded window rather than a `Conv2D` op. Meta-learners map a base over the
    tasks of a meta-batch with `tf.vectorized_map`, which turns these products into
    batched ones with a kernel per task; it cannot do that for `Conv2D`, whose filter must
    be the same for every task, and would run the tasks one by one.

    Input: `(batch, time, channels)`. Output: `(batch, time_out, filters)`.
    """

    def call(self, inputs):
        if self.strides != (1,) or self.data_format != "channels_last":
            return super().call(inputs)
        padding = self.padding
        if padding == "causal":
            inputs = ops.pad(inputs, self._compute_causal_padding())
        elif padding == "same":
            total = self.dilation_rate[0] * (self.kernel_size[0] - 1)
            inputs = ops.pad(inputs, [[0, 0], [total // 2, total - total // 2], [0, 0]])
        span = self.dilation_rate[0] * (self.kernel_size[0] - 1)
        steps = ops.shape(inputs)[1] - span
        outputs = 0
        for k in range(self.kernel_size[0]):
            start = k * self.dilation_rate[0]
            outputs = outputs + ops.matmul(inputs[:, start : start + steps], self.kernel[k])
        if self.use_bias:
            outputs = outputs + self.bias
        return outputs if self.activation is None else self.activation(outputs)


@register("tcn")
def tcn(inputs, filters=32, kernel_size=3, dilations=(1, 2, 4), dropout=0.0):
    """Temporal convolutional network (Bai, Kolter and Koltun 2018).

    Residual blocks of two causal convolutions with growing dilation; the output at the
    window's last step (which sees `1 + 2 * (kernel_size - 1) * sum(dilations)` steps).
    The convolutions are `MatmulConv1D` layers, so meta-learners vectorize them over tasks.

    Hyperparameters:
        filters: channels of every convolution.
        kernel_size: width of each convolution.
        dilations: dilation of each residual block.
        dropout: dropout rate after each convolution.
    """
    x = MatmulConv1D(filters, 1, name="project")(inputs)
    for i, rate in enumerate(_as_tuple(dilations, "dilations")):
        h = x
        for j in range(2):
            h = MatmulConv1D(
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
