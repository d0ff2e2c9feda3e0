"""Custom layers of the zoo, registered so models round-trip through `.keras` files."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from metazoo.validation import check_choice, check_count


@keras.saving.register_keras_serializable(package="metazoo")
class TemporalAttention(keras.layers.Layer):
    """Attention pooling over time, as in the attention LSTM (ALSTM) of Qlib.

    Scores each time step with a small tanh network, softmax-normalizes the scores over
    time and returns the weighted sum of the inputs.

    Input: `(batch, time, units)`. Output: `(batch, units)`.

    Args:
        hidden_units: width of the scoring network.

    References:
        Feng et al., "Enhancing Stock Movement Prediction with Adversarial Training",
        IJCAI 2019; Qin et al., "A Dual-Stage Attention-Based Recurrent Neural Network for
        Time Series Prediction", IJCAI 2017.
    """

    def __init__(self, hidden_units: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = hidden_units
        self.score_hidden = keras.layers.Dense(hidden_units, activation="tanh")
        self.score = keras.layers.Dense(1, use_bias=False)

    def build(self, input_shape):
        self.score_hidden.build(input_shape)
        self.score.build((*input_shape[:-1], self.hidden_units))

    def call(self, inputs):
        weights = ops.softmax(self.score(self.score_hidden(inputs)), axis=1)
        return ops.sum(weights * inputs, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "hidden_units": self.hidden_units}


@keras.saving.register_keras_serializable(package="metazoo")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned embedding of each time step's position.

    Input and output: `(batch, time, units)`.
    """

    def build(self, input_shape):
        self.positions = self.add_weight(
            shape=tuple(input_shape[1:]), initializer="zeros", name="positions"
        )

    def call(self, inputs):
        return inputs + self.positions


@keras.saving.register_keras_serializable(package="metazoo")
class LastStep(keras.layers.Layer):
    """The last time step of a sequence. Input `(batch, time, units)`, output `(batch, units)`."""

    def call(self, inputs):
        return inputs[:, -1]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


ENCODER_CELLS = ("gru", "lstm")


@keras.saving.register_keras_serializable(package="metazoo")
class SupportSetEncoder(keras.layers.Layer):
    """A task embedding read from a support set in time order.

    Each support sample is summarized by a dense layer on its flattened window concatenated
    with its target, `relu(W [flatten(x_k), y_k] + b)`, so that the summary can express how
    targets relate to inputs; a GRU or LSTM reads the summaries oldest first and its last
    state is the task embedding (a recurrent counterpart of the mean-pooled encoder of
    Conditional Neural Processes).

    Call arguments:
        support_x: `(n_tasks, n_support, *sample_shape)`.
        support_y: `(n_tasks, n_support, *target_shape)`.

    Returns:
        `(n_tasks, units)` embeddings.

    Args:
        units: size of the embedding (the recurrent state).
        sample_units: size of each sample's summary.
        cell: `"gru"` or `"lstm"`.
    """

    def __init__(self, units=32, sample_units=32, cell="gru", **kwargs):
        super().__init__(**kwargs)
        self.units = check_count("units", units)
        self.sample_units = check_count("sample_units", sample_units)
        self.cell = check_choice("cell", cell, ENCODER_CELLS)
        self.summarize = keras.layers.Dense(self.sample_units, activation="relu", name="summary")
        recurrent = keras.layers.GRU if cell == "gru" else keras.layers.LSTM
        self.recurrent = recurrent(self.units, name=cell)

    def build(self, support_x_shape, support_y_shape):
        width = int(np.prod(support_x_shape[2:])) + int(np.prod(support_y_shape[2:]))
        self.summarize.build((None, None, width))
        self.recurrent.build((None, None, self.sample_units))
        self.built = True

    def call(self, support_x, support_y, training=False):
        n_tasks, n_support = ops.shape(support_x)[0], ops.shape(support_x)[1]
        pairs = ops.concatenate(
            [
                ops.reshape(support_x, (n_tasks, n_support, -1)),
                ops.reshape(support_y, (n_tasks, n_support, -1)),
            ],
            axis=-1,
        )
        return self.recurrent(self.summarize(pairs), training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "sample_units": self.sample_units,
            "cell": self.cell,
        }
