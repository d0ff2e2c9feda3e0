"""The model zoo: base networks built from one registry.

Every model is a functional `keras.Model` from `build(name, input_shape, output_dim)` whose
last layer, named `head`, maps the body's features to the targets. Meta-learners that adapt
only the head (ANIL) use `head_mask(model)`.
"""

from metazoo.models import attention, har, mlp, rnn, tcn  # noqa: F401  (register the families)
from metazoo.models.har import HAR_FEATURES, SelectFeatures, set_har_coefficients
from metazoo.models.heads import HEADS, PositiveVariance
from metazoo.models.layers import (
    LastStep,
    PositionEmbedding,
    SupportSetEncoder,
    TemporalAttention,
)
from metazoo.models.losses import (
    QLIKE,
    GaussianNLL,
    GaussianVarianceNLL,
    StudentTVarianceNLL,
    split_gaussian,
)
from metazoo.models.registry import (
    available,
    body_and_head,
    build,
    compiled_call,
    describe,
    head_layers,
    head_mask,
    hyperparameters,
    register,
)

__all__ = [
    "HAR_FEATURES",
    "HEADS",
    "QLIKE",
    "GaussianNLL",
    "GaussianVarianceNLL",
    "PositiveVariance",
    "SelectFeatures",
    "StudentTVarianceNLL",
    "LastStep",
    "PositionEmbedding",
    "SupportSetEncoder",
    "TemporalAttention",
    "available",
    "body_and_head",
    "compiled_call",
    "build",
    "describe",
    "head_layers",
    "head_mask",
    "hyperparameters",
    "register",
    "set_har_coefficients",
    "split_gaussian",
]
