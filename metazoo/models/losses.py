"""Losses for probabilistic heads and variance forecasts."""

from __future__ import annotations

import math

import keras
from keras import ops

from metazoo.validation import check_in_range


def split_gaussian(y_pred, log_var_bounds=(-20.0, 10.0)):
    """Split a probabilistic head's output `(batch, 2 * k)` into mean and log-variance `(batch, k)`.

    The log-variance is clipped to `log_var_bounds` for numerical safety.
    """
    mean, log_var = ops.split(y_pred, 2, axis=-1)
    return mean, ops.clip(log_var, *log_var_bounds)


@keras.saving.register_keras_serializable(package="metazoo")
class GaussianNLL(keras.losses.Loss):
    """Negative log-likelihood of targets under a Gaussian with predicted mean and variance.

    `y_pred` is `(batch, 2 * k)`: means, then log-variances; `y_true` is `(batch, k)`.
    Per sample: `0.5 * mean(log_var + (y - mean)^2 / exp(log_var) + log(2 pi))`.

    Args:
        log_var_bounds: clip range of the log-variance.
    """

    def __init__(self, log_var_bounds=(-20.0, 10.0), name="gaussian_nll", **kwargs):
        super().__init__(name=name, **kwargs)
        self.log_var_bounds = tuple(log_var_bounds)

    def call(self, y_true, y_pred):
        mean, log_var = split_gaussian(y_pred, self.log_var_bounds)
        y_true = ops.cast(y_true, mean.dtype)
        nll = log_var + ops.square(y_true - mean) * ops.exp(-log_var) + math.log(2 * math.pi)
        return 0.5 * ops.mean(nll, axis=-1)

    def get_config(self):
        return {**super().get_config(), "log_var_bounds": list(self.log_var_bounds)}


_LOG_VARIANCE_BOUNDS = (-30.0, 10.0)
_MIN_VARIANCE = 1e-12  # as metazoo.data.variance.MIN_VARIANCE


def _log_variance(y_pred, log_pred, bounds):
    """The log-variance forecast `m` of `y_pred`, clipped to `bounds`."""
    if not log_pred:
        y_pred = ops.log(ops.maximum(y_pred, _MIN_VARIANCE))
    return ops.clip(y_pred, *bounds)


