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

from metazoo.data.episodes import check_meta_batch
from metazoo.trainers.common import mean_loss, resolve_loss, update_loss_tracker
from metazoo.trainers.episodic import EpisodicModel, check_episodes, replica_scale

ENCODER_CELLS = ("gru", "lstm")
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
        else:
            support_x, support_y, query_x = tuple(inputs)[:3]
        context = self.task_context(support_x, support_y, training=training)
        return self.predict_query(context, query_x, training=training)

    def _forward(self, batch, training):
        """Query predictions, query loss, auxiliary objective and logs of a meta-batch."""
        support_x, support_y, query_x, query_y = batch
        context = self.task_context(support_x, support_y, training=training)
        outputs = self.query_outputs(context, query_x, training=training)
        query_pred = outputs["prediction"]
        loss = mean_loss(resolve_loss(self.loss), *_flatten_tasks(query_y, query_pred))
        penalty, logs = self.auxiliary(context, batch, outputs, training=training)
        return query_pred, loss, penalty, logs

    # -- Keras steps -----------------------------------------------------------------------
    def train_step(self, data):
        batch = check_episodes(data, self.sample_shape, self.target_shape)
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

    def test_step(self, data):
        batch = check_episodes(data, self.sample_shape, self.target_shape)
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
        return self.compute_metrics(None, *_flatten_tasks(batch[3], query_pred))

    def episode_target_shape(self) -> tuple:
        return tuple(self.target_shape)

    # -- adaptation for users --------------------------------------------------------------
    def adapt(self, support_x, support_y) -> AdaptedPredictor:
        """Read one task's support set: one forward pass, no gradient step.

        Args:
            support_x: `(n_support, *input_shape)` inputs of the new task, oldest first.
            support_y: `(n_support, *output_shape)` their targets.

        Returns:
            An `AdaptedPredictor` whose `predict(query_x)` forecasts the task.
        """
        support_x, support_y = (
            _finite_array(name, value, self.compute_dtype)[None]
            for name, value in (("support_x", support_x), ("support_y", support_y))
        )
        batch = check_episodes(
            (support_x, support_y, support_x[:, :1], support_y[:, :1]),
            self.sample_shape,
            self.target_shape,
        )
        context = self.task_context(batch[0], batch[1], training=False)
        return AdaptedPredictor(self, context)

    def predict_tasks(self, batch, batch_size=None):
        """Query predictions of every task of a meta-batch, each conditioned on its own
        support set (the counterpart of `metazoo.trainers.reference.predict_tasks`).

        Args:
            batch: a `MetaBatch` or 4-tuple with a leading task axis.
            batch_size: tasks per forward pass; default all at once.

        Returns:
            `(n_tasks, query_size, *output_shape)` NumPy predictions.
        """
        batch = self._check_numpy(batch)
        inputs = dict(zip(_INPUT_KEYS, batch[:3], strict=True))
        return self.predict(inputs, batch_size=batch_size or batch.n_tasks, verbose=0)

    def embed_tasks(self, batch):
        """Task embeddings `(n_tasks, dim)` (NumPy) from the support sets of a meta-batch."""
        batch = self._check_numpy(batch)
        context = self.task_context(batch.support_x, batch.support_y, training=False)
        return ops.convert_to_numpy(context["embedding"])

    def _check_numpy(self, batch):
        batch = check_meta_batch(batch)
        check_episodes(tuple(batch), self.sample_shape, self.target_shape)
        return batch


class AmortizedEnsemble(AmortizedMetaLearner):
    """Base of the learners that weight a list of member models per task
    (`ExpertPrototypes`, `MetaLearnedAveraging`): their context holds `"weights"`
    `(n_tasks, n_members)` and their config the serialized members."""

    def member_outputs(self, context, query_x, training=False):
        """Each member's predictions `(n_members, n_tasks, query_size, *target_shape)`."""
        raise NotImplementedError

    def query_outputs(self, context, query_x, training=False):
        """`{"prediction": ..., "members": (M, n_tasks, query_size, *target_shape)}`: the
        members' predictions combined with each task's weights."""
        members = self.member_outputs(context, query_x, training)
        return {"prediction": combine_members(context["weights"], members), "members": members}

    def member_logs(self, context, batch, outputs):
        """`(losses, logs)`: each member's per-task query losses `(M, n_tasks)`, and the logs
        `member_<i>_loss` and `weight_entropy`."""
        losses = member_task_losses(resolve_loss(self.loss), outputs["members"], batch[3])
        logs = {f"member_{i}_loss": ops.mean(losses[i]) for i in range(len(self.members))}
        return losses, logs | {"weight_entropy": softmax_entropy(context["weights"])}

    def member_weights(self, batch):
        """Each task's member weights `(n_tasks, n_members)` (NumPy) from its support set."""
        batch = self._check_numpy(batch)
        context = self.task_context(batch.support_x, batch.support_y, training=False)
        return ops.convert_to_numpy(context["weights"])

    def get_config(self):
        return {
            **super().get_config(),
            "members": [keras.saving.serialize_keras_object(m) for m in self.members],
        }

    @classmethod
    def from_config(cls, config):
        members = [keras.saving.deserialize_keras_object(m) for m in config.pop("members")]
        return cls(members, **config)


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


def _finite_array(name, value, dtype) -> np.ndarray:
    """`value` as a finite float array, or a ValueError that says what was wrong."""
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric. Received: {error}") from None
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise ValueError(f"{name} must be finite. Received: {bad} NaN or infinite value(s)")
    return array


def _flatten_tasks(*tensors):
    """Merge the task and sample axes of `(n_tasks, n, *shape)` tensors."""
    return tuple(ops.reshape(t, (-1, *t.shape[2:])) for t in tensors)


