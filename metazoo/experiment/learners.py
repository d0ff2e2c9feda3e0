"""The learners an experiment compares: each is a `metazoo.trainers.registry` entry built
from the run's settings, trained on the fold's training data, then asked to forecast the
query samples of evaluation episodes after seeing their support samples.

Every learner works in the scaled units of the fold's `WindowScaler` (and, for variance
targets, outputs a log variance trained with `QLIKE(log_pred=True)`); the protocol maps
forecasts back to the data's units before scoring (see `metazoo.experiment.targets`).

For variance targets every network (each learner's base, the pooled network, the experts
and ensemble members) starts with its head at the log-HAR fit of the fold's training
windows (`log_har_fit`): OLS of the log target on the scaled features the head reads, its
intercept raised by Duan's smearing factor of the residuals, so that `exp(output)` of an
untrained network is the log-HAR forecast of the *mean* variance, the quantity QLIKE
targets. A harnet's correction starts at zero, so it starts as that HAR too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from metazoo import models
from metazoo.callbacks import TaskEmbeddingProjector
from metazoo.data import EvaluationEpisodes, MetaBatch, TaskSet, WindowSet
from metazoo.data import variance as mvariance
from metazoo.models.registry import HEAD_PREFIX
from metazoo.seeding import weights_seeded
from metazoo.trainers import AmortizedMetaLearner, GradientMetaLearner, Pooled, registry
from metazoo.trainers.pooled import PooledTraining, copy_model

# Seed offset of the layers a learner adds to its base (an encoder, a weighting), so they
# are drawn apart from the base network's weights and whatever ran before.
OWN_LAYERS_SEED = 7919
TASK_CHUNK = 16  # evaluation tasks per compiled call (bounds tracing of unrolled task loops)
AMORTIZED_CHUNK = 64  # amortized learners read 64 tasks per forward pass
HAR_HEADS = ("har", "harnet", "linear")  # bases whose head reads the last day's features


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


def trainer_settings(config) -> dict:
    """The run's settings as trainer constructor arguments (each entry takes those it has)."""
    return {
        "inner_lr": config.inner_lr,
        "inner_steps": config.inner_steps,
        "eval_inner_steps": config.adapt_steps,
        "inner_clip_norm": config.inner_clip_norm,
        "fit_steps": config.scratch_steps,
        "seed": config.seed,
    }


def log_har_fit(windows: WindowSet) -> tuple[np.ndarray, np.ndarray]:
    """`(intercept (n_targets,), coef (n_targets, n_features))` of the log-HAR regression:
    OLS of the log target (raised to `MIN_VARIANCE`) on the last row of each window's
    features, the intercept raised by the log of Duan's smearing factor of the residuals
    (so `exp` of the fit estimates the mean variance, not the median)."""
    x = np.asarray(windows.X[:, -1], dtype=np.float64)
    log_y = mvariance.log_variance(np.asarray(windows.y, dtype=np.float64))
    design = np.column_stack([np.ones(len(x)), x])
    solution, *_ = np.linalg.lstsq(design, log_y, rcond=None)
    residuals = log_y - design @ solution
    smearing = np.log(np.mean(np.exp(residuals), axis=0))
    return solution[0] + smearing, solution[1:].T


