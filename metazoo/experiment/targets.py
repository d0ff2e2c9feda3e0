"""What each experiment target is: the data it is made of, the loss learners train with and
how their outputs become forecasts in the data's units.

A target token of `ExperimentConfig.targets` is a kind, `return`, `direction` or
`variance`, optionally with a horizon: `variance:5` is the mean daily variance over the next
5 trading days. A token without a horizon takes the config's `horizon`.

* `return`, `direction`: the windows of `make_windows(target=kind)` over the config's
  `lookback` and default features, targets standardized with the training windows'
  statistics, trained with mean squared error; forecasts are mapped back with the scaler.
* `variance`: the data target `rv:squared_return` with `cumulative=True` (the mean daily
  squared log return over the horizon, the one proxy every model is scored against: many
  bundled assets have closes only), features `variance_features` (by default the HAR
  components `log_rv:1`, `log_rv:5`, `log_rv:22`, scale-free) of the last day
  (`lookback` 1), standardized with the training windows' statistics; the targets are not
  scaled. Every network outputs a log variance and trains with `QLIKE(log_pred=True)`,
  whose minimizer is the mean variance, so `exp(output)` is the forecast: positive by
  construction, no bias factor, nothing floored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metazoo.validation import check_count

KINDS = ("return", "variance", "direction")
VARIANCE_PROXY = "squared_return"  # the one realized-variance proxy of the variance section


@dataclass(frozen=True)
class TargetSpec:
    """One experiment target.

    Attributes:
        token: the token of `ExperimentConfig.targets` (e.g. `variance:5`); the `target`
            column of the predictions carries it.
        kind: `return`, `variance` or `direction`.
        horizon: trading days ahead.
        data_target: the target of `make_windows` / `compute_targets`.
        cumulative: one target over the horizon (the mean daily variance) instead of one
            per day.
        features: feature names of the windows (None for the default features).
        lookback: rows of features per window.
        scale_targets: standardize the targets with the training windows' statistics.
        log_output: networks output a log variance (forecast = `exp(output)`), trained with
            `QLIKE(log_pred=True)`; otherwise outputs are in the (scaled) target units and
            trained with mean squared error.
    """

    token: str
    kind: str
    horizon: int
    data_target: str
    cumulative: bool
    features: tuple | None
    lookback: int
    scale_targets: bool
    log_output: bool

    @property
    def is_variance(self) -> bool:
        return self.kind == "variance"

    @property
    def scores_risk(self) -> bool:
        """Whether the forecasts are also scored as value-at-risk (1-day variance
        targets): their calibrated VaR is read from in-sample episodes."""
        return self.is_variance and self.horizon == 1

    def loss(self):
        """A fresh loss for one learner or network."""
        if self.log_output:
            from metazoo.models import QLIKE

            return QLIKE(log_pred=True)
        return "mse"

    def to_data_units(self, outputs) -> np.ndarray:
        """Outputs of a network (after the scaler's `inverse_targets`) in the data's units."""
        outputs = np.asarray(outputs, dtype=np.float64)
        return np.exp(outputs) if self.log_output else outputs


def parse_token(token) -> tuple[str, int | None]:
    """`(kind, horizon or None)` of a target token such as `variance` or `variance:5`."""
    if not isinstance(token, str):
        raise TypeError(f"targets expected strings such as 'variance:5'. Received: {token!r}")
    kind, sep, rest = token.partition(":")
    if kind not in KINDS:
        raise ValueError(
            f"targets expected tokens among {KINDS}, optionally with a horizon "
            f"(e.g. 'variance:5'). Received: {token!r}"
        )
    if not sep:
        return kind, None
    if kind != "variance":
        raise ValueError(
            f"targets expected a horizon on variance tokens only (set `horizon` for "
            f"{kind!r}). Received: {token!r}"
        )
    if not rest.isdigit() or int(rest) < 1:
        raise ValueError(
            f"targets expected a horizon of 1 or more trading days after ':' "
            f"(e.g. 'variance:5'). Received: {token!r}"
        )
    return kind, int(rest)


def target_kind(token) -> str:
    """The kind of a target token: `"variance"` for `"variance:5"`."""
    return parse_token(token)[0]


def target_horizon(token, default: int) -> int:
    """The horizon in trading days of a target token: the number after `:`, else
    `default` (the run's `horizon`, which a token without one takes)."""
    _, horizon = parse_token(token)
    return check_count("default", default) if horizon is None else horizon


def target_spec(token: str, config) -> TargetSpec:
    """The `TargetSpec` of `token` under `config` (an `ExperimentConfig`)."""
    kind, horizon = parse_token(token)
    horizon = config.horizon if horizon is None else horizon
    if kind == "variance":
        return TargetSpec(
            token=token,
            kind=kind,
            horizon=horizon,
            data_target=f"rv:{VARIANCE_PROXY}",
            cumulative=True,
            features=tuple(config.variance_features),
            lookback=1,
            scale_targets=False,
            log_output=True,
        )
    return TargetSpec(
        token=token,
        kind=kind,
        horizon=horizon,
        data_target=kind,
        cumulative=False,
        features=None,
        lookback=config.lookback,
        scale_targets=True,
        log_output=False,
    )


def section_config(config, spec: TargetSpec):
    """`config` with the settings of `spec`'s section: for variance targets the
    `variance_*` fields replace the trainers' settings and base networks."""
    import dataclasses

    if not spec.is_variance:
        return config
    return dataclasses.replace(
        config,
        models=list(config.variance_models),
        inner_lr=config.variance_inner_lr,
        inner_steps=config.variance_inner_steps,
        adapt_steps=config.variance_adapt_steps,
        meta_steps=config.variance_meta_steps,
        pooled_epochs=config.variance_pooled_epochs,
        learning_rate=config.variance_learning_rate,
    )
