"""Compiled functions shared by every model of one architecture.

A `tf.function` made for one model instance (a closure over the model) is traced again for
every new instance, although the graph is the same whenever the architecture is: an
experiment that evaluates several learners and folds of one base network traces the same
graph over and over, and TensorFlow warns that its function is retraced. The functions
here take the model's variable values as inputs instead (they run the model under a
`keras.StatelessScope` that maps its variables to those values), so one trace serves every
model with the same class, configuration (layer names aside), dtypes and variable shapes.

A model's computation is fixed by its configuration and its variables (that is what lets
it round-trip through a `.keras` file). A model whose configuration cannot be described
(`get_config` fails, or holds objects other than plain values) keeps functions of its own,
and so does one whose trace turns out to read a variable it does not list as its own.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

import keras
import numpy as np

__all__ = [
    "architecture_key",
    "clear_shared_functions",
    "describe",
    "shared_function",
    "state_signature",
    "state_specs",
    "state_values",
    "stateless",
]

SHARED_FUNCTIONS = 32  # architectures x signatures kept; the least recently used are dropped


def architecture_key(model) -> str | None:
    """A string equal for two models exactly when one graph computes both from their
    variable values: their class, configuration with layer names replaced by their position,
    dtype policy, and the shape, dtype and trainability of each variable. None if the
    configuration cannot be described."""
    names = {}
    for index, layer in enumerate(model._flatten_layers(include_self=True)):
        names.setdefault(layer.name, f"<layer {index}>")
    try:
        config = _canonical(model.get_config(), names)
        description = {
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "config": config,
            "dtype": str(model.dtype_policy.name),
            "variables": _variable_specs(model),
        }
        return json.dumps(description, sort_keys=True, default=_plain)
    except (NotImplementedError, TypeError, ValueError):
        return None


def describe(value):
    """A hashable stand-in for a Keras object (a loss, say) in a function's key: its
    serialized configuration as JSON, a string or None as it is, and anything else (a plain
    function) by identity."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, keras.losses.Loss):
        try:
            config = keras.saving.serialize_keras_object(value)
            return json.dumps(config, sort_keys=True, default=_plain)
        except (NotImplementedError, TypeError, ValueError):
            pass
    return value


def state_values(model) -> list:
    """The current values of `model`'s trainable then non-trainable variables, as tensors
    (the inputs of the functions of `call_with_state`)."""
    import tensorflow as tf

    return [tf.convert_to_tensor(v.value) for v in _state(model)]


def shared_function(model, key, make: Callable, architecture: str | None = "auto") -> Callable:
    """`f(*args) = make(template)(state_values(model), *args)`, through the function shared
    by every model with the same `architecture_key` and `key`.

    Args:
        model: the model (or layer) whose variables the function reads; their values are
            taken now, once for every call of `f`.
        key: what else the graph depends on (input signature, steps...), hashable.
        make: `make(template)` returns a `tf.function` `g(values, *args)`, with an input
            signature, that computes with `template` within `stateless(template, values)`.
            It is called once per key, with the first model that needs it.
        architecture: what stands for `architecture_key(model)` in the key, for callers
            that know better which models compute alike (see
            `GradientMetaLearner._adapted_predictor`); it must describe `state_values`
            too (`state_specs`). None keeps a function of the model's own.
    """
    values = state_values(model)
    if architecture == "auto":
        architecture = architecture_key(model)
    slot = {"function": None} if architecture is None else _slot((architecture, key))
    if "function" in slot:
        shared = slot["function"]
        if shared is None:
            shared = _own_function(model, key, make)
        return functools.partial(shared, values)
    function = make(model)
    _count_traces_apart(function)

    def first_call(*args):
        result = function(values, *args)
        if "function" not in slot:  # traced now: can the graph serve other models?
            if _reads_variables(function):  # bound to this model's variables: keep it here
                model.__dict__.setdefault("_metazoo_own_functions", {})[key] = function
                slot["function"] = None
            else:
                slot["function"] = function
        return result

    return first_call


class _TraceCounter:
    """A key of TensorFlow's retracing detector, held by the function it counts (the
    detector holds its keys weakly)."""


def _count_traces_apart(function) -> None:
    """Count the traces of `function` apart from those of the other functions that its
    `make` builds.

    TensorFlow warns that a function "triggered tf.function retracing" when 5 of the last
    10 calls of one Python function traced, and it tells functions apart by their code
    object. Every function that a `make` builds (one per architecture and key) has the
    code of `make`'s inner function, so a run of several architectures, each traced once,
    reads to it as one function retraced. Each function is therefore counted on its own:
    one that does retrace (a new input signature on every call) is still warned about.
    """
    if getattr(function, "_key_for_call_stats", None) is not None:
        function._key_for_call_stats = _TraceCounter()


def stateless(model, values):
    """A `keras.StatelessScope` in which `model`'s variables read as `values` (ordered as
    `state_values`)."""
    variables = _state(model)
    if len(values) != len(variables):
        raise ValueError(
            f"values expected one tensor per variable of {model.name!r} ({len(variables)}). "
            f"Received: {len(values)} tensors"
        )
    return keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True)))


def state_specs(model) -> str:
    """The shape, dtype and trainability of each of `state_values(model)`, as JSON."""
    return json.dumps(_variable_specs(model))


def state_signature(model) -> list:
    """`tf.TensorSpec`s of `state_values(model)`."""
    import tensorflow as tf

    return [tf.TensorSpec(tuple(v.shape), v.dtype) for v in _state(model)]


def clear_shared_functions() -> None:
    """Drop every shared function (and the graphs and template models they hold)."""
    _slot.cache_clear()


@functools.lru_cache(maxsize=SHARED_FUNCTIONS)
def _slot(key) -> dict:
    """The holder of the shared function of `key` (empty until first used)."""
    return {}


def _own_function(model, key, make):
    functions = model.__dict__.setdefault("_metazoo_own_functions", {})
    if key not in functions:
        functions[key] = make(model)
        _count_traces_apart(functions[key])
    return functions[key]


def _reads_variables(function) -> bool:
    """Whether the traced graph captured variables (instead of taking them as inputs)."""
    return bool(function.get_concrete_function().variables)


def _state(model) -> list:
    return [*model.trainable_variables, *model.non_trainable_variables]


def _variable_specs(model) -> list:
    return [
        [list(v.shape), str(v.dtype), bool(v.trainable)]
        for v in model.trainable_variables + model.non_trainable_variables
    ]


def _canonical(value, names: dict):
    """`value` (a configuration) with strings that name a layer replaced by its position."""
    if isinstance(value, dict):
        return {str(k): _canonical(v, names) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v, names) for v in value]
    if isinstance(value, str):
        return names.get(value, value)
    return value


def _plain(value):
    """JSON for NumPy values in a configuration; anything else cannot be described."""
    if isinstance(value, np.ndarray | np.generic):
        return {"array": np.asarray(value).tolist(), "dtype": str(np.asarray(value).dtype)}
    raise TypeError(f"value expected a plain configuration value. Received: {type(value)}")