class Networks:
    """The networks learners of one base share within a fold: how to build a fresh one, the
    pooled network (trained once on every training window, for `pooled` and `finetune`)
    and the experts (one per training asset and one on all, for the ensembles).

    With a `spec` of a variance target, networks train with its loss and start with their
    head at the log-HAR fit of the training windows (`prepare` computes it)."""

    def __init__(self, base, config, input_shape, output_dim, spec=None):
        self.base, self.config, self.spec = base, config, spec
        self.input_shape, self.output_dim = tuple(input_shape), int(output_dim)
        self.pooled = None
        self.experts = None
        self.har_fit = None

    def loss(self):
        return "mse" if self.spec is None else self.spec.loss()

    def prepare(self, data: TrainingData) -> None:
        """Fit the log-HAR head start on the fold's training windows (once)."""
        if self.har_fit is None and self.spec is not None and self.spec.log_output:
            self.har_fit = log_har_fit(data.windows)

    def build(self, seed=None, name=None) -> keras.Model:
        seed = self.config.seed if seed is None else seed
        name = name or self.base
        model = models.build(name, self.input_shape, self.output_dim, seed=seed)
        if self.har_fit is not None:
            start_at_har(model, *self.har_fit, slopes=name in HAR_HEADS)
        return model

    def optimizer(self):
        return keras.optimizers.Adam(self.config.learning_rate)

    def pooled_network(self, data: TrainingData, callbacks=()) -> keras.Model:
        """The network trained on every training window (no adaptation), trained once."""
        if self.pooled is None:
            pooled = Pooled(self.build())
            pooled.compile(optimizer=self.optimizer(), loss=self.loss())
            pooled.fit(
                data.windows.X,
                data.windows.y,
                epochs=self.config.pooled_epochs,
                batch_size=256,
                verbose=0,
                callbacks=list(callbacks),
            )
            self.pooled = pooled.model
        return self.pooled

    def trained_experts(self, data: TrainingData) -> list:
        """Fresh copies (each ensemble freezes and saves its own) of the trained experts."""
        if self.experts is None:
            c = self.config
            symbols = sorted(set(data.windows.symbols))
            parts = [data.windows.select(symbols=[s]) for s in symbols] + [data.windows]
            self.experts = []
            for index, part in enumerate(parts):
                model = self.build(c.seed + index)
                model.compile(optimizer=self.optimizer(), loss=self.loss())
                model.fit(part.X, part.y, epochs=c.pooled_epochs, batch_size=256, verbose=0)
                self.experts.append(model)
        return [copy_model(model) for model in self.experts]

    def members(self) -> list:
        """Untrained ensemble members: the base network with three seeds and a linear model."""
        seed = self.config.seed
        return [self.build(seed + i) for i in range(3)] + [self.build(seed, name="linear")]


