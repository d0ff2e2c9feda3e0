"""Baseline forecasts for the evaluation episodes of a fold.

Calendar baselines (`metazoo.baselines`) are fitted on the price rows of the training assets
before the evaluation period and forecast every query sample from its asset's own history
up to the forecast date. `support_mean` is the few-shot naive forecast: the mean target of
the task's own support samples (what every adapting learner also sees).

For variance targets they forecast the mean daily variance over the target's horizon (their
`variance` forecast summed over the horizon, divided by it): `har_rv` (HAR on variance
levels, OLS), `har_log` (the log HAR, `HARRV(log=True)`, mapped back with Duan's smearing
factor), `garch11`, `historical_mean` and `linear_lags`; `zero` forecasts no variance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metazoo.baselines import HARRV, available_baselines, forecasts_at

VARIANCE_ONLY = ("har_rv", "har_log", "garch11")
NOT_FOR_VARIANCE = ("zero",)  # a variance of 0 is no forecast


def forecasts(config, spec, fit_frame, frame, sets, scaler):
    """Yield `(name, [forecasts per evaluation set])` in the data's units, each forecast
    array `(n_query_samples, n_targets)` in the order of `Episodes.unpad`.

    Args:
        config: the run's `ExperimentConfig` (its `baselines` are used).
        spec: the target's `TargetSpec`.
        fit_frame: price rows the baselines learn from (training assets, before test_start).
        frame: every price row of the run (forecasts read each asset's history).
        sets: the fold's `Episodes`.
        scaler: the fold's `WindowScaler` (support targets back to the data's units).
    """
    calendar = dict(available_baselines(spec.kind))
    if spec.is_variance:
        calendar["har_log"] = lambda: HARRV(log=True)
        calendar = {k: v for k, v in calendar.items() if k not in NOT_FOR_VARIANCE}
    else:  # their return forecast is the zero baseline's again
        calendar = {k: v for k, v in calendar.items() if k not in VARIANCE_ONLY}
    for name in config.baselines:
        if name == "support_mean":
            yield name, [_support_mean(episodes, scaler) for episodes in sets]
        elif name in calendar:
            model = calendar[name]().fit(
                fit_frame, target=spec.kind, horizon=spec.horizon, cumulative=spec.cumulative
            )
            table = model.predict(frame)
            columns = list(model.target_names_)
            if spec.is_variance:  # the variance over the horizon -> the mean daily variance
                table[columns] = table[columns] / spec.horizon
            yield name, [_lookup(table, columns, episodes, name) for episodes in sets]


def _support_mean(episodes, scaler) -> np.ndarray:
    means = [scaler.inverse_targets(s.y).mean(axis=0) for s in episodes.support]
    return np.repeat(np.asarray(means), episodes.lengths, axis=0)


def _lookup(table: pd.DataFrame, columns, episodes, name) -> np.ndarray:
    """The baseline's forecasts at the (date, symbol) of every query sample."""
    values = forecasts_at(table, episodes.query_windows(), columns)
    missing = int(np.isnan(values).any(axis=1).sum())
    if missing:
        raise ValueError(
            f"Baseline {name!r} has no forecast for {missing} query samples (too little "
            "history before them); use a later test_start or drop it from baselines."
        )
    return values
