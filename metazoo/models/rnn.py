"""Recurrent families: SimpleRNN, LSTM and GRU, stacked and bidirectional."""

from __future__ import annotations

import keras

from metazoo.models.mlp import _as_tuple
from metazoo.models.registry import register

_CELLS = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def recurrent_body(inputs, cell, units, bidirectional, dropout, return_sequences=False):
    """Stack of recurrent layers; the last returns its final state unless asked for sequences."""
    widths = _as_tuple(units, "units")
    x = inputs
    for i, width in enumerate(widths):
        last = i == len(widths) - 1
        layer = _CELLS[cell](
            width,
            return_sequences=return_sequences or not last,
            dropout=dropout,
            name=f"{cell}_{i}",
        )
        x = (
            keras.layers.Bidirectional(layer, name=f"bi_{cell}_{i}")(x)
            if bidirectional
            else layer(x)
        )
    return x


def _family(cell: str, name: str, default_units, default_bidirectional: bool, title: str):
    def builder(inputs, units=default_units, bidirectional=default_bidirectional, dropout=0.0):
        return recurrent_body(inputs, cell, units, bidirectional, dropout)

    builder.__name__ = name
    builder.__doc__ = f"""{title}

    Hyperparameters:
        units: width of each recurrent layer; several values stack layers.
        bidirectional: read the window in both directions (the window is all past data,
            so this does not look ahead of the forecast date).
        dropout: dropout rate on the inputs of each recurrent layer.
    """
    return register(name)(builder)


simple_rnn = _family("simple_rnn", "simple_rnn", (32,), False, "Elman recurrent network.")
lstm = _family("lstm", "lstm", (32,), False, "Long short-term memory network (Hochreiter 1997).")
gru = _family("gru", "gru", (32,), False, "Gated recurrent unit network (Cho et al. 2014).")
stacked_lstm = _family("lstm", "stacked_lstm", (32, 16), False, "Two stacked LSTM layers.")
bi_lstm = _family("lstm", "bi_lstm", (16,), True, "Bidirectional LSTM.")
bi_gru = _family("gru", "bi_gru", (16,), True, "Bidirectional GRU.")
