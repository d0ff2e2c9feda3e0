"""One registry for every base network of the zoo."""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterable
from numbers import Real

import keras

from metazoo.models import tracing
from metazoo.models.heads import add_head
from metazoo.seeding import weights_seeded
from metazoo.validation import check_bool, check_count, check_in_range

HEAD_PREFIX = "head"


class Registry:
    """Names mapped to model-building functions `builder(inputs, output_dim, **hparams)`.

    A builder receives a `keras.Input` and returns the body's output tensor; `build` adds
    the head (a `Dense` layer named `head`) and wraps both in a functional `keras.Model`.
    """

    def __init__(self):
        self._builders: dict[str, Callable] = {}

    def register(self, name: str):
        """Decorator adding a builder under `name`."""

        def decorate(builder):
            if name in self._builders:
                raise ValueError(f"A model named {name!r} is already registered.")
            self._builders[name] = builder
            return builder

        return decorate

    def names(self) -> list[str]:
        return sorted(self._builders)

    def get(self, name: str) -> Callable:
        if name not in self._builders:
            raise ValueError(f"Unknown model; available: {self.names()}. Received: name={name!r}")
        return self._builders[name]


REGISTRY = Registry()
register = REGISTRY.register


def available() -> list[str]:
    """Names of every registered model."""
    return REGISTRY.names()


