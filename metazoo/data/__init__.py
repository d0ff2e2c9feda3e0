"""Market data: bundled prices, loaders, causal features, windows, splits and tasks.

The splitters (`PurgedKFold`, `WalkForward`) load scikit-learn on first use.
"""

import importlib

from metazoo.data.datasets import (
    ASSET_CLASSES,
    AdjustedPricesWarning,
    CleaningReport,
    MissingDataWarning,
    PriceJumpWarning,
    load_markets,
    load_prices,
    universe,
    validate_prices,
)
from metazoo.data.episodes import MetaBatch, meta_batch_dataset, pool_samples
from metazoo.data.features import (
    DEFAULT_FEATURES,
    available_features,
    compute_features,
    compute_targets,
)
from metazoo.data.folds import (
    AssetFold,
    asset_group_folds,
    chronological_cutoffs,
    cutoff_masks,
    split_at_cutoffs,
)
from metazoo.data.synthetic import ARTasks, RegimeSwitchingTasks, SinusoidTasks
from metazoo.data.tasks import EVAL_SETS, EvaluationEpisodes, Task, TaskSet, TaskSplit
from metazoo.data.windows import WindowScaler, WindowSet, make_windows

__all__ = [
    "ASSET_CLASSES",
    "EVAL_SETS",
    "EvaluationEpisodes",
    "ARTasks",
    "AdjustedPricesWarning",
    "PriceJumpWarning",
    "AssetFold",
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
    "asset_group_folds",
    "available_features",
    "chronological_cutoffs",
    "compute_features",
    "compute_targets",
    "cutoff_masks",
    "load_markets",
    "load_prices",
    "make_windows",
    "meta_batch_dataset",
    "split_at_cutoffs",
    "universe",
    "pool_samples",
    "validate_prices",
]


_LAZY = {"PurgedKFold": "splits", "WalkForward": "splits"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"metazoo.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'metazoo.data' has no attribute {name!r}")
