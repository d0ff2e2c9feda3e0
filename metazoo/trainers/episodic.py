"""What every trainer fitted on meta-batches shares: Keras `compile`, `fit` and saving of
the compiled state, the meta-batch checks (shapes, and finite values at the boundary), and
loss scaling across replicas.

Meta-batches are `(support_x, support_y, query_x, query_y)` with a leading task axis, as
yielded by `TaskSet.meta_batches` or the synthetic task families.
"""

from __future__ import annotations

import inspect
import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from metazoo.trainers.chunks import chunk_function, chunked, is_chunked
from metazoo.validation import (
    META_BATCH_PARTS,
    check_meta_batch_shapes,
    check_nonfinite_policy,
    nonfinite_parts,
    unwrap_meta_batch,
)

NONFINITE_MARKER = "metazoo: the meta-batch holds NaN or infinite values"
# Meta-steps per compiled call when `compile` is given no `steps_per_execution`: a small
# meta-step costs about as much in per-call Python and dispatch as in its graph.
DEFAULT_STEPS_PER_EXECUTION = 50


class EpisodicModel(keras.Model):
    """Base of every trainer fitted on meta-batches (the gradient and amortized
    meta-learners and the references `Pooled`, `FineTuned`, `Scratch`).

    Subclasses say what one sample and one target look like (`episode_shapes`) and
    implement `meta_train_step(batch)` and `meta_test_step(batch)` on a checked meta-batch;
    `train_step` and `test_step` check it first (static shapes, then finite values).

    A meta-batch with a NaN or an infinity is refused before any weight is touched
    (`compile(nonfinite="raise")`, the default: `fit`, `train_on_batch`, `evaluate` and
    `test_on_batch` raise a `ValueError`); with `compile(nonfinite="skip")` it is skipped,
    leaving weights and optimizer state as they are, and counted in the `skipped_batches`
    log (per epoch) and in `n_skipped` (since compile).
    """

    jit_refused = True  # XLA's meta-steps are far slower on a CPU (see `compile`)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.nonfinite = "raise"
        self.skipped_tracker = keras.metrics.Sum(name="skipped_batches")
        self.n_skipped = 0

    def episode_shapes(self) -> tuple:
        """`(sample_shape, target_shape)` of one sample, e.g. `((lookback, n_features), (h,))`."""
        raise NotImplementedError

    def meta_train_step(self, batch):
        raise NotImplementedError

    def meta_test_step(self, batch):
        raise NotImplementedError

    # -- compile ---------------------------------------------------------------------------
    def compile(
        self,
        optimizer="adam",
        loss="mse",
        metrics=None,
        nonfinite="raise",
        steps_per_execution=None,
        **kwargs,
    ):
        """Keras `compile`; `loss` is the query loss (and drives any inner loop) and
        `metrics` are computed on the adapted query predictions.

        Args:
            optimizer, loss, metrics: as `keras.Model.compile`.
            nonfinite: `"raise"` (default) refuses a meta-batch holding NaN or infinity;
                `"skip"` skips it without touching weights or optimizer state, and counts it.
            steps_per_execution: meta-steps per compiled call of `fit`, `evaluate` and
                `predict` (callbacks' batch hooks run once per call). None (default) runs
                up to `DEFAULT_STEPS_PER_EXECUTION` (50) per call, fewer when needed so
                that a `steps_per_epoch`, `validation_steps` or `steps` is a multiple of it
                (Keras would otherwise run whole calls past it): the same steps and the
                same weights as one step per call, without its per-call cost. Under a
                distribution strategy the default is 1.
                `train_on_batch` always runs one step.
            **kwargs: other `keras.Model.compile` arguments. `jit_compile=True` is refused:
                with XLA the meta-learners' nested tapes and task maps compile into steps
                that take seconds each on a CPU (measured for MAML on the sinusoid MLP).
        """
        self.nonfinite = check_nonfinite_policy(nonfinite)
        jit = kwargs.pop("jit_compile", "auto")
        if jit is True and self.jit_refused:
            raise ValueError(
                f"jit_compile expected False or 'auto' for {type(self).__name__}: with XLA "
                "the meta-steps' nested gradient tapes and task maps compile, but each "
                "step then takes seconds on a CPU (second-order MAML on the sinusoid MLP, "
                "TensorFlow 2.21: 11-16 s per train_on_batch against about 5 ms without "
                "XLA). Without it, fit already runs many steps per compiled call. "
                "Received: jit_compile=True"
            )
        jit = False if self.jit_refused else jit  # "auto" would pick XLA on an accelerator
        self._auto_steps = steps_per_execution is None
        super().compile(
            optimizer=optimizer,
            loss=loss,
            metrics=metrics,
            jit_compile=jit,
            steps_per_execution=steps_per_execution or self._default_steps_per_execution(),
            **kwargs,
        )
        # Build the compiled loss and metrics now, on one dummy target: Keras would otherwise
        # build them by tracing the model with an (x, y) batch, which a meta-batch is not.
        example = ops.zeros((1, *self.episode_shapes()[1]), dtype=self.compute_dtype)
        self.compute_loss(y=example, y_pred=example)
        self.compute_metrics(None, example, example)
        for metric in self.metrics:
            metric.reset_state()
        if self.optimizer is not None and self.trainable_variables:
            # Built now, so that a skipped first batch cannot leave it half made.
            self.optimizer.build(self.trainable_variables)
        self.n_skipped = 0
        self.__dict__["_metazoo_reset"] = None  # metrics may have changed
        self.__dict__["_metazoo_functions"] = {}  # Keras' step functions by steps per call
        self.__dict__["_metazoo_batch_functions"] = {}  # train_on_batch's and test_on_batch's

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None and getattr(self, "_auto_steps", False):
            config.pop("steps_per_execution", None)  # the default, chosen per call again
        if config is not None and self.nonfinite != "raise":
            config["nonfinite"] = self.nonfinite
        return config

    # -- steps -----------------------------------------------------------------------------
    def check_batch(self, data) -> tuple:
        """The meta-batch as a 4-tuple, after checking its structure and static shapes
        (a wrong shape would otherwise fail deep in TensorFlow, or broadcast)."""
        return check_meta_batch_shapes(data, *self.episode_shapes())

    def train_step(self, data):
        return self._guarded(self.meta_train_step, self.check_batch(data))

    def test_step(self, data):
        return self._guarded(self.meta_test_step, self.check_batch(data))

    def _guarded(self, step, batch):
        """`step(batch)` if every value of the batch is finite; otherwise refuse or skip."""
        finite = all_finite(batch)
        if self.nonfinite == "skip":

            def skip():
                self.skipped_tracker.update_state(1.0)
                return tf.constant(False)

            tf.cond(finite, lambda: _then_true(step, batch), skip)
            return self._metric_logs()
        check = tf.debugging.Assert(finite, [NONFINITE_MARKER])
        with tf.control_dependencies([check]):  # every op of the step waits for the check
            return step(tuple(tf.identity(part) for part in batch))

    def _metric_logs(self) -> dict:
        """Every metric's current result, compiled metrics flattened (as Keras logs them)."""
        logs = {}
        for metric in self.metrics:
            result = metric.result()
            logs.update(result if isinstance(result, dict) else {metric.name: result})
        return logs

    # -- entry points that report a refused batch clearly ------------------------------------
    def fit(self, x=None, *args, shuffle=False, **kwargs):
        """Keras `fit` on meta-batches; `shuffle` defaults to False because meta-batch
        datasets are already sampled at random."""
        call = inspect.signature(keras.Model.fit).bind(self, x, *args, shuffle=shuffle, **kwargs)
        self._choose_steps_per_execution(
            [
                call.arguments[n]
                for n in ("steps_per_epoch", "validation_steps")
                if n in call.arguments
            ]
        )
        if self._reads_chunks(call.arguments.get("class_weight")):
            for name in ("x", "validation_data"):
                if name in call.arguments:
                    call.arguments[name] = chunked(call.arguments[name], self.steps_per_execution)
        with _clear_nonfinite_error():
            history = super().fit(*call.args[1:], **call.kwargs)
        self.n_skipped += int(sum(history.history.get("skipped_batches", [])))
        return history

    def evaluate(self, x=None, *args, **kwargs):
        if "_use_cached_eval_dataset" not in kwargs:  # not fit's validation: fit chose it
            self._choose_steps_per_execution(
                _keyword_or_positional(keras.Model.evaluate, args, kwargs, "steps")
            )
            if self._reads_chunks():
                x = chunked(x, self.steps_per_execution)
        with _clear_nonfinite_error():
            return super().evaluate(x, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self._choose_steps_per_execution(
            _keyword_or_positional(keras.Model.predict, args, kwargs, "steps")
        )
        return super().predict(x, *args, **kwargs)

    def _reads_chunks(self, class_weight=None) -> bool:
        """Whether `fit` and `evaluate` may read a dataset's meta-batches a call at a time
        (see `metazoo.trainers.chunks`): on the graph path, with no distribution."""
        return (
            not self.run_eagerly
            and class_weight is None
            and self._default_steps_per_execution() > 1
            and keras.distribution.distribution() is None
        )

    def make_train_function(self, force=False):
        return self._make_chunked(super().make_train_function, "train_function", force)

    def make_test_function(self, force=False):
        return self._make_chunked(super().make_test_function, "test_function", force)

    def _make_chunked(self, make_keras_function, name, force):
        """Keras' step function `name`, made by `make_keras_function`, behind a dispatch
        that runs chunked iterators through `chunk_function` of the same step."""
        if getattr(self, name) is not None and not force:
            return getattr(self, name)
        make_keras_function(force)
        step = self.train_step if name == "train_function" else self.test_step
        function = _chunk_or_keras(chunk_function(step, self.jit_compile), getattr(self, name))
        setattr(self, name, function)
        return function

    def _choose_steps_per_execution(self, counts) -> None:
        """With the default `steps_per_execution`, use the largest number of steps per call
        up to `DEFAULT_STEPS_PER_EXECUTION` that divides every given step count; keep Keras'
        compiled functions of each choice, so that alternating calls do not retrace."""
        if not getattr(self, "_auto_steps", False) or self._default_steps_per_execution() == 1:
            return
        common = math.gcd(*[int(n) for n in counts if n is not None])
        wanted = DEFAULT_STEPS_PER_EXECUTION
        if common:
            wanted = max(d for d in range(1, min(common, wanted) + 1) if common % d == 0)
        if wanted == self.steps_per_execution:
            return
        functions = self.__dict__.setdefault("_metazoo_functions", {})
        names = ("train_function", "test_function", "predict_function")
        functions[self.steps_per_execution] = tuple(getattr(self, name) for name in names)
        for name, function in zip(names, functions.get(wanted, (None,) * 3), strict=True):
            setattr(self, name, function)
        self.steps_per_execution = wanted

    def _default_steps_per_execution(self) -> int:
        """`DEFAULT_STEPS_PER_EXECUTION`, or 1 under a distribution strategy (Keras 3.15's
        multi-step loop fails there: "You must feed a value for placeholder tensor")."""
        distributed = self._distribute_strategy is not None or tf.distribute.has_strategy()
        return 1 if distributed else DEFAULT_STEPS_PER_EXECUTION

    def train_on_batch(
        self, x=None, y=None, sample_weight=None, class_weight=None, return_dict=False
    ):
        """Keras `train_on_batch` on one meta-batch `x` (`y`, `sample_weight` and
        `class_weight` are refused by the meta-batch check, as they are unused)."""
        with _clear_nonfinite_error(x if self.nonfinite == "raise" else None):
            if y is None and sample_weight is None and class_weight is None:
                self._assert_compile_called("train_on_batch")
                logs = self._on_batch(self.make_train_function, "train_function", x)
            else:
                logs = super().train_on_batch(x, y, sample_weight, class_weight, True)
        if self.nonfinite == "skip":  # metrics restart per call
            self.n_skipped += int(logs.get("skipped_batches", 0))
        return logs if return_dict else self._flatten_metrics_in_order(logs)

    def test_on_batch(self, x=None, y=None, sample_weight=None, return_dict=False):
        with _clear_nonfinite_error(x if self.nonfinite == "raise" else None):
            if y is None and sample_weight is None:
                self._assert_compile_called("test_on_batch")
                logs = self._on_batch(self.make_test_function, "test_function", x)
            else:
                logs = super().test_on_batch(x, y, sample_weight, True)
        return logs if return_dict else self._flatten_metrics_in_order(logs)

    def _on_batch(self, make_function, name, batch) -> dict:
        """What Keras' `train_on_batch` and `test_on_batch` do (reset the metrics, run the
        step once, logs as Python floats), in one graph call: the metrics are reset inside
        the compiled step, which is called as a concrete function of the batch's shapes
        (Keras' per-call path costs several times a small meta-step)."""
        self._maybe_symbolic_build(data_batch=(batch, None, None))
        functions = self.__dict__.setdefault("_metazoo_batch_functions", {})
        distributed = self._distribute_strategy is not None or tf.distribute.has_strategy()
        parts = None if distributed or self.run_eagerly else _batch_tensors(batch)
        if parts is None:  # Keras' function; not a flat meta-batch: the step reports it
            make_function()
            self._reset_metrics_compiled()
            return _python_logs(getattr(self, name)(iter([(batch, None, None)])))
        if name not in functions:
            functions[name] = (self._batch_step(name), {})
        generic, concrete = functions[name]
        key = tuple((tuple(part.shape), part.dtype) for part in parts)
        if key not in concrete:
            concrete[key] = _flat_call(generic.get_concrete_function(parts))
        return _python_logs(concrete[key](parts))

    def _batch_step(self, name):
        """The compiled `train_step` or `test_step` of one meta-batch, with the metrics
        reset first (shapes relaxed after repeated retracing, as Keras' own step)."""
        step = self.train_step if name == "train_function" else self.test_step
        metrics = list(self.metrics)

        @tf.autograph.experimental.do_not_convert
        def one_batch(parts):
            for metric in metrics:
                metric.reset_state()
            return step(parts)

        return tf.function(one_batch, reduce_retracing=True, jit_compile=self.jit_compile)

    def quantize(self, mode=None, config=None, filters=None, **kwargs):
        super().quantize(mode, config=config, filters=filters, **kwargs)
        self.__dict__["_metazoo_batch_functions"] = {}  # their steps hold the old weights

    def _reset_metrics_compiled(self) -> None:
        """`reset_metrics()` in one graph call (made once per compile; eager under a
        distribution strategy or `run_eagerly`)."""
        if self._distribute_strategy is not None or self.run_eagerly:
            self.reset_metrics()
            return
        if self.__dict__.get("_metazoo_reset") is None:
            metrics = list(self.metrics)

            @tf.function(autograph=False)
            def reset():
                for metric in metrics:
                    metric.reset_state()

            self.__dict__["_metazoo_reset"] = reset
        self.__dict__["_metazoo_reset"]()


def _chunk_or_keras(chunk_step, keras_step):
    """A step function that runs `chunk_step` on a chunked dataset's iterator and Keras'
    `keras_step` on any other."""

    def function(iterator):
        return chunk_step(iterator) if is_chunked(iterator) else keras_step(iterator)

    function.chunk_step, function.keras_step = chunk_step, keras_step
    return function


def _keyword_or_positional(method, args, kwargs, name) -> list:
    """`[value]` of argument `name` of a Keras `method(self, x, *args, **kwargs)` call."""
    position = list(inspect.signature(method).parameters).index(name) - 2  # self, x
    if name in kwargs:
        return [kwargs[name]]
    return [args[position]] if 0 <= position < len(args) else []


def _is_flat_batch(batch) -> bool:
    """Whether `batch` is a flat meta-batch: a tuple or list of its 4 parts."""
    return isinstance(batch, tuple | list) and len(batch) == len(META_BATCH_PARTS)


def _batch_tensors(batch) -> tuple | None:
    """A flat meta-batch as a tuple of tensors; None for anything else."""
    if not _is_flat_batch(batch):
        return None
    try:
        return tuple(
            part if isinstance(part, tf.Tensor) else tf.convert_to_tensor(part) for part in batch
        )
    except (TypeError, ValueError):
        return None


def _flat_call(concrete):
    """`concrete(parts)` for a tuple of tensors of its input signature, without the
    structured-argument binding that costs a fraction of a small meta-step per call
    (TensorFlow's flat call, where this version has it)."""
    flat = getattr(concrete, "_call_flat", None)
    if flat is None or len(concrete.inputs) - len(concrete.captured_inputs) != 4:
        return concrete
    return lambda parts: flat(list(parts), concrete.captured_inputs)


def _python_logs(logs) -> dict:
    """Logs as Python floats, nested dicts flattened and keys sorted (as Keras returns
    them from `train_on_batch`)."""
    flat = {}
    for key, value in sorted((logs or {}).items()):
        if isinstance(value, dict):
            flat.update(_python_logs(value))
        else:
            flat[key] = float(value)
    return flat


def _then_true(step, batch):
    step(batch)
    return tf.constant(True)


class _clear_nonfinite_error:
    """Turns the graph assertion of a refused meta-batch into a clear `ValueError`, which
    names the parts holding NaN or infinity when the meta-batch is given as arrays (the
    check runs only then, after the graph refused the batch, so a good batch pays
    nothing for it)."""

    def __init__(self, batch=None):
        self.batch = batch

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if not (
            isinstance(error, tf.errors.InvalidArgumentError) and NONFINITE_MARKER in str(error)
        ):
            return False
        bad = _nonfinite_names(self.batch)
        received = f"NaN or infinity in {bad}" if bad else "a non-finite meta-batch"
        raise ValueError(
            f"{', '.join(bad or META_BATCH_PARTS)} expected finite values: a meta-batch "
            "holds NaN or infinity, which would turn every meta-parameter into NaN; it was "
            "refused before any weight changed. Clean the data, or compile(..., "
            f"nonfinite='skip') to skip such batches. Received: {received}"
        ) from None


def _nonfinite_names(batch) -> list:
    """The parts of an in-memory flat meta-batch holding NaN or infinity; [] for
    anything else."""
    if not _is_flat_batch(batch):
        return []
    try:
        return nonfinite_parts(tuple(np.asarray(part) for part in batch))
    except (TypeError, ValueError):
        return []


def all_finite(batch):
    """A scalar boolean tensor: whether every value of every part is finite."""
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(part)) for part in batch])


def replica_scale():
    """`1 / replicas`: optimizers sum gradients across replicas, and each replica's loss is
    the mean over its own share of the meta-batch's tasks."""
    return 1.0 / tf.distribute.get_strategy().num_replicas_in_sync


def check_batch(data) -> tuple:
    """A meta-batch as a 4-tuple, unwrapping what `train_on_batch` and friends pass."""
    return unwrap_meta_batch(data)


def flatten_tasks(*tensors):
    """Merge the task and sample axes of `(n_tasks, n, *shape)` tensors."""
    return tuple(ops.reshape(t, (-1, *t.shape[2:])) for t in tensors)


def merge_tasks(x):
    """`(n_tasks, n, *shape)` -> `(n_tasks * n, *shape)`, to run a base model over every
    sample of every task at once."""
    return ops.reshape(x, (-1, *x.shape[2:]))


def split_tasks(x, n_tasks):
    """`(n_tasks * n, *shape)` -> `(n_tasks, n, *shape)`."""
    return ops.reshape(x, (n_tasks, -1, *x.shape[1:]))
