"""Market data: bundled prices, loaders, causal features, windows, splits and tasks."""

from metazoo.data.datasets import (
    CleaningReport,
    MissingDataWarning,
    load_markets,
    load_prices,
    validate_prices,
)
from metazoo.data.episodes import MetaBatch, meta_batch_dataset, pool_samples
from metazoo.data.features import (
    DEFAULT_FEATURES,
    available_features,
    compute_features,
    compute_targets,
)
from metazoo.data.splits import PurgedKFold, WalkForward
from metazoo.data.synthetic import ARTasks, RegimeSwitchingTasks, SinusoidTasks
from metazoo.data.tasks import EVAL_SETS, EvaluationEpisodes, Task, TaskSet, TaskSplit
from metazoo.data.windows import WindowScaler, WindowSet, make_windows

__all__ = [
    "EVAL_SETS",
    "EvaluationEpisodes",
    "ARTasks",
    "PurgedKFold",
    "RegimeSwitchingTasks",
    "SinusoidTasks",
    "WalkForward",
    "DEFAULT_FEATURES",
    "CleaningReport",
    "MetaBatch",
    "MissingDataWarning",
    "Task",
    "TaskSet",
    "TaskSplit",
    "WindowScaler",
    "WindowSet",
    "available_features",
    "compute_features",
    "compute_targets",
    "load_markets",
    "load_prices",
    "make_windows",
    "meta_batch_dataset",
    "pool_samples",
    "validate_prices",
]