def hyperparameters(name: str) -> dict:
    """Hyperparameters of model `name` with their defaults (see its builder's docstring)."""
    signature = inspect.signature(REGISTRY.get(name))
    return {
        key: p.default
        for key, p in signature.parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def describe(name: str) -> str:
    """The documentation of model `name`: what it is and what its hyperparameters mean."""
    return inspect.getdoc(REGISTRY.get(name)) or name


def build(
    name: str,
    input_shape,
    output_dim: int = 1,
    *,
    probabilistic: bool = False,
    head: str = "linear",
    seed: int | None = None,
    **hparams,
) -> keras.Model:
    """Build a zoo model.

    Args:
        name: a registered name (see `available()`).
        input_shape: `(lookback, n_features)`.
        output_dim: number of targets (e.g. the horizon).
        probabilistic: if True the head outputs `2 * output_dim` values, a Gaussian mean and
            log-variance per target, to train with `GaussianNLL`.
        head: `"linear"` (a `Dense` layer) or `"variance"` (the `Dense` layer, then
            `PositiveVariance`: variance forecasts > 0 by construction, for `QLIKE` or the
            variance likelihoods with `log_pred=False`).
        seed: seeds the model's initializers, so the same seed builds the same weights;
            the process's random number generators are left as they were
            (`metazoo.seeding.weights_seeded`). None draws from Python's generator.
        **hparams: hyperparameters of the model (see `hyperparameters(name)`).

    Returns:
        An uncompiled functional `keras.Model` named `name`; its head is the layer `head`.
    """
    builder = REGISTRY.get(name)
    known = hyperparameters(name)
    unknown = sorted(set(hparams) - set(known))
    if unknown:
        raise ValueError(
            f"Unknown hyperparameters for {name!r}; it takes {sorted(known)}. Received: {unknown}"
        )
    _check_hyperparameters(hparams)
    iterable = isinstance(input_shape, Iterable) and not isinstance(input_shape, (str, bytes))
    dims = tuple(input_shape) if iterable else ()
    if len(dims) != 2 or not all(_is_count(d) for d in dims):
        raise ValueError(
            f"input_shape must be (lookback, n_features), both >= 1. Received: input_shape={input_shape}"
        )
    shape = tuple(int(d) for d in dims)
    check_count("output_dim", output_dim)
    if probabilistic and head != "linear":
        raise ValueError(
            f"`head` expected 'linear' with probabilistic=True. Received: head={head!r}"
        )
    units = 2 * int(output_dim) if probabilistic else int(output_dim)
    with contextlib.nullcontext() if seed is None else weights_seeded(seed):
        inputs = keras.Input(shape, name="window")
        outputs = add_head(builder(inputs, **hparams), units, head, HEAD_PREFIX)
        return keras.Model(inputs, outputs, name=name)


_COUNTS = ("filters", "kernel_size", "attention_units", "d_model", "num_heads", "ff_units")


def _check_hyperparameters(hparams: dict) -> None:
    """Check the zoo's shared hyperparameter kinds by name: sizes, rates and switches."""
    for key, value in hparams.items():
        if key in (*_COUNTS, "num_layers"):
            check_count(key, value)
        if key == "dropout":
            check_in_range("dropout", value, 0.0, 1.0, closed="left")
        if key == "bidirectional":
            check_bool("bidirectional", value)


def _is_count(value) -> bool:
    """Whether `value` is a whole number >= 1 (an int or an integral float, not a bool)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        return False
    return value == int(value) and value >= 1


def head_layers(model: keras.Model) -> list:
    """The layers of the head: those whose name starts with `head`."""
    layers = [layer for layer in model.layers if layer.name.startswith(HEAD_PREFIX)]
    if not layers:
        raise ValueError(
            f"Model {model.name!r} has no layer named '{HEAD_PREFIX}...'; zoo models end in one."
        )
    return layers


def head_mask(model: keras.Model) -> list[bool]:
    """For each of `model.trainable_variables`, whether it belongs to the head."""
    head_ids = {id(v) for layer in head_layers(model) for v in layer.trainable_variables}
    return [id(v) in head_ids for v in model.trainable_variables]


def body_and_head(model: keras.Model):
    """The body (the inputs to the head's features) and the head of a zoo model, whose
    head is its last layer, a single `Dense` layer named `head` (see `head_layers`).

    Raises:
        ValueError: if the model does not end in such a head.
    """
    head = model.layers[-1] if getattr(model, "layers", None) else None
    try:
        heads = head_layers(model)
    except ValueError:
        heads = []
    if not isinstance(head, keras.layers.Dense) or heads != [head]:
        raise ValueError(
            f"model expected a zoo model whose last layer is a Dense layer named '{HEAD_PREFIX}'"
            f" (its only head layer). Received: last layer {getattr(head, 'name', None)!r} of "
            f"type {type(head).__name__}"
        )
    return keras.Model(model.inputs, head.input, name=f"{model.name}_body"), head


def compiled_call(model, inputs, free_axes: int = 1, batch_size: int | None = None):
    """`model(inputs, training=False)` as NumPy, through one compiled function per
    architecture and input layout, traced once.

    Keras `predict` traces again for every new input length (the last, partial batch
    included); forecasting evaluation sets of many lengths then retrace over and over.
    Here the signature leaves the first `free_axes` axes of every input free, so one trace
    serves every length, and the function takes the model's variable values as inputs, so
    that trace also serves every other model of the same architecture (see
    `metazoo.models.tracing`).

    Args:
        model: a Keras model (or layer) to call.
        inputs: an array, or a dict or tuple of arrays, as the model takes them.
        free_axes: leading axes of each input whose size may vary (1: samples; 2: tasks
            and samples, as meta-batches have).
        batch_size: rows of the first axis per call (default all at once).
    """
    import numpy as np
    import tensorflow as tf

    arrays = tf.nest.map_structure(lambda a: np.asarray(a, dtype=np.float32), inputs)
    signature = tf.nest.map_structure(
        lambda a: tf.TensorSpec((None,) * free_axes + a.shape[free_axes:], tf.float32), arrays
    )

    def make(template):
        @tf.function(input_signature=[tracing.state_signature(template), signature])
        def call(values, x):
            with tracing.stateless(template, values):
                return template(x, training=False)

        return call

    run = tracing.shared_function(model, ("compiled_call", repr(signature)), make)
    n = len(tf.nest.flatten(arrays)[0])
    step = n if batch_size is None else max(1, int(batch_size))
    parts = [
        run(tf.nest.map_structure(lambda a, s=start: a[s : s + step], arrays))
        for start in range(0, max(n, 1), step)
    ]
    return tf.nest.map_structure(lambda *p: np.concatenate([np.asarray(x) for x in p]), *parts)