class _VarianceLoss(keras.losses.Loss):
    """Shared arguments of the losses of a variance forecast."""

    def __init__(self, log_pred=True, log_var_bounds=_LOG_VARIANCE_BOUNDS, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if not isinstance(log_pred, bool):
            raise TypeError(f"`log_pred` expected True or False. Received: log_pred={log_pred!r}")
        low, high = (float(b) for b in log_var_bounds)
        if not low < high:
            raise ValueError(
                f"`log_var_bounds` expected (low, high) with low < high. "
                f"Received: log_var_bounds={log_var_bounds!r}"
            )
        self.log_pred = log_pred
        self.log_var_bounds = (low, high)

    def get_config(self):
        return {
            **super().get_config(),
            "log_pred": self.log_pred,
            "log_var_bounds": list(self.log_var_bounds),
        }


@keras.saving.register_keras_serializable(package="metazoo")
class QLIKE(_VarianceLoss):
    """QLIKE loss of variance forecasts: `mean(v / h - log(v / h) - 1)` over the last axis.

    `v` is the realized variance proxy and `h` the forecast (Patton 2011; the same loss as
    `metazoo.metrics.qlike`). Computed in logs, `x = log v - log h` and `exp(x) - x - 1`,
    which is 0 at a perfect forecast and smooth in `log h`. Its minimizer is `h = E[v]`:
    a model trained with QLIKE on log-variance outputs forecasts the *mean* variance, so
    `exp(output)` needs no bias correction.

    Conventions: `y_pred` is a log variance when `log_pred=True` (the default; any real
    output is a valid forecast) or a variance `> 0` (e.g. from `head="variance"`); `y_true`
    is a variance `>= 0` (`rv:<proxy>` targets) or, with `log_true=True`, a log variance
    (`log_rv:<proxy>` targets). Variances are raised to 1e-12 and log forecasts clipped to
    `log_var_bounds` for numerical safety.

    Args:
        log_pred: Whether `y_pred` is a log variance.
        log_true: Whether `y_true` is a log variance.
        log_var_bounds: Clip range of the log forecast.

    References:
        Patton, A. J. (2011). Volatility forecast comparison using imperfect volatility
        proxies. Journal of Econometrics, 160(1), 246-256.
    """

    def __init__(
        self,
        log_pred=True,
        log_true=False,
        log_var_bounds=_LOG_VARIANCE_BOUNDS,
        name="qlike",
        **kwargs,
    ):
        super().__init__(log_pred, log_var_bounds, name=name, **kwargs)
        if not isinstance(log_true, bool):
            raise TypeError(f"`log_true` expected True or False. Received: log_true={log_true!r}")
        self.log_true = log_true

    def call(self, y_true, y_pred):
        m = _log_variance(y_pred, self.log_pred, self.log_var_bounds)
        y_true = ops.cast(y_true, m.dtype)
        log_v = y_true if self.log_true else ops.log(ops.maximum(y_true, _MIN_VARIANCE))
        x = log_v - m
        return ops.mean(ops.exp(x) - x - 1.0, axis=-1)

    def get_config(self):
        return {**super().get_config(), "log_true": self.log_true}


@keras.saving.register_keras_serializable(package="metazoo")
class GaussianVarianceNLL(_VarianceLoss):
    """Negative log-likelihood of returns under a zero-mean Gaussian of forecast variance.

    `y_true` holds returns `r`, `y_pred` the log variance `m` (`log_pred=True`) or the
    variance `h = exp(m)`. Per sample, the mean over the last axis of
    `0.5 * (log(2 pi) + m + r^2 exp(-m))`: half the QLIKE of `h` against `r^2`, plus a
    constant. (`GaussianNLL` is the loss of a mean and log-variance head instead.)

    Args:
        log_pred: Whether `y_pred` is a log variance.
        log_var_bounds: Clip range of the log forecast.
    """

    def __init__(
        self,
        log_pred=True,
        log_var_bounds=_LOG_VARIANCE_BOUNDS,
        name="gaussian_variance_nll",
        **kwargs,
    ):
        super().__init__(log_pred, log_var_bounds, name=name, **kwargs)

    def call(self, y_true, y_pred):
        m = _log_variance(y_pred, self.log_pred, self.log_var_bounds)
        r = ops.cast(y_true, m.dtype)
        return 0.5 * ops.mean(math.log(2 * math.pi) + m + ops.square(r) * ops.exp(-m), axis=-1)


@keras.saving.register_keras_serializable(package="metazoo")
class StudentTVarianceNLL(_VarianceLoss):
    """Negative log-likelihood of returns under a zero-mean Student t of forecast variance.

    The t with `dof` degrees of freedom scaled to variance `h` (scale^2 = h (dof - 2) / dof),
    for the fat tails of daily returns. Per entry, with `m = log h` and `n = dof`:
    `-lgamma((n + 1) / 2) + lgamma(n / 2) + 0.5 log(pi (n - 2)) + 0.5 m
    + (n + 1) / 2 * log(1 + r^2 exp(-m) / (n - 2))`, averaged over the last axis.

    Args:
        dof: Degrees of freedom, a number > 2 (finite variance); fixed, not learned.
        log_pred: Whether `y_pred` is a log variance.
        log_var_bounds: Clip range of the log forecast.
    """

    def __init__(
        self,
        dof=5.0,
        log_pred=True,
        log_var_bounds=_LOG_VARIANCE_BOUNDS,
        name="student_t_variance_nll",
        **kwargs,
    ):
        super().__init__(log_pred, log_var_bounds, name=name, **kwargs)
        self.dof = check_in_range("dof", dof, 2.0)  # > 2: a finite variance

    def call(self, y_true, y_pred):
        m = _log_variance(y_pred, self.log_pred, self.log_var_bounds)
        r = ops.cast(y_true, m.dtype)
        n = self.dof
        constant = (
            -math.lgamma((n + 1) / 2) + math.lgamma(n / 2) + 0.5 * math.log(math.pi * (n - 2))
        )
        tail = 0.5 * (n + 1) * ops.log1p(ops.square(r) * ops.exp(-m) / (n - 2))
        return ops.mean(constant + 0.5 * m + tail, axis=-1)

    def get_config(self):
        return {**super().get_config(), "dof": self.dof}
