"""Model-selection candidates: zoo names or build functions with hyperparameter grids,
expanded into trials, with their hyperparameter names checked before any training."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from sklearn.model_selection import ParameterGrid

from metazoo import models

_BUILD_ARGS = 3  # build_fn(input_shape, output_dim, seed, **params)


@dataclass(frozen=True)
class Trial:
    """One candidate configuration: its label, its zoo name or build function, its params."""

    candidate: str
    spec: str | Callable
    params: dict


def expand_candidates(candidates) -> list[Trial]:
    """Trials of `{label: param_grid}` or `{label: (zoo_name_or_build_fn, param_grid)}`.

    A label alone names a zoo model. Hyperparameter names are checked here, before training.

    Raises:
        ValueError: If there are no candidates, a zoo name or a hyperparameter is unknown.
    """
    if not isinstance(candidates, dict) or not candidates:
        raise ValueError(
            "candidates must be a non-empty dict {zoo_name: param_grid} or "
            f"{{label: (build_fn, param_grid)}}. Received: candidates={candidates!r}"
        )
    trials = []
    for label, value in candidates.items():
        spec, grid = label, value
        if (
            isinstance(value, tuple)
            and len(value) == 2
            and (isinstance(value[0], str) or callable(value[0]))
        ):
            spec, grid = value
        for params in ParameterGrid(grid):
            check_hyperparameters(spec, params, label)
            trials.append(Trial(str(label), spec, dict(params)))
    return trials


def check_hyperparameters(spec, params, label="model") -> None:
    """Check that `spec` (a zoo name or a build function) takes every name in `params`.

    Raises:
        ValueError: If the zoo name is unknown or a hyperparameter is not taken.
    """
    valid = _valid_params(spec, label)
    unknown = [] if valid is None else sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown hyperparameters for candidate {label!r}; it takes {sorted(valid)}. "
            f"Received: {unknown}"
        )


def _valid_params(spec, label) -> list[str] | None:
    """Hyperparameter names `spec` takes, or None if it takes any (`**kwargs`)."""
    if isinstance(spec, str):
        if spec not in models.available():
            raise ValueError(
                f"Unknown zoo model for candidate {label!r}; available: {models.available()}, "
                f"or give (build_fn, param_grid). Received: {spec!r}"
            )
        return list(models.hyperparameters(spec))
    if not callable(spec):
        raise ValueError(
            f"A candidate is a zoo name or a build function. Received: {label!r}: {spec!r}"
        )
    parameters = list(inspect.signature(spec).parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters[_BUILD_ARGS:]]
