"""Baseline forecasters on the price calendar, to line up with any model by (date, symbol).

Each baseline follows the scikit-learn estimator conventions and one contract:

    baseline = HARRV().fit(train_prices, target="variance", horizon=1, cumulative=False)
    forecasts = baseline.predict(prices)  # date, symbol, then the compute_targets columns

`fit` learns from the rows it is given; `predict` forecasts at every row of `prices` from the
rows of the same symbol up to that date (NaN before enough history), for symbols seen in
`fit` or not. `BASELINES` names them all and `available_baselines(target)` those that forecast
a target.
"""

from types import MappingProxyType

from metazoo.baselines.base import Baseline, forecasts_at
from metazoo.baselines.garch import GARCH11
from metazoo.baselines.linear import HARRV, LinearLags
from metazoo.baselines.simple import HistoricalMean, ZeroForecast
from metazoo.data.features import TARGETS

__all__ = [
    "BASELINES",
    "GARCH11",
    "HARRV",
    "Baseline",
    "HistoricalMean",
    "LinearLags",
    "ZeroForecast",
    "available_baselines",
    "forecasts_at",
]

BASELINES = MappingProxyType(
    {
        "zero": ZeroForecast,
        "historical_mean": HistoricalMean,
        "linear_lags": LinearLags,
        "har_rv": HARRV,
        "garch11": GARCH11,
    }
)
"""Read-only mapping of baseline names to classes; `cls.supported_targets` lists targets."""


def available_baselines(target: str) -> dict:
    """The baselines that forecast `target`, as `{name: class}` in `BASELINES` order.

    Args:
        target: `"return"`, `"variance"` or `"direction"`.

    Raises:
        ValueError: If the target is unknown.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}. Received: target={target!r}")
    return {name: cls for name, cls in BASELINES.items() if target in cls.supported_targets}
