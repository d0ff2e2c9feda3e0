"""Almost No Inner Loop: adapt only the head."""

from __future__ import annotations

import keras

from metazoo.models.registry import head_mask
from metazoo.trainers.gradient import GradientMetaLearner


@keras.saving.register_keras_serializable(package="metazoo")
class ANIL(GradientMetaLearner):
    """MAML whose inner loop adapts only the head (the layers named `head...` of a zoo
    model); the body is learned by the outer loop alone and shared by every task.

    Args: as `MAML`.

    References:
        Raghu, Raghu, Bengio and Vinyals, "Rapid Learning or Feature Reuse? Towards
        Understanding the Effectiveness of MAML", ICLR 2020.
    """

    def __init__(self, model, *args, **kwargs):
        super().__init__(model, *args, **kwargs)
        self.head = head_mask(model)

    def inner_update(self, weights, gradients, step):
        return [
            w - self.inner_lr * g if is_head else w
            for w, g, is_head in zip(weights, gradients, self.head, strict=True)
        ]
