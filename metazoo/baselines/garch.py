"""GARCH(1,1) variance forecasts, fitted with the `arch` package and filtered causally."""

from __future__ import annotations

import numpy as np
import pandas as pd
from arch import arch_model
from scipy.signal import lfilter

from metazoo.baselines.base import Baseline, log_returns
from metazoo.validation import check_choice

__all__ = ["GARCH11"]

_SCALE = 100.0  # returns in percent help the optimizer
_MEANS = ("zero", "constant")
_MIN_RETURNS = 50
_PARAMS = ("mu", "omega", "alpha", "beta")


class GARCH11(Baseline):
    """GARCH(1,1) with Gaussian errors, one model per symbol (Bollerslev 1986).

    `fit` estimates, per symbol of the fit frame, `r_t = mu + e_t` with
    `s_{t+1} = omega + alpha e_t^2 + beta s_t` on daily log returns in percent (times 100),
    through `arch.arch_model`. The parameters are then frozen: `predict` runs the recursion
    through the frame it is given with them, so the forecast at `t` reads only returns up to
    `t`. Each symbol starts, at its first row, from its start variance: the sample variance
    of its fit residuals, as `arch` starts its own filter from a backcast of the data (not the
    unconditional variance `omega / (1 - alpha - beta)`: a near-integrated fit, such as
    AAPL's 2016 closes give, `alpha ~ 0, beta ~ 0.996, omega ~ 0`, has an unconditional
    variance five orders of magnitude below the data's). A symbol not seen in `fit` gets the
    average of the per-symbol parameters and start variances.

    Forecasts, in the units of the targets (not percent):

    - `"variance"`: `E[r_{t+j}^2] = s_{t+j|t} + mu^2` for each day ahead `j`, with
      `s_{t+j|t} = omega + (alpha + beta) s_{t+j-1|t}`, summed for the cumulative target.
    - `"return"`: the mean `mu` for each day ahead (`h * mu` summed); 0 with `mean="zero"`.

    Args:
        mean: `"zero"` or `"constant"` mean.

    Attributes:
        params_: DataFrame of `mu, omega, alpha, beta, start_variance` per symbol (index), in
            percent units.
        pooled_params_: Series of their averages, used for symbols not seen in `fit`.

    References:
        Bollerslev, T. (1986). Generalized autoregressive conditional heteroskedasticity.
        Journal of Econometrics, 31(3), 307-327.
    """

    supported_targets = ("return", "variance")

    def __init__(self, mean="zero"):
        self.mean = mean

    def _check_params(self):
        check_choice("mean", self.mean, _MEANS)

    def _fit(self, prices, y):
        returns = log_returns(prices) * _SCALE
        rows = {}
        for symbol, index in prices.groupby("symbol", sort=True).indices.items():
            series = returns[index][1:]
            if series.size < _MIN_RETURNS or np.isnan(series).any():
                raise ValueError(
                    f"GARCH11 needs at least {_MIN_RETURNS} finite daily returns per symbol "
                    f"to fit. Received: {np.isfinite(series).sum()} for symbol {symbol!r}"
                )
            rows[symbol] = self._fit_one(series)
        self.params_ = pd.DataFrame.from_dict(rows, orient="index")
        self.pooled_params_ = self.params_.mean()

    def _fit_one(self, series: np.ndarray) -> dict:
        model = arch_model(series, mean=self.mean, vol="GARCH", p=1, q=1, rescale=False)
        result = model.fit(disp="off")  # arch warns itself if the optimizer fails
        params = {name: float(result.params.get(name, 0.0)) for name in _PARAMS}
        params["alpha"] = float(result.params["alpha[1]"])
        params["beta"] = float(result.params["beta[1]"])
        params["start_variance"] = float(np.var(series - params["mu"]))
        return params

    def _predict(self, prices):
        returns = log_returns(prices) * _SCALE
        out = np.full((len(prices), len(self.target_names_)), np.nan)
        for symbol, index in prices.groupby("symbol", sort=False).indices.items():
            params = self.params_.loc[symbol] if symbol in self.params_.index else None
            params = self.pooled_params_ if params is None else params
            per_day = self._per_day(returns[index], params)
            out[index] = self._sum_over_horizon(per_day) / (
                _SCALE**2 if self.target_ == "variance" else _SCALE
            )
        return out

    def _per_day(self, returns: np.ndarray, params: pd.Series) -> np.ndarray:
        """`(n, horizon)` forecasts of each day ahead, in percent units, for one symbol."""
        mu, omega, alpha, beta = (float(params[name]) for name in _PARAMS)
        if self.target_ == "return":
            return np.full((returns.size, self.horizon_), mu)
        # one-step variance s_{t+1|t} at each row t; row 0 has no return yet
        shocks = omega + alpha * (returns[1:] - mu) ** 2
        start = float(params["start_variance"])
        later = lfilter([1.0], [1.0, -beta], shocks, zi=[beta * start])[0]
        steps = [np.concatenate([[start], later])]
        for _ in range(1, self.horizon_):
            steps.append(omega + (alpha + beta) * steps[-1])
        return np.column_stack(steps) + mu**2
