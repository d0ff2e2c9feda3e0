"""Custom layers of the zoo, registered so models round-trip through `.keras` files."""

from __future__ import annotations

import keras
from keras import ops


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
