"""Gradient-based meta-learning: the shared inner loop and Keras training steps.

A meta-learner wraps a base model (any zoo model). Its trainable variables are the
meta-parameters. For each task of a meta-batch the inner loop computes *fast weights* from
the support set with `stateless_call`, without touching the variables; the query loss of
the fast weights is differentiated by the outer tape, and the compiled optimizer updates
the meta-parameters. Subclasses choose how fast weights are made (`inner_update`) and what
the outer gradient is (`meta_gradients`).

Data: `fit`, `evaluate` take meta-batches `(support_x, support_y, query_x, query_y)`, each
with a leading task axis, as yielded by `TaskSet.meta_batches` or the synthetic families.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from metazoo.models import tracing
from metazoo.models.rnn import UNROLL_MAX_LOOKBACK
from metazoo.models.tcn import MatmulConv1D
from metazoo.trainers.episodic import EpisodicModel, replica_scale
from metazoo.trainers.losses import mean_loss, resolve_loss, update_loss_tracker
from metazoo.validation import (
    check_built_model,
    check_choice,
    check_count,
    check_finite_array,
    check_meta_batch_arrays,
    check_positive,
)

PARALLEL = ("auto", "vectorized", "loop")
# Methods the adapted predictor runs: learners that share them (and their settings) share it.
_PREDICTOR_METHODS = ("meta_parameters", "inner_update", "forward", "adapt_weights", "map_tasks")
# Layers whose per-task gradients `tf.vectorized_map` cannot vectorize: a recurrence kept as
# a `while` loop over time (an RNN with `unroll=False` that the learner does not unroll:
# over more than `UNROLL_MAX_LOOKBACK` steps, or an unknown window), and convolutions with per-task
# kernels (pfor needs a `Conv2D` filter that is the same for every task), except the zoo's
# `MatmulConv1D`.
_SEQUENTIAL_LAYERS = (keras.layers.RNN, keras.layers.Conv1D)


class GradientMetaLearner(EpisodicModel):
    """Base of MAML, Reptile, Meta-SGD and ANIL (see those classes).

    Args:
        model: the base network (a built Keras model, e.g. from `metazoo.models.build`).
        inner_lr: learning rate of the inner gradient steps.
        inner_steps: inner steps during meta-training.
        eval_inner_steps: inner steps in `evaluate` and `adapt` (default `inner_steps`).
        first_order: drop second-order terms (the inner gradients are constants).
        task_parallel: `"vectorized"` maps the per-task computation over the task axis with
            `tf.vectorized_map`; `"loop"` unrolls it task by task (needed for Keras `Conv1D`
            layers and recurrences over more than `UNROLL_MAX_LOOKBACK` steps, whose
            gradients cannot be vectorized); `"auto"` picks (every zoo base is vectorized).
            Vectorized, the base's recurrences over a fixed window of up to
            `metazoo.models.rnn.UNROLL_MAX_LOOKBACK` steps are unrolled in the learner's
            steps (the same outputs; the base keeps its own `unroll` setting).
        inner_clip_norm: if set, each inner step's gradients are rescaled to at most this
            global norm (as `tf.clip_by_global_norm`; differentiable, so second-order
            meta-gradients still flow). A guard against a task far outside the training
            distribution (a crash, a new asset with several times the volatility) making
            the inner loop diverge; None (default) leaves the gradients as they are.
    """

    def __init__(
        self,
        model,
        inner_lr=0.01,
        inner_steps=1,
        eval_inner_steps=None,
        first_order=False,
        task_parallel="auto",
        inner_clip_norm=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.inner_clip_norm = check_positive("inner_clip_norm", inner_clip_norm, allow_none=True)
        self.model = check_built_model("model", model)
        self.inner_lr = check_positive("inner_lr", inner_lr)
        self.inner_steps = check_count("inner_steps", inner_steps)
        eval_inner_steps = check_count("eval_inner_steps", eval_inner_steps, allow_none=True)
        self.eval_inner_steps = eval_inner_steps or self.inner_steps
        self.first_order = bool(first_order)
        self.task_parallel = check_choice("task_parallel", task_parallel, PARALLEL)
        self.support_tracker = keras.metrics.Mean(name="support_loss")
        self.before_tracker = keras.metrics.Mean(name="query_loss_before")
        self.grad_norm_tracker = keras.metrics.Mean(name="meta_grad_norm")
        self.built = True

    # -- the inner loop --------------------------------------------------------------------
    def meta_parameters(self):
        """Tensors the inner loop starts from: the base model's trainable weights."""
        return [tf.convert_to_tensor(v.value) for v in self.model.trainable_variables]

    def inner_update(self, weights, gradients, step):
        """Fast weights after one inner step: plain gradient descent."""
        return [w - self.inner_lr * g for w, g in zip(weights, gradients, strict=True)]

    def forward(self, weights, x, training=True):
        """The base model's output with `weights` in place of its trainable variables (its
        short recurrences unrolled when the tasks are vectorized; the same outputs)."""
        non_trainable = [tf.convert_to_tensor(v.value) for v in self.model.non_trainable_variables]
        with _unrolled(self._unrolled_layers() if self._vectorize() else []):
            y_pred, _ = self.model.stateless_call(weights, non_trainable, x, training=training)
        return y_pred

    def _unrolled_layers(self) -> list:
        """The base's recurrent layers that read at most `UNROLL_MAX_LOOKBACK` steps."""
        cache = self.__dict__  # not a tracked attribute: the layers are the base's own
        if "_metazoo_short_recurrences" not in cache:
            cache["_metazoo_short_recurrences"] = short_recurrences(self.model)
        return cache["_metazoo_short_recurrences"]

    def adapt_weights(self, weights, support_x, support_y, steps, training=True):
        """Fast weights after `steps` gradient steps on the support set of one task.

        Returns:
            `(fast_weights, support_loss_before)`.
        """
        loss_fn = resolve_loss(self.loss)
        first_loss = None
        for step in range(steps):
            with tf.GradientTape() as tape:
                tape.watch(weights)
                loss = mean_loss(loss_fn, support_y, self.forward(weights, support_x, training))
            gradients = tape.gradient(loss, weights)
            gradients = [
                ops.zeros_like(w) if g is None else g
                for w, g in zip(weights, gradients, strict=True)
            ]
            if self.inner_clip_norm is not None:
                gradients = clip_global_norm(gradients, self.inner_clip_norm)
            if self.first_order:
                gradients = [ops.stop_gradient(g) for g in gradients]
            weights = self.inner_update(weights, gradients, step)
            first_loss = loss if first_loss is None else first_loss
        return weights, first_loss

    def task_losses(self, weights, task, steps, training=True):
        """One task's query loss after adaptation, support loss before, query loss before,
        and the adapted query predictions."""
        support_x, support_y, query_x, query_y = task
        loss_fn = resolve_loss(self.loss)
        fast, support_loss = self.adapt_weights(weights, support_x, support_y, steps, training)
        query_pred = self.forward(fast, query_x, training)
        query_after = mean_loss(loss_fn, query_y, query_pred)
        query_before = mean_loss(loss_fn, query_y, self.forward(weights, query_x, training))
        return query_after, support_loss, ops.stop_gradient(query_before), query_pred

    def map_tasks(self, function, batch):
        """Apply `function(task)` to every task of a meta-batch; stack its outputs (any
        nest of tensors) on a leading task axis."""
        batch = tuple(ops.convert_to_tensor(part) for part in batch)
        if self._vectorize():
            return tf.vectorized_map(function, batch)
        n_tasks = batch[0].shape[0]
        if n_tasks is None:  # unknown at trace time: a symbolic loop over tasks
            example = function(tuple(part[0] for part in batch))
            signature = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), example)
            return tf.map_fn(function, batch, fn_output_signature=signature)
        results = [function(tuple(part[i] for part in batch)) for i in range(n_tasks)]
        return tf.nest.map_structure(lambda *column: ops.stack(column), *results)

    def _vectorize(self) -> bool:
        if self.task_parallel != "auto":
            return self.task_parallel == "vectorized"
        layers = self.model._flatten_layers(include_self=False)
        unrolled = {id(layer) for layer in self._unrolled_layers()}
        return not any(_sequential(layer, unrolled) for layer in layers)

    # -- Keras steps -----------------------------------------------------------------------
    def meta_gradients(self, batch):
        """Meta-loss, per-task results `(support_loss, query_loss_before, query_pred)` and
        gradients for `self.trainable_variables`."""
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            weights = self.meta_parameters()
            after, *results = self.map_tasks(
                lambda task: self.task_losses(weights, task, self.inner_steps), batch
            )
            loss = ops.mean(after)
            scaled = loss * replica_scale()
        return loss, results, tape.gradient(scaled, variables)

    def meta_train_step(self, batch):
        # Forward: inner loops on the support sets, query losses of the fast weights.
        loss, results, gradients = self.meta_gradients(batch)
        # Outer update of the meta-parameters.
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        # Metrics.
        self.grad_norm_tracker.update_state(tf.linalg.global_norm(gradients))
        logs = self._report(batch, loss, *results)
        return logs | {"meta_grad_norm": self.grad_norm_tracker.result()}

    def meta_test_step(self, batch):
        weights = self.meta_parameters()
        after, *results = self.map_tasks(
            lambda task: self.task_losses(weights, task, self.eval_inner_steps, training=False),
            batch,
        )
        return self._report(batch, ops.mean(after), *results)

    def _report(self, batch, loss, support, before, query_pred):
        """Update the trackers and the compiled metrics (on adapted query predictions)."""
        n_tasks = ops.shape(batch[0])[0]
        update_loss_tracker(self, loss, n_tasks)
        self.support_tracker.update_state(ops.mean(support), sample_weight=n_tasks)
        self.before_tracker.update_state(ops.mean(before), sample_weight=n_tasks)
        query_y = batch[3]
        flat = (-1, *query_y.shape[2:])
        logs = self.compute_metrics(None, ops.reshape(query_y, flat), ops.reshape(query_pred, flat))
        return {k: v for k, v in logs.items() if k != self.grad_norm_tracker.name}

    def episode_shapes(self) -> tuple:
        return tuple(self.model.input_shape[1:]), tuple(self.model.output_shape[1:])

    def call(self, x, training=False):
        """The base model with the meta-parameters (no adaptation)."""
        return self.model(x, training=training)

    # -- adaptation for users --------------------------------------------------------------
    def adapt(self, support_x, support_y, steps=None) -> keras.Model:
        """A copy of the base model adapted to one task's support set.

        Args:
            support_x: `(n_support, *input_shape)` inputs of the new task.
            support_y: `(n_support, *output_shape)` their targets.
            steps: inner steps (default `eval_inner_steps`).

        Returns:
            A new Keras model with the adapted weights, ready for `predict`.
        """
        steps = self.eval_inner_steps if steps is None else check_count("steps", steps, 0)
        support_x, support_y = self._support(support_x, support_y)
        fast, _ = self.adapt_weights(self.meta_parameters(), support_x, support_y, steps, False)
        self._check_adapted(fast, support_x, support_y)
        adapted = keras.models.clone_model(self.model)
        for variable, value in zip(adapted.trainable_variables, fast, strict=True):
            variable.assign(value)
        for variable, source in zip(
            adapted.non_trainable_variables, self.model.non_trainable_variables, strict=True
        ):
            variable.assign(source)
        return adapted

    def _support(self, support_x, support_y) -> tuple:
        """A support set as tensors, after checking shapes and values against the model."""
        x = check_finite_array("support_x", support_x, self.compute_dtype)
        y = check_finite_array("support_y", support_y, self.compute_dtype)
        sample, target = self.episode_shapes()
        if x.shape[1:] != sample or y.shape[1:] != target or len(x) != len(y) or not len(x):
            raise ValueError(
                "support_x and support_y expected the same, non-zero number of samples, shaped "
                f"(n, *{sample}) and (n, *{target}). Received: {x.shape} and {y.shape}"
            )
        return ops.convert_to_tensor(x), ops.convert_to_tensor(y)

    def _check_adapted(self, fast, support_x, support_y) -> None:
        """Refuse adapted weights that diverged (rather than return a model forecasting NaN)."""
        fitted = self.forward(fast, support_x, training=False)
        if not all(bool(tf.reduce_all(tf.math.is_finite(w))) for w in [*fast, fitted]):
            raise ValueError(
                "Adaptation diverged: the adapted weights or their support forecasts are not "
                "finite. Scale the data to the range seen in meta-training or set "
                "inner_clip_norm. Received: a support set with max |x| = "
                f"{float(tf.reduce_max(tf.abs(support_x))):.3g}, max |y| = "
                f"{float(tf.reduce_max(tf.abs(support_y))):.3g}"
            )

    def predict_tasks(self, batch, steps=None) -> np.ndarray:
        """Query predictions after adapting to each task's support set.

        Args:
            batch: a `MetaBatch` (or 4-tuple) with a leading task axis.
            steps: inner steps (default `eval_inner_steps`); 0 predicts without adapting.

        Returns:
            `(n_tasks, query_size, *output_shape)` NumPy predictions.
        """
        batch = check_meta_batch_arrays(batch)
        steps = self.eval_inner_steps if steps is None else check_count("steps", steps, 0)
        return ops.convert_to_numpy(self._adapted_predictor(steps, batch)(tuple(batch)))

    def _adapted_predictor(self, steps, batch):
        """The compiled "adapt on each support set, predict each query set" function.

        Its signature leaves the sample axes free (and the task axis too where tasks are
        vectorized), so support and query sets of any length run without retracing. It
        takes the learner's variable values as inputs (see `metazoo.models.tracing`), so
        it reads the meta-parameters (and Meta-SGD's learned rates) as they are when
        called, and one trace serves every learner that adapts alike (`_predictor_key`):
        another fold, another instance or another algorithm with the same inner loop
        (MAML, Reptile and FineTuned share it) does not trace again."""
        n_tasks = None if self._vectorize() else batch[0].shape[0]
        signature = tuple(
            tf.TensorSpec((n_tasks, None, *part.shape[2:]), tf.float32) for part in batch
        )

        def make(template):
            @tf.function(input_signature=[tracing.state_signature(template), signature])
            def adapt_and_predict(values, parts):
                with tracing.stateless(template, values):
                    return template._adapt_and_predict(parts, steps)

            return adapt_and_predict

        key = ("adapted_predictor", steps, repr(signature))
        return tracing.shared_function(self, key, make, architecture=self._predictor_key())

    def _predictor_key(self) -> tuple | None:
        """What the graph of `_adapt_and_predict` depends on besides variable values: the
        methods it runs, the settings they read, the loss, the base architecture and the
        learner's variables (None if the base cannot be described)."""
        architecture = tracing.architecture_key(self.model)
        if architecture is None:
            return None
        methods = tuple(
            getattr(type(self), name)
            for name in (*_PREDICTOR_METHODS, "_adapt_and_predict", "_vectorize")
        )
        settings = (self.inner_lr, self.inner_clip_norm, self.first_order, self._vectorize())
        loss = tracing.describe(self.loss)
        return (methods, settings, loss, architecture, tracing.state_specs(self))

    def _adapt_and_predict(self, batch, steps):
        """Query predictions of each task of `batch` after `steps` inner steps on its support
        set (the body of `_adapted_predictor`)."""
        weights = self.meta_parameters()

        def per_task(task):
            support_x, support_y, query_x, _ = task
            fast, _ = self.adapt_weights(weights, support_x, support_y, steps, False)
            return self.forward(fast, query_x, training=False)

        return self.map_tasks(per_task, batch)

    # -- serialization ---------------------------------------------------------------------
    def get_config(self):
        return {
            **super().get_config(),
            "model": keras.saving.serialize_keras_object(self.model),
            "inner_lr": self.inner_lr,
            "inner_steps": self.inner_steps,
            "eval_inner_steps": self.eval_inner_steps,
            "first_order": self.first_order,
            "task_parallel": self.task_parallel,
            "inner_clip_norm": self.inner_clip_norm,
        }

    @classmethod
    def from_config(cls, config):
        model = keras.saving.deserialize_keras_object(config.pop("model"))
        return cls(model, **config)


