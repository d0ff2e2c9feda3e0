"""Attention families: attention LSTM (ALSTM) and a small Transformer encoder."""

from __future__ import annotations

import keras

from metazoo.models.layers import LastStep, PositionEmbedding, TemporalAttention
from metazoo.models.registry import register
from metazoo.models.rnn import recurrent_body


@register("alstm")
def alstm(inputs, units=32, attention_units=16, dropout=0.0, unroll=None):
    """Attention LSTM as in Qlib's zoo: an LSTM over the window, attention pooling over its
    states, concatenated with the last state.

    Hyperparameters:
        units: LSTM width.
        attention_units: width of the attention scoring network.
        dropout: dropout rate on the LSTM inputs.
        unroll: as for `lstm`.
    """
    states = recurrent_body(
        inputs, "lstm", units, False, dropout, return_sequences=True, unroll=unroll
    )
    pooled = TemporalAttention(attention_units, name="attention")(states)
    last = LastStep(name="last_state")(states)
    return keras.layers.Concatenate(name="concat")([pooled, last])


@register("transformer")
def transformer(inputs, d_model=32, num_heads=4, ff_units=64, num_layers=2, dropout=0.0):
    """Transformer encoder (Vaswani et al. 2017) over the window with learned positions,
    pre-layer-normalization blocks, and mean pooling over time.

    Hyperparameters:
        d_model: width of the token embedding.
        num_heads: attention heads (each of size `d_model // num_heads`).
        ff_units: width of the feed-forward sublayer.
        num_layers: encoder blocks.
        dropout: dropout rate inside attention and feed-forward sublayers.
    """
    if d_model % num_heads:
        raise ValueError(
            f"d_model must be divisible by num_heads. Received: d_model={d_model}, num_heads={num_heads}"
        )
    x = keras.layers.Dense(d_model, name="embed")(inputs)
    x = PositionEmbedding(name="positions")(x)
    for i in range(num_layers):
        h = keras.layers.LayerNormalization(name=f"norm_attn_{i}")(x)
        h = keras.layers.MultiHeadAttention(
            num_heads, d_model // num_heads, dropout=dropout, name=f"attn_{i}"
        )(h, h)
        x = keras.layers.Add(name=f"residual_attn_{i}")([x, h])
        h = keras.layers.LayerNormalization(name=f"norm_ff_{i}")(x)
        h = keras.layers.Dense(ff_units, activation="gelu", name=f"ff_in_{i}")(h)
        h = keras.layers.Dropout(dropout, name=f"ff_dropout_{i}")(h)
        h = keras.layers.Dense(d_model, name=f"ff_out_{i}")(h)
        x = keras.layers.Add(name=f"residual_ff_{i}")([x, h])
    x = keras.layers.LayerNormalization(name="norm_out")(x)
    return keras.layers.GlobalAveragePooling1D(name="pool")(x)
