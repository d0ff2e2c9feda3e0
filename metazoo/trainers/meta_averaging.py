"""Meta-learned model averaging: ensemble weights as a function of hand-built task features."""

from __future__ import annotations

import keras
from keras import ops

from metazoo.trainers.ensemble import AmortizedEnsemble, check_members
from metazoo.trainers.episodic import merge_tasks, split_tasks

TASK_FEATURES = ("mean", "log_volatility", "autocorrelation", "skewness", "log_kurtosis", "trend")
_EPS = 1e-8


def task_features(support_y):
    """Statistics of each task's support targets, read as a time series (oldest first).

    For every target column `y_1..y_K` of a task (e.g. its next-period returns), with
    `c_k = y_k - mean(y)` and `s^2 = mean(c^2)`:

    * `mean`: `mean(y)`, the drift or trend of returns;
    * `log_volatility`: `log(sqrt(mean(y^2)))`, the log root mean square of the targets
      (a log realized volatility for return targets in their own units; for standardized
      targets, the log of their scale relative to the training data);
    * `autocorrelation`: lag-1 autocorrelation `sum c_k c_{k-1} / sum c_k^2`;
    * `skewness`: `mean(c^3) / s^3`;
    * `log_kurtosis`: `log(mean(c^4) / s^4)` (0 for a two-point law, log 3 for a normal);
    * `trend`: the correlation of `y_k` with time `k`, in [-1, 1].

    Only the targets are used, not the windows: they are the one quantity every task
    shares the meaning of, whatever its input features.

    Args:
        support_y: `(n_tasks, n_support, *target_shape)`.

    Returns:
        `(n_tasks, len(TASK_FEATURES) * n_targets)` features, all statistics of the first
        target column, then of the second, and so on.
    """
    n_tasks, n_support = ops.shape(support_y)[0], ops.shape(support_y)[1]
    y = ops.reshape(support_y, (n_tasks, n_support, -1))
    centred = y - ops.mean(y, axis=1, keepdims=True)
    squares = ops.sum(ops.square(centred), axis=1) + _EPS
    variance = ops.mean(ops.square(centred), axis=1) + _EPS
    time = ops.cast(ops.arange(n_support), y.dtype)
    time = (time - ops.mean(time))[None, :, None]
    columns = [
        ops.mean(y, axis=1),
        0.5 * ops.log(ops.mean(ops.square(y), axis=1) + _EPS),
        ops.sum(centred[:, 1:] * centred[:, :-1], axis=1) / squares,
        ops.mean(centred**3, axis=1) / variance**1.5,
        ops.log(ops.mean(centred**4, axis=1) / ops.square(variance) + _EPS),
        ops.sum(centred * time, axis=1)
        / ops.sqrt(squares * ops.sum(ops.square(time), axis=1) + _EPS),
    ]
    return ops.reshape(ops.stack(columns, axis=-1), (n_tasks, -1))


@keras.saving.register_keras_serializable(package="metazoo")
class MetaLearnedAveraging(AmortizedEnsemble):
    """Model averaging whose weights are a learned function of each task's features.

    For a task, `task_features` summarizes its support targets (drift, realized volatility,
    lag-1 autocorrelation, skewness, kurtosis, trend); the features are standardized by a
    batch-normalization layer (statistics across the training tasks, synchronized across
    replicas under `tf.distribute`; moving averages at inference), and a small network maps
    them to softmax weights over the members: `w = softmax(MLP(features))`. The forecast is
    `sum_m w_m member_m(x)`. The network is learned across many tasks to minimize the loss
    of the combined forecast on their query sets. Its output layer starts at zero, so an
    untrained learner is the uniform average.

    Members are pre-trained and frozen (`train_members=False`, their `trainable` flag is
    switched off) or trained jointly through the combined loss (`train_members=True`).

    Logs: `weight_entropy` (`log M` for uniform weights) and `member_<i>_loss`, each member's
    own query loss. `embed_tasks` returns the raw task features, named by
    `feature_names`.

    Args:
        members: at least two built Keras models with the same input and output shapes.
        hidden_units: widths of the weight network's hidden layers (may be empty).
        train_members: train the members through the combined query loss.

    References:
        Montero-Manso, Athanasopoulos, Hyndman and Talagala, "FFORMA: Feature-based Forecast
        Model Averaging", International Journal of Forecasting 2020.
        Talagala, Hyndman and Athanasopoulos, "Meta-learning how to forecast time series",
        Journal of Forecasting 2023.
    """

    def __init__(self, members, hidden_units=(16,), train_members=False, **kwargs):
        super().__init__(**kwargs)
        self.members = check_members(members)
        hidden_units = (hidden_units,) if isinstance(hidden_units, int) else tuple(hidden_units)
        if any(int(u) != u or u < 1 for u in hidden_units):
            raise ValueError(
                f"hidden_units must be positive integers. Received: hidden_units={hidden_units}"
            )
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.train_members = bool(train_members)
        for member in self.members:
            member.trainable = self.train_members
        self._set_shapes(self.members[0])
        n_features = len(self.feature_names)
        self.normalizer = keras.layers.BatchNormalization(
            momentum=0.9, synchronized=True, name="normalizer"
        )
        self.normalizer.build((None, n_features))
        self.hidden = []
        width = n_features
        for i, units in enumerate(self.hidden_units):
            layer = keras.layers.Dense(units, activation="relu", name=f"hidden_{i}")
            layer.build((None, width))
            self.hidden.append(layer)
            width = units
        self.weight_logits = keras.layers.Dense(
            len(self.members), kernel_initializer="zeros", name="weight_logits"
        )
        self.weight_logits.build((None, width))
        self._track_logs("weight_entropy", *(f"member_{i}_loss" for i in range(len(self.members))))
        self.built = True

    @property
    def feature_names(self) -> list[str]:
        """Names of the task features: `TASK_FEATURES`, suffixed by target when several."""
        n_targets = 1
        for dim in self.target_shape:
            n_targets *= int(dim)
        if n_targets == 1:
            return list(TASK_FEATURES)
        return [f"{name}_{j}" for j in range(n_targets) for name in TASK_FEATURES]

    # -- adaptation: support set -> context ------------------------------------------------
    def task_context(self, support_x, support_y, training=False):
        """`{"embedding": task features, "weights": (n_tasks, M)}`."""
        features = task_features(support_y)
        hidden = self.normalizer(features, training=training)
        for layer in self.hidden:
            hidden = layer(hidden)
        weights = ops.softmax(self.weight_logits(hidden))
        return {"embedding": features, "weights": weights}

    def member_outputs(self, context, query_x, training=False):
        """Each member's predictions `(M, n_tasks, query_size, *target_shape)` (the same for
        every context: members are not adapted per task)."""
        training = training and self.train_members
        n_tasks, flat = ops.shape(query_x)[0], merge_tasks(query_x)
        return ops.stack([split_tasks(m(flat, training=training), n_tasks) for m in self.members])

    def auxiliary(self, context, batch, outputs, training=False):
        _, logs = self.member_logs(context, batch, outputs)
        return 0.0, logs

    # -- serialization ---------------------------------------------------------------------
    def get_config(self):
        return {
            **super().get_config(),
            "hidden_units": self.hidden_units,
            "train_members": self.train_members,
        }
