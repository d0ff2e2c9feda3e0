"""Model-based meta-learning: a task embedding read from the support set conditions a zoo model."""

from __future__ import annotations

import keras
from keras import ops

from metazoo.models import SupportSetEncoder, body_and_head
from metazoo.trainers.amortized import AmortizedMetaLearner
from metazoo.trainers.episodic import merge_tasks, split_tasks
from metazoo.trainers.losses import softmax_entropy
from metazoo.validation import check_count


@keras.saving.register_keras_serializable(package="metazoo")
class ContextMetaLearner(AmortizedMetaLearner):
    """A zoo model conditioned on a task embedding; adaptation is one forward pass.

    Design:

    1. *Encoder.* A `SupportSetEncoder` summarizes each support sample (its flattened window
       and its target) with a dense layer and reads the summaries in time order with a GRU or
       LSTM; the last state is the task embedding `e` `(n_tasks, embedding_units)`.
    2. *Memory* (`memory_size=M > 0`), read by attention, `r = softmax(e K^T / sqrt(d)) V`;
       the task uses `e + r`, so a new task draws on similar past tasks. The attention's
       mean entropy is logged as `memory_entropy`.
       - `memory="learned"`: `M` key-value slots trained across tasks by gradient descent
         (a parametric memory of regimes).
       - `memory="episodic"`: the embeddings of past tasks themselves. After every training
         step the tasks of the meta-batch are embedded from their whole episode (support and
         query: more days than a new task offers) and written into a ring buffer of `M`
         entries (keys and values), oldest first out; `remember(batch)` writes chosen tasks
         (e.g. every training task once training is done). Reading an empty memory gives
         `r = 0`. Adaptation and prediction only read it.
    3. *Conditioning* of the base model `head(body(x))` (`metazoo.models.build`; its last
       layer is a Dense named `head`):
       - `film=True`: feature-wise scale and shift of the body's output features,
         `h' = (1 + gamma(e)) * h + beta(e)`, before the head;
       - `hypernetwork=True`: the head's kernel and bias plus a task-specific residual
         generated from `e`, `W(e) = W + dW(e)`, `b(e) = b + db(e)`.
       Both generators start at zero, so an untrained learner predicts exactly as its base.

    The body runs once over every query sample of every task (tasks merged into the batch
    axis); encoder, conditioning, memory and base model train end to end on the query loss.

    Example:
        ```python
        learner = ContextMetaLearner(models.build("mlp", (20, 7), 1), film=True, memory_size=8)
        learner.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        learner.fit(tasks.meta_batches(16, 20, 20, n_batches=100), epochs=10)
        adapted = learner.adapt(support_x, support_y)   # one forward pass
        forecasts = adapted.predict(query_x)
        ```

    Args:
        model: the base network, a built zoo model (its last layer a Dense named `head`).
        embedding_units: size of the task embedding.
        sample_units: size of each support sample's summary.
        encoder: recurrent cell of the encoder, `"gru"` or `"lstm"`.
        film: condition the body's features by FiLM.
        hypernetwork: generate a task-specific residual of the head's weights.
        memory_size: number of memory slots; 0 for none.
        memory: `"learned"` slots or an `"episodic"` memory of past tasks' embeddings.

    Attributes:
        model: the base network.
        encoder: the `SupportSetEncoder` that embeds a task's support set.
        memory_keys, memory_values: `(memory_size, embedding_units)` memory slots (only
            with `memory_size > 0`; an episodic memory has keys only, which are also its
            values).
        memory_count: tasks written so far into an episodic memory.

    References:
        Perez, Strub, de Vries, Dumoulin and Courville, "FiLM: Visual Reasoning with a General
        Conditioning Layer", AAAI 2018.
        Ha, Dai and Le, "HyperNetworks", ICLR 2017 (arXiv 2016).
        Santoro, Bartunov, Botvinick, Wierstra and Lillicrap, "Meta-Learning with
        Memory-Augmented Neural Networks", ICML 2016.
        Garnelo, Rosenbaum, Maddison, Ramalho, Saxton, Shanahan, Teh, Rezende and Eslami,
        "Conditional Neural Processes", ICML 2018.
    """

    def __init__(
        self,
        model,
        embedding_units=32,
        sample_units=32,
        encoder="gru",
        film=True,
        hypernetwork=False,
        memory_size=0,
        memory="learned",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.memory_size = check_count("memory_size", memory_size, 0)
        if memory not in MEMORIES:
            raise ValueError(f"memory must be one of {MEMORIES}. Received: memory={memory!r}")
        self.memory = memory
        if self.memory_size:
            self._track_logs("memory_entropy")
        if not isinstance(model, keras.Model) or not model.built:
            raise TypeError(f"model must be a built keras.Model. Received: {type(model).__name__}")
        if not (film or hypernetwork):
            raise ValueError(
                "ContextMetaLearner needs film=True, hypernetwork=True or both. "
                f"Received: film={film}, hypernetwork={hypernetwork}"
            )
        self.model = model
        self.body, self.head = body_and_head(model)
        self._set_shapes(model)
        self.film, self.hypernetwork = bool(film), bool(hypernetwork)
        self.encoder = SupportSetEncoder(embedding_units, sample_units, encoder, name="encoder")
        self.encoder.build((None, None, *self.sample_shape), (None, None, *self.target_shape))
        width, out = self.body.output_shape[-1], self.head.units
        units = self.encoder.units
        if self.memory_size and memory == "learned":
            self.memory_keys = self.add_weight(
                shape=(self.memory_size, units), initializer="glorot_uniform", name="memory_keys"
            )
            self.memory_values = self.add_weight(
                shape=(self.memory_size, units), initializer="glorot_uniform", name="memory_values"
            )
        elif self.memory_size:  # episodic: written, not trained (the first replica's writes)
            self.memory_keys = self.add_weight(
                shape=(self.memory_size, units),
                initializer="zeros",
                trainable=False,
                aggregation="only_first_replica",
                name="memory_keys",
            )
            self.memory_count = self.add_weight(
                shape=(),
                initializer="zeros",
                dtype="int64",
                trainable=False,
                aggregation="only_first_replica",
                name="memory_count",
            )
        if self.film:
            self.film_generator = _zero_dense(2 * width, "film", units)
        if self.hypernetwork:
            self.head_generator = _zero_dense(width * out + out, "hypernetwork", units)
        self.built = True

    # -- adaptation: support set -> context ------------------------------------------------
    def task_context(self, support_x, support_y, training=False):
        """`{"embedding": (n_tasks, embedding_units)}`, plus `"attention"` over the memory."""
        embedding = self.encoder(support_x, support_y, training=training)
        if not self.memory_size:
            return {"embedding": embedding}
        scale = ops.sqrt(ops.cast(self.encoder.units, embedding.dtype))
        logits = ops.matmul(embedding, ops.transpose(self.memory_keys)) / scale
        if self.memory == "episodic":  # only written entries are read; none gives r = 0
            filled = ops.arange(self.memory_size) < ops.minimum(
                ops.cast(self.memory_count, "int32"), self.memory_size
            )
            logits = ops.where(filled[None, :], logits, ops.full_like(logits, -1e9))
            attention = ops.softmax(logits) * ops.cast(ops.any(filled), logits.dtype)
        else:
            attention = ops.softmax(logits)
        values = self.memory_keys if self.memory == "episodic" else self.memory_values
        read = ops.matmul(attention, values)
        return {"embedding": embedding + read, "attention": attention}

    # -- the episodic memory ---------------------------------------------------------------
    def after_train_batch(self, batch):
        if self.memory_size and self.memory == "episodic":
            self._write_memory(batch)

    def remember(self, batch) -> None:
        """Write the tasks of a meta-batch into the episodic memory, each embedded from its
        whole episode (support then query), e.g. every training task after meta-training.

        Args:
            batch: a `MetaBatch` or 4-tuple with a leading task axis.
        """
        if not (self.memory_size and self.memory == "episodic"):
            raise ValueError(
                "remember needs an episodic memory (memory_size > 0, memory='episodic'). "
                f"Received: memory_size={self.memory_size}, memory={self.memory!r}"
            )
        self._write_memory(tuple(ops.convert_to_tensor(p) for p in self._check_numpy(batch)))

    def _write_memory(self, batch):
        """Embed each task from support and query and write the last `memory_size` of them
        into the ring buffer."""
        support_x, support_y, query_x, query_y = batch
        whole = self.encoder(
            ops.concatenate([support_x, query_x], axis=1),
            ops.concatenate([support_y, query_y], axis=1),
            training=False,
        )
        whole = ops.stop_gradient(whole)[-self.memory_size :]
        n = ops.shape(whole)[0]
        slots = ops.cast(
            (self.memory_count + ops.arange(n, dtype="int64")) % self.memory_size, "int32"
        )
        self.memory_keys.assign(ops.scatter_update(self.memory_keys, slots[:, None], whole))
        self.memory_count.assign_add(ops.cast(n, "int64"))

    def query_outputs(self, context, query_x, training=False):
        """`{"prediction": (n_tasks, query_size, *target_shape)}` of the conditioned model."""
        n_tasks = ops.shape(query_x)[0]
        features = split_tasks(self.body(merge_tasks(query_x), training=training), n_tasks)
        embedding = context["embedding"]
        if self.film:
            gamma, beta = ops.split(self.film_generator(embedding), 2, axis=-1)
            features = (1.0 + gamma[:, None, :]) * features + beta[:, None, :]
        if not self.hypernetwork:
            return {"prediction": self.head(features)}
        width, out = features.shape[-1], self.head.units
        residual = self.head_generator(embedding)
        kernel = self.head.kernel + ops.reshape(residual[:, : width * out], (-1, width, out))
        bias = self.head.bias + residual[:, width * out :]
        outputs = ops.einsum("tqd,tdo->tqo", features, kernel) + bias[:, None, :]
        return {"prediction": self.head.activation(outputs)}

    def auxiliary(self, context, batch, outputs, training=False):
        if not self.memory_size:
            return 0.0, {}
        return 0.0, {"memory_entropy": softmax_entropy(context["attention"])}

    # -- serialization ---------------------------------------------------------------------
    def get_config(self):
        return {
            **super().get_config(),
            "model": keras.saving.serialize_keras_object(self.model),
            "embedding_units": self.encoder.units,
            "sample_units": self.encoder.sample_units,
            "encoder": self.encoder.cell,
            "film": self.film,
            "hypernetwork": self.hypernetwork,
            "memory_size": self.memory_size,
            "memory": self.memory,
        }

    @classmethod
    def from_config(cls, config):
        model = keras.saving.deserialize_keras_object(config.pop("model"))
        return cls(model, **config)


MEMORIES = ("learned", "episodic")


def _zero_dense(units, name, input_dim):
    """A Dense generator initialized at zero: conditioning starts as the identity."""
    layer = keras.layers.Dense(
        units, kernel_initializer="zeros", bias_initializer="zeros", name=name
    )
    layer.build((None, input_dim))
    return layer
