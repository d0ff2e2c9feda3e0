"""Amortized meta-learning: adaptation is one forward pass over the support set.

The model-based (`ContextMetaLearner`), metric-based (`ExpertPrototypes`) and meta-learned
averaging (`MetaLearnedAveraging`) learners share this base. Each maps a task's support set
to a *context* (a task embedding, ensemble weights, refitted heads) and predicts the task's
query set from it. There is no inner loop: `adapt` reads the support set once, and meta-training
differentiates the query loss through that reading.

Data: `fit` and `evaluate` take the meta-batches of the gradient meta-learners,
`(support_x, support_y, query_x, query_y)` with a leading task axis.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from metazoo.data.episodes import MetaBatch
from metazoo.models import compiled_call
from metazoo.trainers.episodic import EpisodicModel, flatten_tasks, replica_scale
from metazoo.trainers.losses import mean_loss, resolve_loss, update_loss_tracker
from metazoo.validation import (
    check_finite_array,
    check_meta_batch_arrays,
    check_meta_batch_shapes,
)

_INPUT_KEYS = ("support_x", "support_y", "query_x")


class AmortizedMetaLearner(EpisodicModel):
    """Base of the learners whose adaptation is a forward pass (see the module docstring).

    Subclasses create their layers in `__init__`, call `_set_shapes` and implement:

    * `task_context(support_x, support_y, training)`: a dict of tensors with a leading task
      axis, one entry `"embedding"` `(n_tasks, dim)` among them;
    * `query_outputs(context, query_x, training)`: a dict whose `"prediction"` is
      `(n_tasks, query_size, *target_shape)` (other entries, such as each member's
      prediction, are handed to `auxiliary`);
    * optionally `auxiliary(context, batch, outputs, training)`: `(penalty, logs)`, a
      scalar added to the training objective and scalars logged under the names given to
      `_track_logs`.

    Logs: `loss` is the query loss of the conditioned predictions; compiled metrics are
    computed on them too.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sample_shape = self.target_shape = None
        self.log_trackers = []

    def _track_logs(self, *names: str) -> None:
        """Log the mean of these auxiliary scalars over each epoch."""
        self.log_trackers = [keras.metrics.Mean(name=name) for name in names]

    def _set_shapes(self, model: keras.Model) -> None:
        """Take the sample and target shapes from a base model `(None, *shape)`."""
        self.sample_shape = tuple(model.input_shape[1:])
        self.target_shape = tuple(model.output_shape[1:])

    # -- to implement ----------------------------------------------------------------------
    def task_context(self, support_x, support_y, training=False) -> dict:
        raise NotImplementedError

    def query_outputs(self, context, query_x, training=False) -> dict:
        raise NotImplementedError

    def auxiliary(self, context, batch, outputs, training=False):
        """Extra objective and logged scalars; none by default."""
        return 0.0, {}

    def after_train_batch(self, batch):
        """Called after each training update with the meta-batch (e.g. to write a memory);
        nothing by default."""

    def predict_query(self, context, query_x, training=False):
        """Query predictions `(n_tasks, query_size, *target_shape)` given the tasks' contexts."""
        return self.query_outputs(context, query_x, training=training)["prediction"]

    # -- forward ---------------------------------------------------------------------------
    def call(self, inputs, training=False):
        """Query predictions `(n_tasks, query_size, *target_shape)` from `inputs`, a dict with
        keys `support_x`, `support_y`, `query_x`, or a tuple of those (a 4-tuple meta-batch
        also works: its query targets are ignored)."""
        if isinstance(inputs, dict):
            support_x, support_y, query_x = (inputs[key] for key in _INPUT_KEYS)
        elif isinstance(inputs, (tuple, list)) and len(inputs) in (3, 4):
            support_x, support_y, query_x = tuple(inputs)[:3]
        else:
            raise TypeError(
                f"{type(self).__name__} forecasts a task from its support set: use "
                "`adapt(support_x, support_y).predict(x)` or `predict_tasks(batch)`, or give "
                "`predict` a dict with keys support_x, support_y, query_x. Received: "
                f"{type(inputs).__name__} input of shape {getattr(inputs, 'shape', None)}"
            )
        context = self.task_context(support_x, support_y, training=training)
        return self.predict_query(context, query_x, training=training)

    def _forward(self, batch, training):
        """Query predictions, query loss, auxiliary objective and logs of a meta-batch."""
        support_x, support_y, query_x, query_y = batch
        context = self.task_context(support_x, support_y, training=training)
        outputs = self.query_outputs(context, query_x, training=training)
        query_pred = outputs["prediction"]
        loss = mean_loss(resolve_loss(self.loss), *flatten_tasks(query_y, query_pred))
        penalty, logs = self.auxiliary(context, batch, outputs, training=training)
        return query_pred, loss, penalty, logs

    # -- Keras steps -----------------------------------------------------------------------
    def meta_train_step(self, batch):
        # Forward: task contexts from the support sets, predictions on the query sets.
        with tf.GradientTape() as tape:
            query_pred, loss, penalty, logs = self._forward(batch, training=True)
            scaled = (loss + penalty) * replica_scale()
        # Gradients of the query loss (plus any auxiliary term) through the support pass.
        gradients = tape.gradient(scaled, self.trainable_variables)
        # Update.
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        self.after_train_batch(batch)
        # Metrics.
        return self._report(batch, loss, query_pred, logs)

    def meta_test_step(self, batch):
        query_pred, loss, _, logs = self._forward(batch, training=False)
        return self._report(batch, loss, query_pred, logs)

    def predict_step(self, data):
        if isinstance(data, (tuple, list)) and len(data) == 1:
            data = data[0]  # arrays given to `predict` arrive wrapped as (x,)
        return self(data, training=False)

    def _report(self, batch, loss, query_pred, logs):
        """Update the loss, auxiliary trackers and compiled metrics."""
        n_tasks = ops.shape(batch[0])[0]
        update_loss_tracker(self, loss, n_tasks)
        for tracker in self.log_trackers:
            tracker.update_state(logs[tracker.name], sample_weight=n_tasks)
        return self.compute_metrics(None, *flatten_tasks(batch[3], query_pred))

    def episode_shapes(self) -> tuple:
        return tuple(self.sample_shape), tuple(self.target_shape)

    # -- adaptation for users --------------------------------------------------------------
    def adapt(self, support_x, support_y, steps=None) -> AdaptedPredictor:
        """Read one task's support set: one forward pass, no gradient step.

        Args:
            support_x: `(n_support, *input_shape)` inputs of the new task, oldest first.
            support_y: `(n_support, *output_shape)` their targets.
            steps: must be None (there are no gradient steps).

        Returns:
            An `AdaptedPredictor` whose `predict(query_x)` forecasts the task.
        """
        if steps is not None:
            raise ValueError(
                f"steps expected None: {type(self).__name__} adapts in one forward pass. "
                f"Received: steps={steps!r}"
            )
        support_x, support_y = (
            check_finite_array(name, value, self.compute_dtype)[None]
            for name, value in (("support_x", support_x), ("support_y", support_y))
        )
        batch = check_meta_batch_shapes(
            (support_x, support_y, support_x[:, :1], support_y[:, :1]),
            self.sample_shape,
            self.target_shape,
        )
        context = self.task_context(batch[0], batch[1], training=False)
        return AdaptedPredictor(self, context)

    def predict_tasks(self, batch, steps=None, batch_size=None):
        """Query predictions of every task of a meta-batch, each conditioned on its own
        support set.

        Args:
            batch: a `MetaBatch` or 4-tuple with a leading task axis.
            steps: must be None: adaptation is one forward pass, without gradient steps.
            batch_size: tasks per forward pass; default all at once.

        Returns:
            `(n_tasks, query_size, *output_shape)` NumPy predictions.
        """
        if steps is not None:
            raise ValueError(
                f"steps expected None: {type(self).__name__} adapts in one forward pass, "
                f"without gradient steps. Received: steps={steps!r}"
            )
        batch = self._check_numpy(batch)
        inputs = dict(zip(_INPUT_KEYS, batch[:3], strict=True))
        return compiled_call(self, inputs, free_axes=2, batch_size=batch_size)

    def embed_tasks(self, batch):
        """Task embeddings `(n_tasks, dim)` (NumPy) from the support sets of a meta-batch."""
        batch = self._check_numpy(batch)
        context = self.task_context(batch.support_x, batch.support_y, training=False)
        return ops.convert_to_numpy(context["embedding"])

    def _check_numpy(self, batch):
        batch = MetaBatch(*check_meta_batch_arrays(batch))
        check_meta_batch_shapes(tuple(batch), *self.episode_shapes())
        return batch


class AdaptedPredictor:
    """A meta-learner conditioned on one task's support set.

    Attributes:
        learner: the meta-learner.
        context: the task's context (a dict of tensors with a task axis of length one).
    """

    def __init__(self, learner: AmortizedMetaLearner, context: dict):
        self.learner = learner
        self.context = context

    @property
    def embedding(self) -> np.ndarray:
        """The task embedding `(dim,)`."""
        return ops.convert_to_numpy(self.context["embedding"])[0]

    def __call__(self, query_x):
        query_x = ops.convert_to_tensor(query_x, dtype=self.learner.compute_dtype)
        return self.learner.predict_query(self.context, query_x[None], training=False)[0]

    def predict(self, query_x, batch_size=None, verbose=0):
        """Forecasts `(n, *output_shape)` of `(n, *input_shape)` inputs of the task; the
        arguments after `query_x` are accepted for Keras compatibility."""
        query_x = np.asarray(query_x)
        if query_x.shape[1:] != self.learner.sample_shape:
            raise ValueError(
                f"query_x must be (n, *{self.learner.sample_shape}). Received: {query_x.shape}"
            )
        return ops.convert_to_numpy(self(query_x))
