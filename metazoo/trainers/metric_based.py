"""Metric-based meta-learning: experts weighted by a task's distance to learned prototypes."""

from __future__ import annotations

import keras
from keras import ops

from metazoo.models import SupportSetEncoder, body_and_head
from metazoo.trainers.ensemble import AmortizedEnsemble, check_members
from metazoo.trainers.episodic import merge_tasks, split_tasks


@keras.saving.register_keras_serializable(package="metazoo")
class ExpertPrototypes(AmortizedEnsemble):
    """A zoo of experts weighted per task by the task's distance to one prototype per expert.

    Design:

    1. A `SupportSetEncoder` (dense summary of each support sample and its target, read in
       time order by a GRU or LSTM) maps a task's support set to an embedding `e`.
    2. Each expert `m` owns a learned prototype `p_m` in the embedding space. The task's
       weights are a softmax over negative squared distances, as in prototypical networks:
       `w_m = softmax_m(-||e - p_m||^2 / temperature)`.
    3. The forecast is `sum_m w_m expert_m(x)`. Encoder and prototypes are trained end to end
       on the query loss of this combination, so tasks on which the same experts do well are
       drawn to the same prototypes. With `agreement_weight > 0` a cross-entropy term adds
       that pull explicitly: the weights are also trained to classify each training task's
       best expert on its query set (logged as `agreement_loss`).
    4. Experts are fixed pre-trained members (`train_members=False`, their `trainable` flag is
       switched off) or trained jointly through the combined loss, as a mixture of experts.
       With `refit_heads=lam` each expert is also fine-tuned per task in closed form: its
       head is refitted on the task's support features by ridge regression shrunk towards the
       trained head, `W_t = argmin ||H W - Y||^2 + lam ||W - W_0||^2` (bias included), which
       is still one forward pass, differentiable, with no gradient step.

    Logs: `weight_entropy` (0 when each task picks one expert, `log M` for uniform weights)
    and `member_<i>_loss`, each expert's own query loss (after its head refit, if any).

    Args:
        members: at least two built Keras models with the same input and output shapes
            (zoo models; with `refit_heads`, each must end in a Dense layer named `head`).
        embedding_units: size of the task embedding and prototypes.
        sample_units: size of each support sample's summary.
        encoder: recurrent cell of the encoder, `"gru"` or `"lstm"`.
        temperature: softmax temperature of the distances, `> 0`.
        agreement_weight: weight of the best-expert cross-entropy, `>= 0`.
        train_members: train the experts through the combined query loss.
        refit_heads: ridge penalty of the per-task head refit, `> 0`; `None` for no refit.

    Attributes:
        members: the experts.
        encoder: the `SupportSetEncoder` that embeds a task's support set.
        prototypes: `(n_members, embedding_units)` learned prototype of each expert.

    References:
        Snell, Swersky and Zemel, "Prototypical Networks for Few-shot Learning", NeurIPS 2017.
        Jacobs, Jordan, Nowlan and Hinton, "Adaptive Mixtures of Local Experts", Neural
        Computation 1991.
        Bertinetto, Henriques, Torr and Vedaldi, "Meta-learning with differentiable
        closed-form solvers", ICLR 2019.
        Talagala, Hyndman and Athanasopoulos, "Meta-learning how to forecast time series",
        Journal of Forecasting 2023 (FFORMS: model-zoo selection from series features).
    """

    def __init__(
        self,
        members,
        embedding_units=16,
        sample_units=32,
        encoder="gru",
        temperature=1.0,
        agreement_weight=0.0,
        train_members=False,
        refit_heads=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.members = check_members(members)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0. Received: temperature={temperature}")
        if not agreement_weight >= 0:
            raise ValueError(
                f"agreement_weight must be >= 0. Received: agreement_weight={agreement_weight}"
            )
        if refit_heads is not None and not refit_heads > 0:
            raise ValueError(
                f"refit_heads must be > 0 or None. Received: refit_heads={refit_heads}"
            )
        self.temperature, self.agreement_weight = float(temperature), float(agreement_weight)
        self.train_members = bool(train_members)
        self.refit_heads = None if refit_heads is None else float(refit_heads)
        for member in self.members:
            member.trainable = self.train_members
        self.parts = [body_and_head(m) for m in self.members] if self.refit_heads else []
        for member, (_, head) in zip(self.members, self.parts, strict=False):
            if head.activation is not keras.activations.linear:
                raise ValueError(
                    "refit_heads needs linear heads (least squares). Received: member "
                    f"{member.name!r} with head activation {head.activation.__name__}"
                )
        self._set_shapes(self.members[0])
        self.encoder = SupportSetEncoder(embedding_units, sample_units, encoder, name="encoder")
        self.encoder.build((None, None, *self.sample_shape), (None, None, *self.target_shape))
        self.prototypes = self.add_weight(
            shape=(len(self.members), self.encoder.units),
            initializer=keras.initializers.RandomNormal(stddev=0.5),
            name="prototypes",
        )
        names = ["weight_entropy", *(f"member_{i}_loss" for i in range(len(self.members)))]
        self._track_logs(*names, *(["agreement_loss"] if self.agreement_weight else []))
        self.built = True

    # -- adaptation: support set -> context ------------------------------------------------
    def task_context(self, support_x, support_y, training=False):
        """`{"embedding": (n_tasks, units), "logits": (n_tasks, M), "weights": (n_tasks, M)}`
        and, with `refit_heads`, each expert's refitted head."""
        embedding = self.encoder(support_x, support_y, training=training)
        distances = ops.sum(
            ops.square(embedding[:, None, :] - self.prototypes[None, :, :]), axis=-1
        )
        logits = -distances / self.temperature
        context = {"embedding": embedding, "logits": logits, "weights": ops.softmax(logits)}
        if self.refit_heads:
            context["heads"] = [
                self._refit(body, head, support_x, support_y, training) for body, head in self.parts
            ]
        return context

    def _refit(self, body, head, support_x, support_y, training):
        """Ridge refit of one expert's head on each task's support features: `(n_tasks,
        width + 1, out)`, the kernel stacked over the bias."""
        features = self._features(body, support_x, training)
        targets = ops.reshape(support_y, (ops.shape(support_y)[0], ops.shape(support_y)[1], -1))
        prior = ops.concatenate([head.kernel, head.bias[None, :]], axis=0)
        gram = ops.einsum("tkd,tke->tde", features, features)
        size = ops.shape(prior)[0]
        penalty = self.refit_heads * ops.eye(size, dtype=gram.dtype)
        right = ops.einsum("tkd,tko->tdo", features, targets) + self.refit_heads * prior
        return ops.solve(gram + penalty, right)

    def _features(self, body, x, training):
        """Body features with a constant column, `(n_tasks, n, width + 1)`."""
        features = split_tasks(body(merge_tasks(x), training=training), ops.shape(x)[0])
        return ops.concatenate([features, ops.ones_like(features[..., :1])], axis=-1)

    def member_outputs(self, context, query_x, training=False):
        """Each expert's query predictions `(M, n_tasks, query_size, *target_shape)`."""
        training = training and self.train_members
        n_tasks = ops.shape(query_x)[0]
        if not self.refit_heads:
            flat = merge_tasks(query_x)
            return ops.stack(
                [split_tasks(m(flat, training=training), n_tasks) for m in self.members]
            )
        outputs = [
            ops.einsum("tqd,tdo->tqo", self._features(body, query_x, training), refit)
            for (body, _), refit in zip(self.parts, context["heads"], strict=True)
        ]
        shape = (len(self.members), n_tasks, ops.shape(query_x)[1], *self.target_shape)
        return ops.reshape(ops.stack(outputs), shape)

    def auxiliary(self, context, batch, outputs, training=False):
        losses, logs = self.member_logs(context, batch, outputs)
        if not self.agreement_weight:
            return 0.0, logs
        best = ops.argmin(ops.stop_gradient(losses), axis=0)  # each task's best expert
        agreement = ops.mean(
            keras.losses.sparse_categorical_crossentropy(best, context["logits"], from_logits=True)
        )
        logs["agreement_loss"] = agreement
        return self.agreement_weight * agreement, logs

    # -- serialization ---------------------------------------------------------------------
    def get_config(self):
        return {
            **super().get_config(),
            "embedding_units": self.encoder.units,
            "sample_units": self.encoder.sample_units,
            "encoder": self.encoder.cell,
            "temperature": self.temperature,
            "agreement_weight": self.agreement_weight,
            "train_members": self.train_members,
            "refit_heads": self.refit_heads,
        }
