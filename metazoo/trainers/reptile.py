"""Reptile: first-order meta-learning by moving towards adapted weights."""

from __future__ import annotations

import keras
from keras import ops

from metazoo.trainers.episodic import replica_scale
from metazoo.trainers.gradient import GradientMetaLearner
from metazoo.trainers.losses import mean_loss, resolve_loss


@keras.saving.register_keras_serializable(package="metazoo")
class Reptile(GradientMetaLearner):
    """Reptile.

    For each task, `inner_steps` gradient steps on all of its data (support and query
    together) give adapted weights `phi`; the outer "gradient" is `theta - mean(phi)`, so
    with `keras.optimizers.SGD(learning_rate=epsilon)` the update is the paper's
    `theta <- theta + epsilon * (mean(phi) - theta)`. No second-order terms are involved.
    The training `loss` is the tasks' loss after the inner steps (on the data they used);
    `evaluate` adapts on the support set and scores the query set, like the other
    meta-learners.

    Args: as `MAML` (`first_order` does not apply).

    References:
        Nichol, Achiam and Schulman, "On First-Order Meta-Learning Algorithms",
        arXiv:1803.02999, 2018.
    """

    def meta_gradients(self, batch):
        weights = self.meta_parameters()

        def per_task(task):
            support_x, support_y, query_x, query_y = task
            x = ops.concatenate([support_x, query_x], axis=0)
            y = ops.concatenate([support_y, query_y], axis=0)
            fast, before = self.adapt_weights(weights, x, y, self.inner_steps)
            after = self.inner_loss(fast, x, y)
            query_pred = self.forward(fast, query_x)
            return fast, after, before, self.inner_loss(weights, query_x, query_y), query_pred

        fast, after, support, before, query_pred = self.map_tasks(per_task, batch)
        scale = replica_scale()
        gradients = [(w - ops.mean(f, axis=0)) * scale for w, f in zip(weights, fast, strict=True)]
        return ops.mean(after), (support, before, query_pred), gradients

    def inner_loss(self, weights, x, y):
        return mean_loss(resolve_loss(self.loss), y, self.forward(weights, x))

    def get_config(self):
        config = super().get_config()
        config.pop("first_order")
        return config
