"""The learners an experiment compares, behind one interface: train on the training tasks,
then forecast the query samples of evaluation episodes after seeing their support samples.

Every learner works in the scaled units of the fold's `WindowScaler`; the protocol maps
forecasts back to the data's units before scoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from metazoo import models
from metazoo.callbacks import TaskEmbeddingProjector
from metazoo.data import MetaBatch, TaskSet, WindowSet
from metazoo.trainers import (
    ANIL,
    MAML,
    ContextMetaLearner,
    ExpertPrototypes,
    MetaLearnedAveraging,
    MetaSGD,
    ModelAveraging,
    Reptile,
)
from metazoo.trainers.reference import predict_tasks, scratch_predictions

TASK_CHUNK = 16  # evaluation tasks per compiled call (bounds tracing of unrolled task loops)


@dataclass
class Episodes:
    """Evaluation episodes of one task set: each task's first K samples are its support set,
    the rest (after the purge gap) its query set.

    Attributes:
        name: the evaluation set (`later_periods` or `held_out_assets`).
        support: per task, the support `WindowSet`.
        query: per task, the query `WindowSet`.
        batch: a `MetaBatch` of every task; query sets are padded to the longest by
            repeating their last sample (padding is cut off again by `unpad`).
        lengths: `(n_tasks,)` true query lengths.
        names: `(n_tasks,)` task names (`symbol@period`).
    """

    name: str
    support: list
    query: list
    batch: MetaBatch
    lengths: np.ndarray
    names: list

    @classmethod
    def from_tasks(cls, name: str, tasks: TaskSet, support_size: int) -> Episodes:
        batch, lengths, episodes = tasks.episode_batch(support_size)
        support = [s for _, s, _ in episodes]
        query = [q for _, _, q in episodes]
        names = [task.name for task, _, _ in episodes]
        return cls(name, support, query, batch, lengths, names)

    def __len__(self) -> int:
        return len(self.query)

    def unpad(self, predictions) -> np.ndarray:
        """`(n_tasks, longest, n_targets)` forecasts -> `(n_query_samples, n_targets)`."""
        predictions = np.asarray(predictions)
        return np.concatenate([p[:n] for p, n in zip(predictions, self.lengths, strict=True)])

    def query_windows(self) -> WindowSet:
        """Every query sample, task after task, in the order of `unpad`."""
        parts = self.query
        first = parts[0]
        return WindowSet(
            X=np.concatenate([q.X for q in parts]),
            y=np.concatenate([q.y for q in parts]),
            times=np.concatenate([q.times for q in parts]),
            symbols=np.concatenate([q.symbols for q in parts]),
            label_end=np.concatenate([q.label_end for q in parts]),
            feature_names=first.feature_names,
            target_names=first.target_names,
            horizon=first.horizon,
        )

    def task_labels(self) -> np.ndarray:
        return np.repeat(np.asarray(self.names, dtype=object), self.lengths)


def chunked(function, batch: MetaBatch, size: int = TASK_CHUNK) -> np.ndarray:
    """`function(sub_batch)` over chunks of `size` tasks (the last padded with copies of its
    first task so every call has one shape), concatenated on the task axis."""
    n = batch.n_tasks
    outputs = []
    for start in range(0, n, size):
        index = np.arange(start, min(start + size, n))
        index = np.concatenate([index, np.full(size - len(index), index[0])])
        sub = MetaBatch(*(np.asarray(part)[index] for part in batch))
        outputs.append(np.asarray(function(sub))[: min(size, n - start)])
    return np.concatenate(outputs)


@dataclass
class TrainingData:
    """What a fold trains on: scaled training tasks and their windows (labels end before the
    evaluation period), and a later slice of them for validation."""

    tasks: TaskSet
    windows: WindowSet
    fit_windows: WindowSet
    valid_windows: WindowSet


class Learner:
    """Base: `fit(data, log_dir)`, then `predict(episodes) -> (n_tasks, longest, n_targets)`.

    Args:
        name: the leaderboard label.
        base: the zoo model name.
        config: the run's `ExperimentConfig`.
        input_shape: `(lookback, n_features)`; output_dim: targets per sample.
    """

    def __init__(self, name, base, config, input_shape, output_dim):
        self.name, self.base, self.config = name, base, config
        self.input_shape, self.output_dim = tuple(input_shape), int(output_dim)
        self.model = None  # the Keras model saved with the run, if any

    def build(self, seed=None) -> keras.Model:
        seed = self.config.seed if seed is None else seed
        return models.build(self.base, self.input_shape, self.output_dim, seed=seed)

    def optimizer(self):
        return keras.optimizers.Adam(self.config.learning_rate)

    def callbacks(self, log_dir):
        return [keras.callbacks.TensorBoard(log_dir=str(log_dir))] if log_dir else []

    def fit(self, data: TrainingData, log_dir=None) -> None:
        """Train on the fold's training data (nothing for learners that train per task)."""

    def predict(self, episodes: Episodes) -> np.ndarray:
        raise NotImplementedError

    def save(self, path: Path) -> Path | None:
        if self.model is None:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        self.model.save(path)
        return path


