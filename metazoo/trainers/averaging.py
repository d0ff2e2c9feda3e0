"""Model averaging: an ensemble of zoo members that predicts their weighted combination."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from metazoo.trainers.losses import mean_loss, resolve_loss, update_loss_tracker

WEIGHTINGS = ("uniform", "inverse_error", "stacking", "learned")
STACKERS = ("nnls", "ridge")


@keras.saving.register_keras_serializable(package="metazoo")
class ModelAveraging(keras.Model):
    """An ensemble whose prediction is `sum_i w_i * member_i(x) + intercept`.

    Members train through Keras `fit` in one loop, each on its own loss, so they stay as
    diverse as if trained alone. The weighting decides `w`:

    * `"uniform"`: `w_i = 1 / M`.
    * `"inverse_error"`: `w_i` proportional to `1 / loss_i ** power`, each member's loss on
      `validation_data` evaluated at the end of `fit` (so validation data steer the
      weights: judge the ensemble on a later test period). `set_weights_from_errors`
      recomputes them on any held-out data.
    * `"stacking"`: before training on all the data, members are trained on the training
      folds of `cv` (time-ordered, e.g. `metazoo.data.WalkForward`) and predict its test
      folds; weights are fitted to those out-of-fold forecasts by non-negative least squares
      (`stacker="nnls"`) or ridge regression with an intercept (`stacker="ridge"`).
      Needs array inputs. Fold models are fresh copies of the members (new initial
      weights), trained with `fit`'s epochs and batch size but without its callbacks or
      validation data. The splitter itself is not saved with the model. scikit-learn's `StackingRegressor` refuses walk-forward folds,
      which do not partition the samples; this does not.
    * `"learned"`: `w = softmax(logits)` with logits trained by gradient descent on the
      ensemble loss while the members train. With `joint=True` the ensemble loss also
      trains the members (negative correlation learning); otherwise the members see only
      their own loss. To learn weights after the members, train once, set
      `member.trainable = False` for every member, recompile and fit again.

    Logs: `loss` is the ensemble's loss; `member_<i>_loss` each member's, so TensorBoard
    shows both.

    Args:
        members: Keras models with the same input and output shapes (e.g. zoo models; the
            same architecture with different seeds gives seed averaging).
        weighting: one of `"uniform"`, `"inverse_error"`, `"stacking"`, `"learned"`.
        joint: with `"learned"`, let the ensemble loss train the members too.
        power: exponent of the error in `"inverse_error"`.
        cv: time-ordered splitter for `"stacking"`; default `WalkForward(n_splits=3)`.
        stacker: `"nnls"` or `"ridge"` for `"stacking"`.
        ridge_alpha: ridge penalty for `stacker="ridge"`.

    References:
        Wolpert, "Stacked Generalization", Neural Networks 1992; Breiman, "Stacked
        Regressions", Machine Learning 1996; Liu and Yao, "Ensemble learning via negative
        correlation", Neural Networks 1999.
    """

    def __init__(
        self,
        members,
        weighting="uniform",
        joint=False,
        power=1.0,
        cv=None,
        stacker="nnls",
        ridge_alpha=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.members = _check_members(members)
        if weighting not in WEIGHTINGS:
            raise ValueError(
                f"weighting must be one of {WEIGHTINGS}. Received: weighting={weighting!r}"
            )
        if stacker not in STACKERS:
            raise ValueError(f"stacker must be one of {STACKERS}. Received: stacker={stacker!r}")
        self.weighting, self.joint, self.power = weighting, bool(joint), float(power)
        self.cv, self.stacker, self.ridge_alpha = cv, stacker, float(ridge_alpha)
        m, out = len(self.members), self.members[0].output_shape[-1]
        self.member_weights = self.add_weight(
            shape=(m,),
            initializer=keras.initializers.Constant(1.0 / m),
            trainable=False,
            name="member_weights",
        )
        self.weight_logits = self.add_weight(
            shape=(m,), initializer="zeros", trainable=weighting == "learned", name="weight_logits"
        )
        self.intercept = self.add_weight(
            shape=(out,), initializer="zeros", trainable=False, name="intercept"
        )
        self.member_trackers = [keras.metrics.Mean(name=f"member_{i}_loss") for i in range(m)]
        self.built = True  # members are built models and every variable exists

    # -- forward ---------------------------------------------------------------------------
    def weights_vector(self):
        """The current combination weights `(M,)`."""
        if self.weighting == "learned":
            return ops.softmax(self.weight_logits)
        return tf.convert_to_tensor(self.member_weights.value)

    def member_predictions(self, x, training=False):
        """Stacked member outputs `(M, batch, output_dim)`."""
        return ops.stack([member(x, training=training) for member in self.members])

    def combine(self, predictions):
        """Weighted sum over the member axis of `(M, batch, output_dim)` plus the intercept."""
        return ops.tensordot(self.weights_vector(), predictions, axes=1) + self.intercept

    def call(self, x, training=False):
        return self.combine(self.member_predictions(x, training=training))

    # -- training --------------------------------------------------------------------------
    def _ensemble_losses(self, x, y, sample_weight, training):
        """Ensemble loss, member losses, and the objective that training minimizes."""
        loss_fn = resolve_loss(self.loss)
        _check_targets(y, self.members)
        outputs = [member(x, training=training) for member in self.members]
        members = [mean_loss(loss_fn, y, p, sample_weight) for p in outputs]
        predictions = ops.stack(outputs)
        if not self.joint:  # the ensemble loss reaches only the combination weights
            predictions = ops.stop_gradient(predictions)
        y_pred = self.combine(predictions)
        loss = self.compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )
        return y_pred, loss, members, loss + ops.sum(ops.stack(members))

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        # Forward pass: every member, and the ensemble on top.
        with tf.GradientTape() as tape:
            y_pred, loss, member_losses, objective = self._ensemble_losses(
                x, y, sample_weight, True
            )
        # Gradients of the members' own losses (plus the ensemble's where it reaches).
        gradients = tape.gradient(objective, self.trainable_weights)
        # Update.
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights, strict=True))
        return self._report(x, y, y_pred, sample_weight, loss, member_losses)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred, loss, member_losses, _ = self._ensemble_losses(x, y, sample_weight, False)
        return self._report(x, y, y_pred, sample_weight, loss, member_losses)

    def _report(self, x, y, y_pred, sample_weight, loss, member_losses):
        batch_size = ops.shape(y_pred)[0]
        for tracker, value in zip(self.member_trackers, member_losses, strict=True):
            tracker.update_state(value, sample_weight=batch_size)
        update_loss_tracker(self, loss, batch_size)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def fit(self, x=None, y=None, *, groups=None, **kwargs):
        """Keras `fit`, plus the weighting's own step (see the class docstring).

        Args:
            groups: sample times for a panel, passed to the stacking splitter (used only
                with `weighting="stacking"`; the other weightings need no folds).
            **kwargs: as `keras.Model.fit`.
        """
        if self.weighting == "inverse_error" and kwargs.get("validation_data") is None:
            raise ValueError(
                "weighting='inverse_error' needs validation_data in fit (the members' errors on "
                "it set the weights). Received: validation_data=None"
            )
        if y is not None and hasattr(y, "shape"):
            _check_targets(y, self.members)
            if hasattr(x, "shape") and len(x) != len(y):
                raise ValueError(
                    f"x and y need the same number of samples. Received: {len(x)} and {len(y)}"
                )
        if self.weighting == "stacking":
            self.set_weights_from_stacking(x, y, groups=groups, fit_kwargs=kwargs)
        history = super().fit(x, y, **kwargs)
        if self.weighting == "inverse_error":
            self.set_weights_from_errors(kwargs["validation_data"])
        return history

    # -- weightings ------------------------------------------------------------------------
    def set_weights_from_errors(self, x, y=None):
        """Set inverse-error weights from each member's loss on held-out data, as the members
        are now (after any `EarlyStopping(restore_best_weights=True)`).

        Args:
            x: inputs, an `(x, y)` tuple, or a `tf.data.Dataset` of `(x, y)` batches.
            y: targets, when `x` holds only inputs.
        """
        if isinstance(x, tuple) and y is None:
            x, y = x[0], x[1]
        logs = self.evaluate(x, y, verbose=0, return_dict=True)
        errors = np.array([logs[f"member_{i}_loss"] for i in range(len(self.members))])
        self.member_weights.assign(inverse_error_weights(errors, self.power))

    def set_weights_from_stacking(self, x, y, groups=None, fit_kwargs=None):
        """Fit combination weights to out-of-fold forecasts of time-ordered CV folds."""
        from metazoo.data.splits import WalkForward

        if not isinstance(x, np.ndarray) or y is None:
            raise ValueError(
                "weighting='stacking' needs NumPy arrays x and y to cut folds. "
                f"Received: x of type {type(x).__name__}"
            )
        fit_kwargs = {
            k: v for k, v in (fit_kwargs or {}).items() if k not in ("validation_data", "callbacks")
        }
        fit_kwargs.setdefault("verbose", 0)
        cv = self.cv if self.cv is not None else WalkForward(n_splits=3)
        y = np.asarray(y).reshape(len(x), -1)
        forecasts, targets = [], []
        for train, test in cv.split(x, y, groups=groups):
            fold = ModelAveraging([keras.models.clone_model(m) for m in self.members])
            optimizer = keras.optimizers.deserialize(keras.optimizers.serialize(self.optimizer))
            fold.compile(optimizer=optimizer, loss=self.loss)
            keras.Model.fit(fold, x[train], y[train], **fit_kwargs)
            forecasts.append(ops.convert_to_numpy(fold.member_predictions(x[test])))
            targets.append(y[test])
        weights, intercept = stacking_weights(
            np.concatenate(forecasts, axis=1),
            np.concatenate(targets),
            self.stacker,
            self.ridge_alpha,
        )
        self.member_weights.assign(weights)
        self.intercept.assign(np.full(self.intercept.shape, intercept, dtype="float32"))

    # -- serialization ---------------------------------------------------------------------
    def get_config(self):
        return {
            **super().get_config(),
            "members": [keras.saving.serialize_keras_object(m) for m in self.members],
            "weighting": self.weighting,
            "joint": self.joint,
            "power": self.power,
            "stacker": self.stacker,
            "ridge_alpha": self.ridge_alpha,
        }

    @classmethod
    def from_config(cls, config):
        members = [keras.saving.deserialize_keras_object(m) for m in config.pop("members")]
        return cls(members, **config)


def inverse_error_weights(errors, power=1.0):
    """Weights `(M,)` proportional to `errors ** -power`, summing to one."""
    errors = np.asarray(errors, dtype="float64")
    if not np.isfinite(errors).all() or (errors <= 0).any():
        raise ValueError(f"Member errors must be finite and positive. Received: {errors}")
    raw = errors**-power
    return (raw / raw.sum()).astype("float32")


def stacking_weights(forecasts, targets, stacker="nnls", alpha=1.0):
    """Combination weights from out-of-fold forecasts.

    Args:
        forecasts: `(M, n, output_dim)` member forecasts.
        targets: `(n, output_dim)` realized values.
        stacker: `"nnls"` (non-negative least squares, no intercept) or `"ridge"`.
        alpha: ridge penalty.

    Returns:
        `(weights (M,), intercept)`.
    """
    from scipy.optimize import nnls
    from sklearn.linear_model import Ridge

    design = np.asarray(forecasts, dtype="float64").reshape(len(forecasts), -1).T
    target = np.asarray(targets, dtype="float64").reshape(-1)
    if stacker == "nnls":
        weights, _ = nnls(design, target)
        return weights.astype("float32"), 0.0
    ridge = Ridge(alpha=alpha).fit(design, target)
    return ridge.coef_.astype("float32"), float(ridge.intercept_)


def _check_members(members):
    members = list(members)
    if len(members) < 2:
        raise ValueError(f"ModelAveraging needs at least 2 members. Received: {len(members)}")
    shapes = {(tuple(m.input_shape), tuple(m.output_shape)) for m in members}
    if len(shapes) != 1:
        raise ValueError(f"Members must share input and output shapes. Received: {sorted(shapes)}")
    return members


def _check_targets(y, members) -> None:
    """Refuse targets that do not match the members' outputs (a loss would broadcast them)."""
    if y is None:
        return
    expected, trailing = tuple(members[0].output_shape[1:]), tuple(y.shape[1:])
    if None not in trailing and trailing != expected and not (trailing == () and expected == (1,)):
        raise ValueError(
            f"y must have shape (n, *{expected}), as the members' outputs. "
            f"Received: y.shape={tuple(y.shape)}"
        )
