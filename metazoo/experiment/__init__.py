"""The experiment behind `metazoo run`: does meta-learning help forecast and trade a new asset
or a new regime? See `run_experiment` for the protocol and `ExperimentConfig` for settings."""

from metazoo.experiment.config import (
    BASELINE_KINDS,
    EVAL_SETS,
    LEARNER_KINDS,
    ExperimentConfig,
    load_config,
)
from metazoo.experiment.run import RunResult, load_frame, run_experiment

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
