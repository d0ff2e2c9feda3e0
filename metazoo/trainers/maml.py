"""Model-Agnostic Meta-Learning, second and first order."""

from __future__ import annotations

import keras

from metazoo.trainers.gradient import GradientMetaLearner


@keras.saving.register_keras_serializable(package="metazoo")
class MAML(GradientMetaLearner):
    """Model-Agnostic Meta-Learning.

    Learns initial weights from which `inner_steps` gradient steps on a task's support set
    give a low loss on its query set. The meta-gradient differentiates through the inner
    steps (second order); `first_order=True` treats the inner gradients as constants
    (FOMAML), which is cheaper and often nearly as good.

    Example:
        ```python
        maml = MAML(models.build("mlp", (20, 7), 1), inner_lr=0.01, inner_steps=1)
        maml.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        maml.fit(tasks.meta_batches(16, 20, 20, n_batches=100), epochs=10,
                 validation_data=held_out.meta_batches(16, 20, 20, n_batches=10))
        adapted = maml.adapt(support_x, support_y, steps=5)   # a plain Keras model
        ```

    Args:
        model: the base network.
        inner_lr: inner-loop learning rate.
        inner_steps: inner steps in meta-training.
        eval_inner_steps: inner steps in `evaluate` and `adapt`.
        first_order: first-order approximation.
        task_parallel: `"auto"`, `"vectorized"` or `"loop"` (see `GradientMetaLearner`).

    References:
        Finn, Abbeel and Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep
        Networks", ICML 2017.
    """
