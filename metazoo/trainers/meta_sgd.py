"""Meta-SGD: meta-learned per-parameter inner learning rates."""

from __future__ import annotations

import keras
from keras import ops

from metazoo.trainers.gradient import GradientMetaLearner
from metazoo.validation import check_interval


@keras.saving.register_keras_serializable(package="metazoo")
class Clip(keras.constraints.Constraint):
    """Keeps a variable within `[low, high]` after each optimizer step."""

    def __init__(self, low, high):
        self.low, self.high = float(low), float(high)

    def __call__(self, w):
        return ops.clip(w, self.low, self.high)

    def get_config(self):
        return {"low": self.low, "high": self.high}


@keras.saving.register_keras_serializable(package="metazoo")
class MetaSGD(GradientMetaLearner):
    """MAML with a learned learning rate for every parameter.

    The inner step is `w - alpha * grad` with `alpha` a trainable tensor shaped like `w`,
    initialized to `inner_lr` and kept within `lr_bounds` after every outer step. Learned
    rates are saved with the model; `metazoo.callbacks.InnerLearningRates(log_dir)` shows
    their distribution in TensorBoard.

    Args:
        model: the base network.
        inner_lr: initial inner learning rate.
        lr_bounds: `(low, high)` bounds of the learned rates, finite, with
            `0 <= low <= inner_lr <= high`.
        **kwargs: as `MAML`.

    References:
        Li, Zhou, Chen and Li, "Meta-SGD: Learning to Learn Quickly for Few-Shot Learning",
        arXiv:1707.09835, 2017.
    """

    def __init__(self, model, inner_lr=0.01, lr_bounds=(0.0, 1.0), **kwargs):
        super().__init__(model, inner_lr=inner_lr, **kwargs)
        low, high = check_interval("lr_bounds", lr_bounds, lower=0.0)  # finite: no divergence
        if not low <= self.inner_lr <= high:
            raise ValueError(
                "lr_bounds expected low <= inner_lr <= high. "
                f"Received: lr_bounds={lr_bounds}, inner_lr={inner_lr}"
            )
        self.lr_bounds = (low, high)
        self.inner_lrs = [
            self.add_weight(
                shape=tuple(v.shape),
                initializer=keras.initializers.Constant(self.inner_lr),
                constraint=Clip(low, high),
                name=f"inner_lr_{v.path.replace('/', '_')}",
            )
            for v in model.trainable_variables
        ]

    def inner_update(self, weights, gradients, step):
        return [w - lr * g for w, g, lr in zip(weights, gradients, self.inner_lrs, strict=True)]

    def get_config(self):
        return {**super().get_config(), "lr_bounds": list(self.lr_bounds)}