def _sequential(layer, unrolled=frozenset()) -> bool:
    """Whether `layer` keeps the tasks of a meta-batch from being vectorized (`unrolled`:
    ids of the recurrent layers that the learner unrolls)."""
    if isinstance(layer, keras.layers.Bidirectional):
        return _sequential(layer.forward_layer, unrolled) or _sequential(
            layer.backward_layer, unrolled
        )
    if isinstance(layer, keras.layers.RNN):
        return not (layer.unroll or id(layer) in unrolled)
    if isinstance(layer, MatmulConv1D):
        return layer.strides != (1,) or layer.data_format != "channels_last"
    return isinstance(layer, _SEQUENTIAL_LAYERS)


def short_recurrences(model) -> list:
    """The recurrent layers of `model` (the two inside each `Bidirectional` included) that
    read a fixed window of at most `UNROLL_MAX_LOOKBACK` steps."""
    found = []
    for layer in model._flatten_layers(include_self=False):
        if not isinstance(layer, keras.layers.RNN | keras.layers.Bidirectional):
            continue
        try:
            steps = layer.input.shape[1]
        except (AttributeError, ValueError, RuntimeError):  # wrapped, or called several times
            continue
        if steps is None or steps > UNROLL_MAX_LOOKBACK:
            continue
        bidirectional = isinstance(layer, keras.layers.Bidirectional)
        found += [layer.forward_layer, layer.backward_layer] if bidirectional else [layer]
    return found


@contextlib.contextmanager
def _unrolled(layers):
    """Within the block, each recurrent layer of `layers` unrolls its recurrence."""
    saved = [layer.unroll for layer in layers]
    for layer in layers:
        layer.unroll = True
    try:
        yield
    finally:
        for layer, value in zip(layers, saved, strict=True):
            layer.unroll = value


def clip_global_norm(tensors, clip_norm):
    """`tensors` scaled by `min(1, clip_norm / global_norm)`, as `tf.clip_by_global_norm`,
    but from plain sums of squares, which `tf.vectorized_map` vectorizes (its `L2Loss` op
    would fall back to a loop over tasks)."""
    norm = ops.sqrt(sum(ops.sum(ops.square(t)) for t in tensors))
    scale = clip_norm / ops.maximum(norm, clip_norm)
    return [t * scale for t in tensors]
