"""The settings of a `metazoo run` experiment: defaults, the quick preset, files and checks."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from metazoo.data.datasets import LAYOUTS, MISSING_POLICIES
from metazoo.data.tasks import EVAL_SETS  # noqa: F401  (the evaluation sets, for readers)
from metazoo.experiment.targets import KINDS, parse_token
from metazoo.trainers import registry
from metazoo.validation import check_choice, check_count, check_positive, check_seed

BASELINE_KINDS = (
    "zero",
    "historical_mean",
    "support_mean",
    "linear_lags",
    "har_rv",
    "har_log",
    "garch11",
)
# The HAR components (`metazoo.models.HAR_FEATURES`), the default variance features.
HAR_FEATURES = ("log_rv:1", "log_rv:5", "log_rv:22")
PERIODS = ("Q", "M", "Y")  # calendar periods of a task: quarters, months, years
LEARNER_KINDS = tuple(registry.available())  # every registered trainer, in its order
# The default run's learners: what fits the default run in about 10 minutes on 2 cores over
# the bundled universe. `learners="all"` adds `scratch` (a network trained per evaluation
# task), `context_memory`, and the expert-weighting `prototypes` and `meta_averaging`
# (an expert trained per training asset).
EXPENSIVE_LEARNERS = ("scratch", "context_memory", "prototypes", "meta_averaging")
DEFAULT_LEARNERS = tuple(k for k in LEARNER_KINDS if k not in EXPENSIVE_LEARNERS)


@dataclass
class ExperimentConfig:
    """Everything a run depends on; the same config and seed give the same numbers.

    The protocol (see `metazoo.experiment.run_experiment`): each asset is evaluated on the
    last `test_fraction` of its own history (or, with `test_start`, from one calendar date
    on). The symbols are dealt into `folds` groups of held-out assets, each asset class
    spread across them (or `held_out` names one group, or `held_out_class` holds out a
    class). In each fold, learners train on the tasks of the other assets whose labels end
    `embargo` trading days before their evaluation period; they are then evaluated on (1)
    the evaluation periods of the training assets (later periods) and (2) those of the
    held-out assets. Every evaluation task (one asset over one `period`) gives its first
    `support_size` samples to adapt on and is scored on the rest.

    Attributes:
        data: CSV file of prices (long or wide); None for the bundled markets.
        missing: missing-value policy for `data` (`raise`, `drop` or `ffill`).
        layout: layout of `data`: `auto`, `long`, `single` or `wide` (see `load_prices`).
        with_bundled: add the bundled markets to `data`, and hold out the assets of `data`
            (the one fold of the run). A `data` file of one asset implies it.
        symbols: symbols to use (default all).
        targets: what to forecast: `return`, `direction`, `variance` or `variance:h` (the
            mean daily variance over the next `h` days; see `metazoo.experiment.targets`).
        lookback: days of features per window.
        horizon: trading days ahead (of tokens without their own horizon).
        period: calendar period of a task (`Q`, `M` or `Y`).
        history_years: years of each asset's history used, counted back from its last
            date (None for all); bounds the size of a run on long histories.
        test_fraction: share of each asset's forecast dates that is evaluated (its last
            ones), when `test_start` is None.
        embargo: trading days between the end of an asset's last training label and the
            start of its evaluation period.
        test_start: one calendar date at which every asset's evaluation period starts
            (instead of `test_fraction`); None for each asset's own chronology.
        test_end: last date of the evaluation period (default: the end of the data).
        folds: number of held-out asset groups (stratified by asset class where the
            classes are known); each is held out once.
        held_out: symbols held out together, as the one fold of the run (instead of
            `folds`).
        held_out_class: an asset class held out as the one fold of the run (train without
            it, test on it), e.g. `currency`.
        support_size: samples each evaluation task adapts on (K).
        query_size: query samples per meta-training episode.
        models: zoo base networks of the return and direction sections; every learner is
            run on each (the variance section takes `variance_models`).
        learners: learner kinds (see `LEARNER_KINDS`; default `DEFAULT_LEARNERS`, `["all"]`
            for every one): `pooled` (one network on every
            training window, no adaptation), `finetune` (the pooled network fine-tuned with
            `adapt_steps` gradient steps on the support set), `scratch` (a new network per
            task trained on its support set), `averaging` (`ModelAveraging`), the gradient
            meta-learners `maml`, `fomaml`, `reptile`, `meta_sgd`, `anil`, the model-based
            `context` and `context_memory` (`ContextMetaLearner` without and with an
            episodic memory of every training task's embedding, read by attention), the metric-based `prototypes` (`ExpertPrototypes`) and
            `meta_averaging` (`MetaLearnedAveraging`); the last two weight experts trained
            on each training asset and on all of them.
        baselines: baseline kinds (see `BASELINE_KINDS`); those that do not forecast a
            target are skipped for it.
        meta_batch_size: tasks per meta-batch.
        meta_steps: meta-training steps of each meta-learner.
        inner_lr: inner-loop learning rate (and fine-tuning rate).
        inner_steps: inner steps in meta-training.
        adapt_steps: gradient steps when adapting to an evaluation task.
        inner_clip_norm: global-norm clip of each inner (and fine-tuning) gradient step,
            None for none. On the bundled data the median support-set gradient norm of a
            fresh MLP is about 8 and the largest (WTI in late 2008) about 230: the clip
            keeps a crash quarter from throwing adaptation off.
        pooled_epochs: epochs of the pooled (no adaptation) networks.
        scratch_steps: Adam steps of a network trained from scratch on one support set.
        learning_rate: Adam learning rate of every outer and pooled optimizer.
        cost_bps: transaction cost per unit of turnover, in basis points.
        var_alpha: Value-at-Risk level for the risk application (e.g. 0.01).
        variance_models: base networks of the variance section (`har`, `harnet`, ...);
            each head starts at the log-HAR fit of the fold's training windows.
        variance_features: features of the variance section (scale-free ones, read on the
            window's last day).
        variance_inner_lr: `inner_lr` of the variance section.
        variance_inner_steps: `inner_steps` of the variance section.
        variance_adapt_steps: `adapt_steps` of the variance section.
        variance_meta_steps: `meta_steps` of the variance section.
        variance_pooled_epochs: `pooled_epochs` of the variance section.
        variance_learning_rate: `learning_rate` of the variance section.
        validation: run the protocol on validation periods only: every asset's evaluation
            period and the embargo before it are removed from the data first, and the same
            protocol runs on what is left (hyperparameters are chosen on these runs).
        seed: the random seed of everything.
        jobs: processes that train the run's (target, fold) parts in parallel; 0 (default)
            takes one per CPU core, at most `MAX_AUTO_JOBS` (4), and never more than there
            are parts; 1 trains them one by one in this process. Every part starts from
            `seed`, so the numbers do not depend on `jobs`.
        output: folder that receives the run folder.
        run_name: name of the run folder (default: the date and time of the run).
        quick: a reduced run for first contact and tests.
    """

    data: str | None = None
    missing: str = "raise"
    layout: str = "auto"
    with_bundled: bool = False
    symbols: list[str] | None = None
    targets: list[str] = field(default_factory=lambda: ["return", "variance", "variance:5"])
    lookback: int = 20
    horizon: int = 1
    period: str = "Q"
    history_years: float | None = 10.0
    test_fraction: float = 0.3
    embargo: int = 5
    test_start: str | None = None
    test_end: str | None = None
    folds: int = 3
    held_out: list[str] | None = None
    held_out_class: str | None = None
    support_size: int = 20
    query_size: int = 20
    models: list[str] = field(default_factory=lambda: ["mlp"])
    learners: list[str] = field(default_factory=lambda: list(DEFAULT_LEARNERS))
    baselines: list[str] = field(default_factory=lambda: list(BASELINE_KINDS))
    meta_batch_size: int = 16
    meta_steps: int = 600
    inner_lr: float = 0.01
    inner_steps: int = 1
    adapt_steps: int = 5
    inner_clip_norm: float | None = 20.0
    pooled_epochs: int = 8
    scratch_steps: int = 100
    learning_rate: float = 1e-3
    cost_bps: float = 5.0
    var_alpha: float = 0.01
    # The variance section's settings: the choice of `scripts/tune_variance.py --seed 0` on
    # validation periods (base, inner_lr, adapt_steps); see that script.
    variance_models: list[str] = field(default_factory=lambda: ["har"])
    variance_features: list[str] = field(default_factory=lambda: list(HAR_FEATURES))
    variance_inner_lr: float = 0.005
    variance_inner_steps: int = 1
    variance_adapt_steps: int = 1
    variance_meta_steps: int = 300
    variance_pooled_epochs: int = 10
    variance_learning_rate: float = 1e-3
    validation: bool = False
    seed: int = 0
    jobs: int = 0
    output: str = "metazoo_runs"
    run_name: str | None = None
    quick: bool = False

    def validated(self, zoo: bool = True) -> ExperimentConfig:
        """A checked copy, with the quick preset applied where `quick` is set.

        Args:
            zoo: also check `models` and `variance_models` against the model zoo
                (`check_zoo`). The zoo's registry imports TensorFlow, so `metazoo run`
                leaves this check to the processes that train, before they do.
        """
        config = dataclasses.replace(self)
        if config.quick:
            preset = QUICK if config.data is None else QUICK_WITH_DATA
            for name, value in preset.items():
                if getattr(config, name) == getattr(DEFAULTS, name):
                    setattr(config, name, value)
        _check(config)
        if zoo:
            check_zoo(config)
        return config

    def to_dict(self) -> dict:
        """The settings as a plain dict (what `config.json` in a run folder holds)."""
        return dataclasses.asdict(self)


DEFAULTS = ExperimentConfig()

# What `quick` changes (only where a setting was left at its default): three assets, one
# held out, two years of evaluation, short training, and the return and 1-day variance
# targets (the 5-day variance section is the 1-day one at another horizon).
QUICK = {
    "targets": ["return", "variance"],
    "symbols": ["SP500", "NASDAQ", "MSFT"],
    "held_out": ["MSFT"],
    "test_start": "2015-01-01",
    "test_end": "2016-12-31",
    "meta_steps": 60,
    "variance_meta_steps": 60,
    "pooled_epochs": 2,
    "variance_pooled_epochs": 2,
    "scratch_steps": 30,
    "learners": ["pooled", "finetune", "scratch", "averaging", "maml", "reptile", "context"],
}

# With a user's `data`, `quick` reduces sizes only: the user's assets stay the run's, each
# over its last three years.
QUICK_WITH_DATA = {
    **{
        k: v for k, v in QUICK.items() if k not in ("symbols", "held_out", "test_start", "test_end")
    },
    "history_years": 3.0,
}

_LISTS = (
    "symbols",
    "targets",
    "held_out",
    "models",
    "learners",
    "baselines",
    "variance_models",
    "variance_features",
)
_POSITIVE_INTS = (
    "lookback",
    "horizon",
    "support_size",
    "query_size",
    "meta_batch_size",
    "meta_steps",
    "inner_steps",
    "adapt_steps",
    "pooled_epochs",
    "scratch_steps",
    "folds",
    "variance_inner_steps",
    "variance_adapt_steps",
    "variance_meta_steps",
    "variance_pooled_epochs",
)


def check_zoo(config: ExperimentConfig) -> None:
    """Check that `models` and `variance_models` name networks of the model zoo (this
    imports TensorFlow, which the zoo is built on)."""
    from metazoo.models import available

    for name in ("models", "variance_models"):
        unknown = [m for m in getattr(config, name) if m not in available()]
        if unknown:
            raise ValueError(f"{name} must be among {available()}. Received unknown: {unknown}")


def _check(config: ExperimentConfig) -> None:
    for name in _LISTS:
        value = getattr(config, name)
        if isinstance(value, str):
            setattr(config, name, [part.strip() for part in value.split(",") if part.strip()])
        elif value is not None:
            setattr(config, name, list(value))
    if config.learners == ["all"]:
        config.learners = list(LEARNER_KINDS)
    for name in _POSITIVE_INTS:
        setattr(config, name, check_count(name, getattr(config, name)))
    for token in config.targets:
        parse_token(token)
    if len(set(config.targets)) != len(config.targets):
        raise ValueError(f"targets expected distinct tokens. Received: {config.targets}")
    for name, allowed in (
        ("learners", LEARNER_KINDS),
        ("baselines", BASELINE_KINDS),
    ):
        unknown = [v for v in getattr(config, name) if v not in allowed]
        if unknown:
            raise ValueError(f"{name} must be among {allowed}. Received unknown: {unknown}")
    if not config.targets:
        raise ValueError(f"targets must name at least one of {KINDS}. Received: []")
    if not config.variance_models:
        raise ValueError("variance_models must name at least one base network. Received: []")
    if not config.variance_features:
        raise ValueError("variance_features must name at least one feature. Received: []")
    if not isinstance(config.validation, bool):
        raise TypeError(f"validation expected True or False. Received: {config.validation!r}")
    if not config.models:
        raise ValueError("models must name at least one zoo model. Received: []")
    if config.layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}. Received: {config.layout!r}")
    if config.missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {MISSING_POLICIES}. Received: {config.missing!r}")
    config.inner_clip_norm = check_positive(
        "inner_clip_norm", config.inner_clip_norm, allow_none=True
    )
    for name in ("inner_lr", "learning_rate", "variance_inner_lr", "variance_learning_rate"):
        setattr(config, name, check_positive(name, getattr(config, name)))
    config.cost_bps = check_positive("cost_bps", config.cost_bps, allow_zero=True)
    config.embargo = check_count("embargo", config.embargo, minimum=0)
    config.period = check_choice("period", config.period, PERIODS)
    config.history_years = check_positive("history_years", config.history_years, allow_none=True)
    config.test_fraction = check_positive("test_fraction", config.test_fraction)
    if not config.test_fraction < 1:
        raise ValueError(
            f"test_fraction expected a number in (0, 1). Received: test_fraction={config.test_fraction!r}"
        )
    if config.held_out and config.held_out_class:
        raise ValueError(
            "held_out and held_out_class expected one of them (each names the one held-out "
            f"group of a run). Received: held_out={config.held_out}, "
            f"held_out_class={config.held_out_class!r}"
        )
    if not 0 < config.var_alpha < 0.5:
        raise ValueError(f"var_alpha must be in (0, 0.5). Received: var_alpha={config.var_alpha}")
    config.seed = check_seed("seed", config.seed)
    config.jobs = check_count("jobs", config.jobs, minimum=0)


def load_config(path) -> ExperimentConfig:
    """An `ExperimentConfig` from a YAML (`.yaml`, `.yml`) or TOML (`.toml`) file whose keys
    are its field names; unknown keys are refused."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No config file at {path}")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        values = yaml.safe_load(text) or {}
    elif path.suffix.lower() == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        values = tomllib.loads(text)
    else:
        raise ValueError(f"A config file ends in .yaml, .yml or .toml. Received: {path.name}")
    if not isinstance(values, dict):
        raise ValueError(
            f"{path} must hold a mapping of settings. Received: {type(values).__name__}"
        )
    known = {f.name for f in fields(ExperimentConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"Unknown settings in {path}: {unknown}. Known: {sorted(known)}")
    return ExperimentConfig(**values)