def _predict_flat(model, batch: MetaBatch) -> np.ndarray:
    """A plain network's forecasts of every query sample (no adaptation)."""
    qx = np.asarray(batch.query_x)
    flat = model.predict(qx.reshape(-1, *qx.shape[2:]), batch_size=1024, verbose=0)
    return flat.reshape(*qx.shape[:2], -1)


class Pooled(Learner):
    """One network trained on every training sample of every training task, no adaptation."""

    def fit(self, data, log_dir=None):
        self.model = self.build()
        self.model.compile(optimizer=self.optimizer(), loss="mse")
        self.model.fit(
            data.windows.X,
            data.windows.y,
            epochs=self.config.pooled_epochs,
            batch_size=256,
            verbose=0,
            callbacks=self.callbacks(log_dir),
        )

    def predict(self, episodes):
        return _predict_flat(self.model, episodes.batch)


class FineTuned(Learner):
    """The pooled network, fine-tuned on each task's support set with `adapt_steps` plain
    gradient steps at `inner_lr` (transfer learning, the usual strong baseline)."""

    def __init__(self, *args, pooled: Pooled):
        super().__init__(*args)
        self.pooled = pooled

    def predict(self, episodes):
        learner = MAML(  # never meta-trained: its inner loop is plain fine-tuning
            self.pooled.model,
            inner_lr=self.config.inner_lr,
            inner_clip_norm=self.config.inner_clip_norm,
        )
        learner.compile(loss="mse")
        steps = self.config.adapt_steps
        return chunked(lambda b: predict_tasks(learner, b, steps), episodes.batch)


class Scratch(Learner):
    """A fresh network per task trained on its support set alone."""

    def predict(self, episodes):
        return scratch_predictions(
            lambda seed: self.build(seed),
            episodes.batch,
            steps=self.config.scratch_steps,
            learning_rate=1e-2,
            seed=self.config.seed,
        )


class Averaging(Learner):
    """`ModelAveraging` of the base network (three seeds) and a linear model, weighted by
    inverse validation error on the last part of the training period."""

    def fit(self, data, log_dir=None):
        seed = self.config.seed
        members = [self.build(seed + i) for i in range(3)]
        members.append(models.build("linear", self.input_shape, self.output_dim, seed=seed))
        self.model = ModelAveraging(members, weighting="inverse_error")
        self.model.compile(optimizer=self.optimizer(), loss="mse")
        valid = data.valid_windows
        self.model.fit(
            data.fit_windows.X,
            data.fit_windows.y,
            validation_data=(valid.X, valid.y),
            epochs=self.config.pooled_epochs,
            batch_size=256,
            verbose=0,
            callbacks=self.callbacks(log_dir),
        )

    def predict(self, episodes):
        return _predict_flat(self.model, episodes.batch)


GRADIENT_LEARNERS = {
    "maml": (MAML, {}),
    "fomaml": (MAML, {"first_order": True}),
    "reptile": (Reptile, {}),
    "meta_sgd": (MetaSGD, {}),
    "anil": (ANIL, {}),
}


class GradientMeta(Learner):
    """A gradient meta-learner (MAML, first-order MAML, Reptile, Meta-SGD, ANIL) trained on
    episodes of the training tasks, adapted to each evaluation task's support set."""

    def __init__(self, *args, kind: str):
        super().__init__(*args)
        self.kind = kind

    def fit(self, data, log_dir=None):
        cls, kwargs = GRADIENT_LEARNERS[self.kind]
        c = self.config
        self.model = cls(
            self.build(),
            inner_lr=c.inner_lr,
            inner_steps=c.inner_steps,
            eval_inner_steps=c.adapt_steps,
            inner_clip_norm=c.inner_clip_norm,
            **kwargs,
        )
        self.model.compile(optimizer=self.optimizer(), loss="mse")
        batches = data.tasks.meta_batches(
            c.meta_batch_size, c.support_size, c.query_size, n_batches=c.meta_steps, seed=c.seed
        )
        self.model.fit(batches, epochs=1, verbose=0, callbacks=self.callbacks(log_dir))

    def predict(self, episodes):
        steps = self.config.adapt_steps
        return chunked(lambda b: predict_tasks(self.model, b, steps), episodes.batch)


