"""Recurrent families: SimpleRNN, LSTM and GRU, stacked and bidirectional."""

from __future__ import annotations

import keras

from metazoo.models.mlp import _as_tuple
from metazoo.models.registry import register

_CELLS = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}

UNROLL_MAX_LOOKBACK = 64
"""Longest window whose recurrences the gradient meta-learners unroll inside their own
steps (`metazoo.trainers.GradientMetaLearner`). Unrolled, a recurrent layer is a plain
graph of `lookback` cell steps rather than a `while` loop, which `tf.vectorized_map` can
map over the tasks of a meta-batch. For second-order MAML on an LSTM(32), 8 tasks x
(16 + 16) windows, one thread, unrolled and vectorized ran 4.5x the meta-steps/s of the
loop at lookback 20 (and warmed up 3x faster), 2.9x at lookback 60 (warm-up 1.3x longer).
The graph and its tracing time grow with the window, so long windows keep the loop. A
plain Keras `fit` keeps the loop (unrolled, an LSTM(8) over 20 steps took about 2.5 s
longer to trace there and trained no faster)."""

UNROLL_DOC = f"""unroll: `True` writes the recurrence out step by step in every call; `False`
            or `None` (default) keep Keras' loop over time. The gradient meta-learners
            unroll windows of up to {UNROLL_MAX_LOOKBACK} steps inside their own steps
            either way, so that they can map a meta-batch's tasks at once. Every choice
            gives the same outputs."""


def resolve_unroll(unroll) -> bool:
    """The layer's `unroll`: `unroll`, with None meaning False (see `UNROLL_DOC`)."""
    if unroll is None:
        return False
    if not isinstance(unroll, bool):
        raise TypeError(f"`unroll` expected True, False or None. Received: unroll={unroll!r}")
    return unroll


def recurrent_body(
    inputs, cell, units, bidirectional, dropout, return_sequences=False, unroll=None
):
    """Stack of recurrent layers; the last returns its final state unless asked for
    sequences. `unroll` as in `resolve_unroll`."""
    widths = _as_tuple(units, "units")
    unroll = resolve_unroll(unroll)
    x = inputs
    for i, width in enumerate(widths):
        last = i == len(widths) - 1
        layer = _CELLS[cell](
            width,
            return_sequences=return_sequences or not last,
            dropout=dropout,
            unroll=unroll,
            name=f"{cell}_{i}",
        )
        x = (
            keras.layers.Bidirectional(layer, name=f"bi_{cell}_{i}")(x)
            if bidirectional
            else layer(x)
        )
    return x


def _family(cell: str, name: str, default_units, default_bidirectional: bool, title: str):
    def builder(
        inputs, units=default_units, bidirectional=default_bidirectional, dropout=0.0, unroll=None
    ):
        return recurrent_body(inputs, cell, units, bidirectional, dropout, unroll=unroll)

    builder.__name__ = name
    builder.__doc__ = f"""{title}

    Hyperparameters:
        units: width of each recurrent layer; several values stack layers.
        bidirectional: read the window in both directions (the window is all past data,
            so this does not look ahead of the forecast date).
        dropout: dropout rate on the inputs of each recurrent layer.
        {UNROLL_DOC}
    """
    return register(name)(builder)


simple_rnn = _family("simple_rnn", "simple_rnn", (32,), False, "Elman recurrent network.")
lstm = _family("lstm", "lstm", (32,), False, "Long short-term memory network (Hochreiter 1997).")
gru = _family("gru", "gru", (32,), False, "Gated recurrent unit network (Cho et al. 2014).")
stacked_lstm = _family("lstm", "stacked_lstm", (32, 16), False, "Two stacked LSTM layers.")
bi_lstm = _family("lstm", "bi_lstm", (16,), True, "Bidirectional LSTM.")
bi_gru = _family("gru", "bi_gru", (16,), True, "Bidirectional GRU.")
