"""Task embeddings for the TensorBoard Embedding Projector."""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from metazoo.data.episodes import check_meta_batch

CHECKPOINT = "task_embeddings"
METADATA = "metadata.tsv"


class TaskEmbeddingProjector(keras.callbacks.Callback):
    """Writes the task embeddings of chosen tasks for TensorBoard's Embedding Projector.

    The model must have `embed_tasks(batch) -> (n_tasks, dim)` (`ContextMetaLearner`,
    `ExpertPrototypes`, `MetaLearnedAveraging`). At the end of training, and every `freq`
    epochs if given, the embeddings of `tasks_batch` are added to a checkpoint in `log_dir`
    (`task_embeddings-<epoch>`, the latest one kept, found through the `checkpoint` state
    file) as a variable named `<name>_epoch_<n>`; `metadata.tsv` holds one row per task and
    `projector_config.pbtxt` lists every written variable with that metadata. Run
    `tensorboard --logdir <log_dir>` and open the Projector tab to color tasks by symbol or
    period and watch their embeddings move from epoch to epoch.

    Args:
        log_dir: the TensorBoard log directory (where `keras.callbacks.TensorBoard` writes).
        tasks_batch: a `MetaBatch` (or 4-tuple) of the tasks to embed, task axis first; only
            its support sets are read.
        metadata: one row per task: a `pandas.DataFrame` (e.g. columns `symbol`, `period`),
            a dict of equally long columns, or a sequence of labels.
        freq: also write every `freq` epochs; None writes only at the end of training.
        name: prefix of the embedding variables.
    """

    def __init__(self, log_dir, tasks_batch, metadata, freq=None, name="task_embedding"):
        super().__init__()
        if freq is not None and (int(freq) != freq or freq < 1):
            raise ValueError(f"freq must be None or an integer >= 1. Received: freq={freq}")
        self.log_dir = str(log_dir)
        self.tasks_batch = check_meta_batch(tasks_batch)
        self.columns = _metadata_columns(metadata, self.tasks_batch.n_tasks)
        self.freq = None if freq is None else int(freq)
        self.name = str(name)
        self._embeddings = {}
        self._last_epoch = None

    @classmethod
    def from_tasks(cls, log_dir, tasks, support_size, **kwargs):
        """A projector of every task of a `TaskSet` long enough for `support_size` samples,
        embedded from its first `support_size` samples, with its symbol and period as
        metadata."""
        batch, _, episodes = tasks.episode_batch(support_size, 1)
        symbols = [task.symbol for task, _, _ in episodes]
        periods = [str(task.period) for task, _, _ in episodes]
        return cls(log_dir, batch, {"symbol": symbols, "period": periods}, **kwargs)

    def on_train_begin(self, logs=None):
        if not callable(getattr(self.model, "embed_tasks", None)):
            raise ValueError(
                "TaskEmbeddingProjector needs a model with embed_tasks(batch) "
                f"(ContextMetaLearner, ExpertPrototypes, MetaLearnedAveraging). "
                f"Received: {type(self.model).__name__}"
            )

    def on_epoch_end(self, epoch, logs=None):
        self._last_epoch = epoch
        if self.freq is not None and (epoch + 1) % self.freq == 0:
            self.write(epoch)

    def on_train_end(self, logs=None):
        if self._last_epoch is not None:
            self.write(self._last_epoch)

    def write(self, epoch):
        """Add the current embeddings (as of `epoch`, counted from 0) and rewrite the files."""
        from tensorboard.plugins import projector

        key = f"{self.name}_epoch_{epoch + 1}"
        if key in self._embeddings:
            return
        values = np.asarray(self.model.embed_tasks(self.tasks_batch), dtype="float32")
        self._embeddings[key] = tf.Variable(values, name=key, trainable=False)
        os.makedirs(self.log_dir, exist_ok=True)
        _write_tsv(os.path.join(self.log_dir, METADATA), self.columns)
        manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(**self._embeddings),
            self.log_dir,
            max_to_keep=1,
            checkpoint_name=CHECKPOINT,
        )
        manager.save(checkpoint_number=epoch + 1)  # the Projector reads the latest
        config = projector.ProjectorConfig()
        for name in self._embeddings:
            embedding = config.embeddings.add()
            embedding.tensor_name = f"{name}/.ATTRIBUTES/VARIABLE_VALUE"
            embedding.metadata_path = METADATA
        projector.visualize_embeddings(self.log_dir, config)


def _metadata_columns(metadata, n_tasks) -> dict[str, list[str]]:
    """Metadata as named columns of strings, one entry per task."""
    if hasattr(metadata, "to_dict") and hasattr(metadata, "columns"):  # a DataFrame
        columns = {str(c): list(metadata[c]) for c in metadata.columns}
    elif isinstance(metadata, dict):
        columns = {str(k): list(v) for k, v in metadata.items()}
    else:
        columns = {"task": list(metadata)}
    lengths = {name: len(values) for name, values in columns.items()}
    if not columns or set(lengths.values()) != {n_tasks}:
        raise ValueError(
            f"metadata needs one row per task ({n_tasks} tasks). Received: column lengths {lengths}"
        )
    return {name: [_clean(v) for v in values] for name, values in columns.items()}


def _clean(value) -> str:
    """A TSV cell: tabs and newlines would break the row."""
    return " ".join(str(value).split())


def _write_tsv(path, columns):
    """One row per task; a header row only with several columns (the Projector's format)."""
    names = list(columns)
    rows = zip(*columns.values(), strict=True)
    lines = (["\t".join(names)] if len(names) > 1 else []) + ["\t".join(row) for row in rows]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