class Experts:
    """Expert networks of the metric-based and meta-learned ensembles, trained once per fold
    and base: one on each training asset's windows, and one on all of them."""

    def __init__(self, learner: Learner):
        self.learner = learner
        self.models = None

    def get(self, data: TrainingData) -> list:
        """Fresh copies (each ensemble freezes and saves its own) of the trained experts."""
        if self.models is None:
            c = self.learner.config
            symbols = sorted(set(data.windows.symbols))
            parts = [data.windows.select(symbols=[s]) for s in symbols] + [data.windows]
            self.models = []
            for index, part in enumerate(parts):
                model = self.learner.build(c.seed + index)
                model.compile(optimizer=self.learner.optimizer(), loss="mse")
                model.fit(part.X, part.y, epochs=c.pooled_epochs, batch_size=256, verbose=0)
                self.models.append(model)
        copies = []
        for model in self.models:
            copy = keras.models.clone_model(model)
            copy.set_weights(model.get_weights())
            copies.append(copy)
        return copies


AMORTIZED_LEARNERS = {
    "context": (ContextMetaLearner, {}),
    "context_memory": (ContextMetaLearner, {"memory_size": 256, "memory": "episodic"}),
    "prototypes": (ExpertPrototypes, {}),
    "meta_averaging": (MetaLearnedAveraging, {}),
}


class Amortized(Learner):
    """A model-based or metric-based meta-learner: it reads each evaluation task's support
    set in one forward pass (no gradient step) and conditions its forecasts on it.
    `context_memory` keeps an episodic memory of past tasks' embeddings, holding every
    training task once meta-training ends. The ensembles (`prototypes`, `meta_averaging`)
    weight frozen experts (see `Experts`)."""

    def __init__(self, *args, kind: str, experts: Experts):
        super().__init__(*args)
        self.kind, self.experts = kind, experts

    def fit(self, data, log_dir=None):
        cls, kwargs = AMORTIZED_LEARNERS[self.kind]
        c = self.config
        if cls is ContextMetaLearner:
            self.model = cls(self.build(), **kwargs)
        else:
            self.model = cls(self.experts.get(data), **kwargs)
        self.model.compile(optimizer=self.optimizer(), loss="mse")
        batches = data.tasks.meta_batches(
            c.meta_batch_size, c.support_size, c.query_size, n_batches=c.meta_steps, seed=c.seed
        )
        callbacks = self.callbacks(log_dir)
        if log_dir:  # the training tasks' embeddings, by symbol and period, in the Projector
            projector = Path(log_dir) / "projector"
            callbacks.append(
                TaskEmbeddingProjector.from_tasks(projector, data.tasks, c.support_size)
            )
        self.model.fit(batches, epochs=1, verbose=0, callbacks=callbacks)
        if self.kind == "context_memory":  # the memory of past regimes: every training task
            past, _, _ = data.tasks.episode_batch(c.support_size, c.query_size)
            self.model.remember(past)

    def predict(self, episodes):
        return chunked(self.model.predict_tasks, episodes.batch, size=64)


def make_learners(config, input_shape, output_dim) -> list[Learner]:
    """Every learner of the config, for every base model, in a fixed order."""
    learners = []
    for base in config.models:
        args = (base, config, input_shape, output_dim)
        pooled = Pooled(f"pooled:{base}", *args)
        wanted = config.learners
        if "pooled" in wanted or "finetune" in wanted:
            learners.append(pooled)
        if "finetune" in wanted:
            learners.append(FineTuned(f"finetune:{base}", *args, pooled=pooled))
        if "scratch" in wanted:
            learners.append(Scratch(f"scratch:{base}", *args))
        if "averaging" in wanted:
            learners.append(Averaging(f"averaging:{base}+linear", *args))
        for kind in GRADIENT_LEARNERS:
            if kind in wanted:
                learners.append(GradientMeta(f"{kind}:{base}", *args, kind=kind))
        experts = Experts(pooled)
        for kind in AMORTIZED_LEARNERS:
            if kind in wanted:
                learners.append(Amortized(f"{kind}:{base}", *args, kind=kind, experts=experts))
    return learners