def merge_tasks(x):
    """`(n_tasks, n, *shape)` -> `(n_tasks * n, *shape)`, to run a base model over every
    sample of every task at once."""
    return ops.reshape(x, (-1, *x.shape[2:]))


def split_tasks(x, n_tasks):
    """`(n_tasks * n, *shape)` -> `(n_tasks, n, *shape)`."""
    return ops.reshape(x, (n_tasks, -1, *x.shape[1:]))


def body_and_head(model: keras.Model):
    """The body (inputs to the head's features) and the head of a zoo model.

    Raises:
        ValueError: if the model's last layer is not a `Dense` layer named `head`.
    """
    head = model.layers[-1] if getattr(model, "layers", None) else None
    if not isinstance(head, keras.layers.Dense) or head.name != "head":
        raise ValueError(
            "The base model must be a zoo model whose last layer is a Dense layer named 'head'. "
            f"Received: last layer {getattr(head, 'name', None)!r} of type {type(head).__name__}"
        )
    body = keras.Model(model.inputs, head.input, name=f"{model.name}_body")
    return body, head


def check_members(members, name="members"):
    """At least two built Keras models sharing input and output shapes."""
    members = list(members)
    if len(members) < 2 or not all(isinstance(m, keras.Model) and m.built for m in members):
        raise ValueError(
            f"{name} must be at least 2 built Keras models. "
            f"Received: {[type(m).__name__ for m in members]}"
        )
    shapes = {(tuple(m.input_shape), tuple(m.output_shape)) for m in members}
    if len(shapes) != 1:
        raise ValueError(f"{name} must share input and output shapes. Received: {sorted(shapes)}")
    return members


@keras.saving.register_keras_serializable(package="metazoo")
class SupportSetEncoder(keras.layers.Layer):
    """A task embedding read from a support set in time order.

    Each support sample is summarized by a dense layer on its flattened window concatenated
    with its target, `relu(W [flatten(x_k), y_k] + b)`, so that the summary can express how
    targets relate to inputs; a GRU or LSTM reads the summaries oldest first and its last
    state is the task embedding (a recurrent counterpart of the mean-pooled encoder of
    Conditional Neural Processes).

    Call arguments:
        support_x: `(n_tasks, n_support, *sample_shape)`.
        support_y: `(n_tasks, n_support, *target_shape)`.

    Returns:
        `(n_tasks, units)` embeddings.

    Args:
        units: size of the embedding (the recurrent state).
        sample_units: size of each sample's summary.
        cell: `"gru"` or `"lstm"`.
    """

    def __init__(self, units=32, sample_units=32, cell="gru", **kwargs):
        super().__init__(**kwargs)
        for name, value in (("units", units), ("sample_units", sample_units)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1. Received: {name}={value}")
        if cell not in ENCODER_CELLS:
            raise ValueError(f"cell must be one of {ENCODER_CELLS}. Received: cell={cell!r}")
        self.units, self.sample_units, self.cell = int(units), int(sample_units), cell
        self.summarize = keras.layers.Dense(self.sample_units, activation="relu", name="summary")
        recurrent = keras.layers.GRU if cell == "gru" else keras.layers.LSTM
        self.recurrent = recurrent(self.units, name=cell)

    def build(self, support_x_shape, support_y_shape):
        width = int(np.prod(support_x_shape[2:])) + int(np.prod(support_y_shape[2:]))
        self.summarize.build((None, None, width))
        self.recurrent.build((None, None, self.sample_units))
        self.built = True

    def call(self, support_x, support_y, training=False):
        n_tasks, n_support = ops.shape(support_x)[0], ops.shape(support_x)[1]
        pairs = ops.concatenate(
            [
                ops.reshape(support_x, (n_tasks, n_support, -1)),
                ops.reshape(support_y, (n_tasks, n_support, -1)),
            ],
            axis=-1,
        )
        return self.recurrent(self.summarize(pairs), training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "sample_units": self.sample_units,
            "cell": self.cell,
        }


def per_sample_loss(loss_fn, y_true, y_pred):
    """Unreduced values of a compiled loss (a function or a `keras.losses.Loss`)."""
    if isinstance(loss_fn, keras.losses.Loss):
        return loss_fn.call(y_true, y_pred)
    return loss_fn(y_true, y_pred)


def member_task_losses(loss_fn, outputs, y_true):
    """Each member's mean loss on each task, `(M, n_tasks)`, from member predictions
    `(M, n_tasks, n, *target_shape)` and targets `(n_tasks, n, *target_shape)`."""
    m, n_tasks = ops.shape(outputs)[0], ops.shape(outputs)[1]
    y_true = ops.broadcast_to(y_true[None], ops.shape(outputs))
    flat = (-1, *outputs.shape[3:])
    values = per_sample_loss(loss_fn, ops.reshape(y_true, flat), ops.reshape(outputs, flat))
    return ops.mean(ops.reshape(values, (m, n_tasks, -1)), axis=-1)


def combine_members(weights, outputs):
    """Per-task weighted sums `(n_tasks, n, *target_shape)` of member predictions
    `(M, n_tasks, n, *target_shape)` with weights `(n_tasks, M)`."""
    shape = ops.shape(outputs)
    flat = ops.reshape(outputs, (shape[0], shape[1], -1))
    return ops.reshape(ops.einsum("tm,mtk->tk", weights, flat), shape[1:])


def softmax_entropy(weights):
    """Mean entropy (nats) of rows of probabilities `(n, k)`: 0 for one-hot, log k uniform."""
    return ops.mean(-ops.sum(weights * ops.log(ops.maximum(weights, 1e-12)), axis=-1))
