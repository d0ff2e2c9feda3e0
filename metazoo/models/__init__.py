"""The model zoo: base networks built from one registry.

Every model is a functional `keras.Model` from `build(name, input_shape, output_dim)` whose
last layer, named `head`, maps the body's features to the targets. Meta-learners that adapt
only the head (ANIL) use `head_mask(model)`.
"""

from metazoo.models import attention, mlp, rnn, tcn  # noqa: F401  (register the families)
from metazoo.models.layers import (
    LastStep,
    PositionEmbedding,
    SupportSetEncoder,
    TemporalAttention,
)
from metazoo.models.losses import GaussianNLL, split_gaussian
from metazoo.models.registry import (
    available,
    body_and_head,
    build,
    describe,
    head_layers,
    head_mask,
    hyperparameters,
    register,
)

__all__ = [
    "GaussianNLL",
    "LastStep",
    "PositionEmbedding",
    "SupportSetEncoder",
    "TemporalAttention",
    "available",
    "body_and_head",
    "build",
    "describe",
    "head_layers",
    "head_mask",
    "hyperparameters",
    "register",
    "split_gaussian",
]
