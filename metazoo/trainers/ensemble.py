"""Ensembles weighted per task from the support set: the base of `ExpertPrototypes` and
`MetaLearnedAveraging`, and the helpers that combine and score their members."""

from __future__ import annotations

import keras
from keras import ops

from metazoo.trainers.amortized import AmortizedMetaLearner
from metazoo.trainers.losses import member_task_losses, resolve_loss, softmax_entropy


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


def combine_members(weights, outputs):
    """Per-task weighted sums `(n_tasks, n, *target_shape)` of member predictions
    `(M, n_tasks, n, *target_shape)` with weights `(n_tasks, M)`."""
    shape = ops.shape(outputs)
    flat = ops.reshape(outputs, (shape[0], shape[1], -1))
    return ops.reshape(ops.einsum("tm,mtk->tk", weights, flat), shape[1:])