class Learner:
    """One leaderboard entry: a registry entry on one base network.

    `fit(data, log_dir)` trains it on the fold's training data, `predict(episodes)` returns
    `(n_tasks, longest, n_targets)` forecasts of the episodes' query samples.
    """

    def __init__(self, kind: str, networks: Networks):
        self.spec = registry.get(kind)
        self.networks = networks
        self.config = networks.config
        suffix = "+linear" if self.spec.needs == "members" else ""
        self.name = f"{kind}:{networks.base}{suffix}"
        self.model = None  # the trained trainer
        self.saved = True  # whether it is saved with the run (not when it shares a network)

    def callbacks(self, log_dir):
        return [keras.callbacks.TensorBoard(log_dir=str(log_dir))] if log_dir else []

    def fit(self, data: TrainingData, log_dir=None) -> None:
        spec, nets, c = self.spec, self.networks, self.config
        settings = trainer_settings(c)
        nets.prepare(data)
        if issubclass(spec.cls, PooledTraining):  # trained once, as the pooled network
            self.saved = nets.pooled is None
            network = nets.pooled_network(data, self.callbacks(log_dir))
            self.model = spec.create(network, **settings)
            self.model.compile(optimizer=nets.optimizer(), loss=nets.loss())
            return
        source = {
            "base": nets.build,
            "experts": lambda: nets.trained_experts(data),
            "members": nets.members,
        }[spec.needs]()
        with weights_seeded(c.seed + OWN_LAYERS_SEED):  # the learner's own layers
            self.model = spec.create(source, **settings)
        self.model.compile(optimizer=nets.optimizer(), loss=nets.loss())
        if spec.trains_on == "nothing":
            self.saved = False
        elif spec.trains_on == "windows":
            valid = data.valid_windows
            self.model.fit(
                data.fit_windows.X,
                data.fit_windows.y,
                validation_data=(valid.X, valid.y),
                epochs=c.pooled_epochs,
                batch_size=256,
                verbose=0,
                callbacks=self.callbacks(log_dir),
            )
        else:
            self._fit_episodes(data, log_dir)

    def _fit_episodes(self, data, log_dir):
        """Meta-training in up to 20 epochs of equal length, so that TensorBoard draws a
        training curve: Keras reads the one stream of `meta_steps` meta-batches on from
        epoch to epoch, so the model sees the same meta-batches in the same order as in a
        single epoch. Every `max(1, epochs // 5)` epochs (five points of 20) the loss on two fixed
        meta-batches of validation tasks (the training tasks' samples on the last
        `VALID_FRACTION` of the training dates) is logged beside it; it is only watched,
        never used to choose anything."""
        import tensorflow as tf

        c = self.config
        batches = data.tasks.meta_batches(
            c.meta_batch_size, c.support_size, c.query_size, n_batches=c.meta_steps, seed=c.seed
        )
        epochs = max(n for n in range(1, 21) if c.meta_steps % n == 0)
        start = np.min(data.valid_windows.times) if len(data.valid_windows) else None
        valid = data.tasks.select(start=start) if start is not None else []
        long_enough = [t for t in valid if len(t) >= t.episode_length(c.support_size, c.query_size)]
        validation = None
        if long_enough:  # otherwise no validation curve: no task holds one episode
            rng = np.random.default_rng([c.seed, 1])
            drawn = [
                TaskSet(long_enough).sample(c.meta_batch_size, c.support_size, c.query_size, rng)
                for _ in range(2)
            ]
            validation = tf.data.Dataset.from_tensor_slices(
                tuple(np.stack(part) for part in zip(*drawn, strict=True))
            )
        callbacks = self.callbacks(log_dir)
        amortized = isinstance(self.model, AmortizedMetaLearner)
        if log_dir and amortized:  # training tasks' embeddings, by symbol and period
            projector = Path(log_dir) / "projector"
            callbacks.append(
                TaskEmbeddingProjector.from_tasks(projector, data.tasks, c.support_size)
            )
        self.model.fit(
            batches,
            epochs=epochs,
            steps_per_epoch=c.meta_steps // epochs,
            validation_data=validation,
            validation_freq=max(1, epochs // 5),
            verbose=0,
            callbacks=callbacks,
        )
        if amortized and getattr(self.model, "memory_size", 0) and self.model.memory == "episodic":
            # The memory of past regimes: every training task, once training ends.
            past, _, _ = data.tasks.episode_batch(c.support_size, c.query_size)
            self.model.remember(past)

    def predict(self, episodes: EvaluationEpisodes) -> np.ndarray:
        if not self.spec.few_shot:  # no adaptation: forecast every query sample as it is
            return _predict_flat(self.model, episodes.batch)
        if isinstance(self.model, GradientMetaLearner):
            return chunked(self.model.predict_tasks, episodes.batch, size=TASK_CHUNK)
        if isinstance(self.model, AmortizedMetaLearner):
            return chunked(self.model.predict_tasks, episodes.batch, size=AMORTIZED_CHUNK)
        return self.model.predict_tasks(episodes.batch)

    def save(self, path: Path) -> Path | None:
        if self.model is None or not self.saved:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        self.model.save(path)
        return path


def _predict_flat(model, batch: MetaBatch) -> np.ndarray:
    """A plain network's forecasts of every query sample (no adaptation)."""
    qx = np.asarray(batch.query_x)
    flat = models.compiled_call(model, qx.reshape(-1, *qx.shape[2:]), batch_size=1024)
    return flat.reshape(*qx.shape[:2], -1)


def start_at_har(model: keras.Model, intercept, coef, slopes=True) -> keras.Model:
    """Set `model`'s head to the log-HAR fit `(intercept, coef)`.

    With `slopes` (a head that reads the features of the window's last day, as in `har`,
    `harnet` and `linear` on a one-day window) the whole head; otherwise its bias only: the
    fit at the features' training mean (zero, as they are standardized), so that every
    network starts at the mean log-HAR level.
    """
    head = model.get_layer(HEAD_PREFIX)
    kernel, bias = head.get_weights()
    if slopes and kernel.shape == np.asarray(coef).T.shape:
        return models.set_har_coefficients(model, intercept, coef)
    head.set_weights([kernel, np.asarray(intercept, dtype=bias.dtype).reshape(bias.shape)])
    return model


def make_learners(config, input_shape, output_dim, spec=None) -> list[Learner]:
    """Every learner of the config, for every base model, in the registry's order (asking
    for `finetune` brings `pooled`, whose network it fine-tunes); `spec` is the target's
    `TargetSpec` (its loss and head start; None for mean squared error)."""
    wanted = set(config.learners)
    if "finetune" in wanted:
        wanted.add("pooled")
    learners = []
    for base in config.models:
        networks = Networks(base, config, input_shape, output_dim, spec)
        learners += [Learner(kind, networks) for kind in registry.available() if kind in wanted]
    return learners
