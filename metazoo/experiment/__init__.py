"""The experiment behind `metazoo run`: does meta-learning help forecast and trade a new asset
or a new regime? See `run_experiment` for the protocol and `ExperimentConfig` for settings.

The settings (`ExperimentConfig`, `load_config`, the option tables) load without TensorFlow,
so `metazoo --help` answers at once; the protocol loads it on first use.
"""

import importlib

from metazoo.experiment.config import (
    BASELINE_KINDS,
    EVAL_SETS,
    LEARNER_KINDS,
    ExperimentConfig,
    load_config,
)

_LAZY = {"RunResult": "run", "load_frame": "run", "run_experiment": "run"}

__all__ = [
    "BASELINE_KINDS",
    "EVAL_SETS",
    "LEARNER_KINDS",
    "ExperimentConfig",
    "RunResult",
    "load_config",
    "load_frame",
    "run_experiment",
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"metazoo.experiment.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'metazoo.experiment' has no attribute {name!r}")
