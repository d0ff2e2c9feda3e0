"""The fine-tuning reference: the pooled network, adapted to each task by plain gradient
steps on its support set (transfer learning, the usual strong baseline)."""

from __future__ import annotations

import keras

from metazoo.trainers.gradient import GradientMetaLearner
from metazoo.trainers.pooled import PooledTraining


@keras.saving.register_keras_serializable(package="metazoo")
class FineTuned(PooledTraining, GradientMetaLearner):
    """A network trained like `Pooled` (on every training sample, no meta-learning) and
    fine-tuned on each task's support set with `eval_inner_steps` gradient steps at
    `inner_lr`, optionally clipped to `inner_clip_norm`.

    It shares the inner loop of the gradient meta-learners, so `adapt`, `predict_tasks`
    and `evaluate` (query loss after fine-tuning) behave as theirs; only training differs:
    no inner loop, no meta-gradient. A network trained elsewhere can be wrapped as it is.

    Example:
        ```python
        finetuned = FineTuned(models.build("mlp", (20, 7), 1, seed=0), inner_lr=0.01)
        finetuned.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        finetuned.fit(train.X, train.y, epochs=8, batch_size=256)
        adapted = finetuned.adapt(support_x, support_y)   # a plain Keras model
        ```

    Args:
        model: the base network.
        inner_lr: learning rate of the fine-tuning steps.
        eval_inner_steps: fine-tuning steps in `adapt`, `predict_tasks` and `evaluate`.
        inner_clip_norm: global-norm clip of each fine-tuning step (None for none).
        task_parallel: as `GradientMetaLearner`.
    """

    def __init__(
        self,
        model,
        inner_lr=0.01,
        eval_inner_steps=5,
        inner_clip_norm=None,
        task_parallel="auto",
        **kwargs,
    ):
        kwargs.pop("inner_steps", None)  # from a saved config: fine-tuning has no inner loop
        kwargs.pop("first_order", None)
        super().__init__(
            model,
            inner_lr=inner_lr,
            inner_steps=1,
            eval_inner_steps=eval_inner_steps,
            inner_clip_norm=inner_clip_norm,
            task_parallel=task_parallel,
            **kwargs,
        )

    def call(self, x, training=False):
        return self.model(x, training=training)

    def get_config(self):
        config = super().get_config()
        for name in ("inner_steps", "first_order"):
            config.pop(name)
        return config
