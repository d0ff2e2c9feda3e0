"""Synthetic task families with known ground truth, for testing and benchmarking meta-learners.

- `SinusoidTasks`: few-shot sine regression (Finn et al., 2017).
- `ARTasks`: one-step forecasts of stationary AR(p) processes, whose Bayes error is known.
- `RegimeSwitchingTasks`: volatility forecasts under two-state Markov switching (Hamilton, 1989).

In the two time-series families every task is one simulated series. Support windows come from
an earlier stretch of it and query windows from the stretch right after (see
`series_episodes`), so nothing the support set sees, inputs or targets, reappears in the query.
"""

from __future__ import annotations

import numpy as np

from metazoo.data.episodes import MetaBatch, check_meta_batch, meta_batch_dataset
from metazoo.validation import (
    check_choice,
    check_count,
    check_in_range,
    check_interval,
    check_positive,
)

_VOL_JITTER = (0.8, 1.25)
_TARGETS = ("variance", "return")


def _require(ok: bool, expected: str, **received) -> None:
    """Raise a `ValueError` saying what was expected and what was received, unless `ok`."""
    if not ok:
        shown = ", ".join(f"{name}={value!r}" for name, value in received.items())
        raise ValueError(f"{expected}. Received: {shown}")


def _generator(seed, rng) -> np.random.Generator:
    _require(seed is None or rng is None, "Pass at most one of seed and rng", seed=seed, rng=rng)
    return rng if rng is not None else np.random.default_rng(seed)


def series_episodes(series, lookback: int, support_size: int, query_size: int) -> MetaBatch:
    """Cut each task's series into support windows and the query windows that follow them.

    Uses the last `2 * lookback + support_size + query_size` values of each series. The first
    `lookback + support_size` of them give the support samples: sample `i` has inputs
    `values[i : i + lookback]` and target `values[i + lookback]`. The remaining
    `lookback + query_size` give the query samples the same way, so the first query input
    comes right after the last support target and origins are consecutive within each set.

    Args:
        series: `(n_tasks, n_steps)` values, oldest first.
        lookback: window length.
        support_size: support samples per task.
        query_size: query samples per task.

    Returns:
        `MetaBatch` of the series' dtype: x `(n_tasks, size, lookback, 1)`, y `(n_tasks, size, 1)`.
    """
    series = np.asarray(series)
    needed = 2 * lookback + support_size + query_size
    _require(
        series.ndim == 2 and series.shape[1] >= needed,
        f"series must be (n_tasks, n_steps) with n_steps >= {needed}",
        series_shape=series.shape,
    )
    values = series[:, series.shape[1] - needed :]
    split = lookback + support_size
    support_x, support_y = _cut_windows(values[:, :split], lookback)
    query_x, query_y = _cut_windows(values[:, split:], lookback)
    return MetaBatch(support_x, support_y, query_x, query_y)


def _cut_windows(values: np.ndarray, lookback: int) -> tuple[np.ndarray, np.ndarray]:
    windows = np.lib.stride_tricks.sliding_window_view(values, lookback + 1, axis=1)
    return np.ascontiguousarray(windows[..., :-1, None]), np.ascontiguousarray(windows[..., -1:])


class _TaskFamily:
    """Sampling interface shared by the families; subclasses implement `_draw`."""

    _fields: tuple[str, ...] = ()

    def sample(self, n_tasks, support_size, query_size, seed=None, rng=None, return_params=False):
        """Draw a meta-batch of new tasks.

        Args:
            n_tasks: tasks in the meta-batch.
            support_size: support samples per task.
            query_size: query samples per task.
            seed: seed of a fresh generator; give at most one of `seed` and `rng`.
            rng: a `numpy.random.Generator` to draw from.
            return_params: also return the tasks' true parameters.

        Returns:
            A float32 `MetaBatch`; with `return_params`, the pair `(batch, params)` where
            `params` maps names (listed in the class docstring) to arrays with a task axis first.
        """
        n_tasks = check_count("n_tasks", n_tasks, 1, allow_float=False)
        support_size = check_count("support_size", support_size, 1, allow_float=False)
        query_size = check_count("query_size", query_size, 1, allow_float=False)
        batch, params = self._draw(n_tasks, support_size, query_size, _generator(seed, rng))
        batch = check_meta_batch(batch)
        return (batch, params) if return_params else batch

    def dataset(self, meta_batch_size, support_size, query_size, n_batches=None, seed=0):
        """A reproducible `tf.data.Dataset` of meta-batches; see `meta_batch_dataset`.

        Args:
            meta_batch_size: tasks per meta-batch.
            support_size: support samples per task.
            query_size: query samples per task.
            n_batches: meta-batches per pass; `None` for an endless stream.
            seed: base seed.
        """
        sizes = (
            check_count("meta_batch_size", meta_batch_size, 1, allow_float=False),
            check_count("support_size", support_size, 1, allow_float=False),
            check_count("query_size", query_size, 1, allow_float=False),
        )

        def sample(rng):  # checked once, by the stream (the same draws as `sample`)
            return self._draw(*sizes, rng)[0]

        return meta_batch_dataset(sample, n_batches, seed)

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({args})"

    def _draw(self, n_tasks, support_size, query_size, rng):
        raise NotImplementedError


class SinusoidTasks(_TaskFamily):
    """Sine regression: each task is `y = amplitude * sin(x - phase) + noise`.

    The paper gives the ranges (amplitude in [0.1, 5], phase in [0, pi], x in [-5, 5]); the
    minus sign follows its reference implementation. Amplitude and phase are uniform per task;
    support and query inputs are drawn independently and uniformly from `x_range`.
    Shapes: x `(n_tasks, size, 1)`, y `(n_tasks, size, 1)`. Params: `amplitude`, `phase`,
    each `(n_tasks,)`.

    Args:
        amplitude_range: `(low, high)`, `0 <= low <= high`.
        phase_range: `(low, high)` in radians.
        x_range: `(low, high)` of the inputs.
        noise_std: standard deviation of Gaussian noise added to y, `>= 0`.

    References:
        Finn, Abbeel, Levine (2017). Model-Agnostic Meta-Learning for Fast Adaptation of Deep
        Networks. ICML, section 5.1.
    """

    _fields = ("amplitude_range", "phase_range", "x_range", "noise_std")

    def __init__(
        self,
        amplitude_range=(0.1, 5.0),
        phase_range=(0.0, np.pi),
        x_range=(-5.0, 5.0),
        noise_std=0.0,
    ):
        self.amplitude_range = check_interval("amplitude_range", amplitude_range, lower=0.0)
        self.phase_range = check_interval("phase_range", phase_range)
        self.x_range = check_interval("x_range", x_range)
        self.noise_std = check_positive("noise_std", noise_std, allow_zero=True)

    def _draw(self, n_tasks, support_size, query_size, rng):
        amplitude = rng.uniform(*self.amplitude_range, size=n_tasks)
        phase = rng.uniform(*self.phase_range, size=n_tasks)

        def points(size):
            x = rng.uniform(*self.x_range, size=(n_tasks, size, 1))
            y = amplitude[:, None, None] * np.sin(x - phase[:, None, None])
            return x, y + self.noise_std * rng.standard_normal(y.shape)

        batch = MetaBatch(*points(support_size), *points(query_size))
        return batch, {"amplitude": amplitude, "phase": phase}


def pacf_to_ar(pacf) -> np.ndarray:
    """Map partial autocorrelations in (-1, 1) to the coefficients of a stationary AR process.

    The Durbin-Levinson recursion: `phi_k = (phi_{k-1} - r_k * reversed(phi_{k-1}), r_k)`.
    It is a bijection between `(-1, 1)^p` and the stationary region of AR(p) coefficients.

    Args:
        pacf: `(n_tasks, order)` partial autocorrelations.

    Returns:
        `(n_tasks, order)` coefficients `phi` of `x_t = sum_i phi_i x_{t-i} + eps_t`.

    References:
        Barndorff-Nielsen, Schou (1973). On the parametrization of autoregressive models by
        partial autocorrelations. Journal of Multivariate Analysis 3(4).
        Monahan (1984). A note on enforcing stationarity in autoregressive-moving average
        models. Biometrika 71(2).
    """
    pacf = np.asarray(pacf, dtype=np.float64)
    _require(pacf.ndim == 2, "pacf expected shape (n_tasks, order)", pacf_shape=pacf.shape)
    phi = pacf[:, :0]
    for k in range(pacf.shape[1]):
        r = pacf[:, k : k + 1]
        phi = np.concatenate([phi - r * phi[:, ::-1], r], axis=1)
    return phi


class ARTasks(_TaskFamily):
    """One-step forecasts of stationary AR(p) processes, one process per task.

    Each task draws partial autocorrelations uniformly in `(-max_pacf, max_pacf)`, maps them to
    coefficients with `pacf_to_ar` (so every process is stationary), and simulates
    `x_t = sum_i phi_i x_{t-i} + eps_t`, `eps_t ~ N(0, noise_std^2)`, from zeros, dropping the
    first `burn_in` steps. Windows are cut by `series_episodes`.
    Shapes: x `(n_tasks, size, lookback, 1)`, y `(n_tasks, size, 1)`. Params: `coefficients`
    `(n_tasks, order)`, `pacf` `(n_tasks, order)`, and `bayes_mse` `(n_tasks,)`, the mean
    squared error of the Bayes-optimal forecast `bayes_predict`, equal to `noise_std^2`.

    With `unit_variance=True` each series is divided by its stationary standard deviation
    `sqrt(gamma_0)`, where `gamma_0 = noise_std^2 / prod_k (1 - pacf_k^2)` (the
    Durbin-Levinson identity), as a scaler would do; the Bayes MSE of a task is then
    `prod_k (1 - pacf_k^2)`: strongly autocorrelated tasks are the most predictable.

    Args:
        order: AR order p, `>= 1`.
        lookback: window length, `>= order`; defaults to `order`.
        noise_std: innovation standard deviation, `> 0`.
        max_pacf: bound on the partial autocorrelations, in `(0, 1)`.
        burn_in: simulated steps dropped before the first window, `>= 0`.
        unit_variance: scale every series to unit stationary variance.

    References:
        Monahan (1984). A note on enforcing stationarity in autoregressive-moving average
        models. Biometrika 71(2).
    """

    _fields = ("order", "lookback", "noise_std", "max_pacf", "burn_in", "unit_variance")

    def __init__(
        self,
        order=2,
        lookback=None,
        noise_std=1.0,
        max_pacf=0.9,
        burn_in=100,
        unit_variance=False,
    ):
        self.order = check_count("order", order, 1, allow_float=False)
        self.lookback = (
            self.order
            if lookback is None
            else check_count("lookback", lookback, 1, allow_float=False)
        )
        _require(
            self.lookback >= self.order,
            "lookback expected an integer >= order",
            lookback=lookback,
            order=order,
        )
        self.noise_std = check_positive("noise_std", noise_std)
        self.max_pacf = check_in_range("max_pacf", max_pacf, 0.0, 1.0)
        self.burn_in = check_count("burn_in", burn_in, 0, allow_float=False)
        self.unit_variance = bool(unit_variance)

    @staticmethod
    def bayes_predict(x, coefficients) -> np.ndarray:
        """The conditional mean `E[x_{t+1} | x_t, x_{t-1}, ...] = sum_i phi_i x_{t+1-i}`.

        Args:
            x: `(n_tasks, n_samples, lookback, 1)` windows, oldest first, `lookback >= order`.
            coefficients: `(n_tasks, order)` AR coefficients of each task.

        Returns:
            `(n_tasks, n_samples, 1)` float32 forecasts.
        """
        x = np.asarray(x, dtype=np.float64)
        coefficients = np.asarray(coefficients, dtype=np.float64)
        _require(
            x.ndim == 4
            and coefficients.ndim == 2
            and x.shape[0] == coefficients.shape[0]
            and x.shape[2] >= coefficients.shape[1],
            "x must be (n_tasks, n_samples, lookback, 1) and coefficients (n_tasks, order) "
            "with lookback >= order",
            x_shape=x.shape,
            coefficients_shape=coefficients.shape,
        )
        recent = x[:, :, x.shape[2] - coefficients.shape[1] :, 0]
        forecast = np.einsum("tsl,tl->ts", recent, coefficients[:, ::-1])
        return forecast[..., None].astype(np.float32)

    def _draw(self, n_tasks, support_size, query_size, rng):
        pacf = rng.uniform(-self.max_pacf, self.max_pacf, size=(n_tasks, self.order))
        coefficients = pacf_to_ar(pacf)
        n_steps = self.burn_in + 2 * self.lookback + support_size + query_size
        noise = self.noise_std * rng.standard_normal((n_tasks, n_steps))
        values = np.zeros((n_tasks, self.order + n_steps))
        lag_weights = coefficients[:, ::-1]
        for t in range(n_steps):
            values[:, self.order + t] = (lag_weights * values[:, t : t + self.order]).sum(1)
            values[:, self.order + t] += noise[:, t]
        bayes_mse = np.full(n_tasks, self.noise_std**2)
        if self.unit_variance:
            retained = np.prod(1.0 - pacf**2, axis=1)  # noise variance / stationary variance
            values = values / (self.noise_std / np.sqrt(retained))[:, None]
            bayes_mse = retained
        batch = series_episodes(values, self.lookback, support_size, query_size)
        return batch, {"coefficients": coefficients, "pacf": pacf, "bayes_mse": bayes_mse}


class RegimeSwitchingTasks(_TaskFamily):
    """Volatility forecasts under a two-state Markov-switching model, one chain per task.

    The hidden regime `s_t` (0 low, 1 high volatility) is a Markov chain started from its
    stationary law, staying in regime `j` with probability `stay_j` drawn per task uniformly
    in `stay_prob`. Returns are `r_t = sigma_{s_t} * eps_t`, `eps_t ~ N(0, 1)`, with
    `sigma_low = vol_low * u` and `sigma_high = vol_high * v`, `u, v ~ U(0.8, 1.25)` per task.
    Inputs are the last `lookback` returns; the target is `r_{t+1}^2` (`target="variance"`) or
    `r_{t+1}` (`target="return"`). Windows are cut by `series_episodes`.
    Shapes: x `(n_tasks, size, lookback, 1)`, y `(n_tasks, size, 1)`. Params, each
    `(n_tasks,)`: `sigma_low`, `sigma_high`, `stay_low`, `stay_high`; and `(n_tasks,
    query_size)`: `query_regime`, the regime at each query origin t, and `true_variance`,
    `E[r_{t+1}^2 | s_t] = sum_j P(s_{t+1} = j | s_t) sigma_j^2`, the forecast of an oracle
    that knows the current regime.

    Args:
        vol_low: typical volatility of the low regime, `> 0`.
        vol_high: typical volatility of the high regime, `>= vol_low`.
        stay_prob: `(low, high)` range of the stay probabilities, inside `(0, 1)`.
        lookback: window length, `>= 1`.
        target: `"variance"` or `"return"`.

    References:
        Hamilton (1989). A new approach to the economic analysis of nonstationary time series
        and the business cycle. Econometrica 57(2).
    """

    _fields = ("vol_low", "vol_high", "stay_prob", "lookback", "target")

    def __init__(
        self, vol_low=0.01, vol_high=0.03, stay_prob=(0.95, 0.99), lookback=20, target="variance"
    ):
        check_positive("vol_low", vol_low)
        _require(
            vol_low <= vol_high < np.inf,
            "vol_high expected a finite number >= vol_low",
            vol_low=vol_low,
            vol_high=vol_high,
        )
        self.vol_low = float(vol_low)
        self.vol_high = float(vol_high)
        self.stay_prob = check_interval("stay_prob", stay_prob)
        _require(
            0.0 < self.stay_prob[0] and self.stay_prob[1] < 1.0,
            "stay_prob expected bounds strictly inside (0, 1)",
            stay_prob=stay_prob,
        )
        self.lookback = check_count("lookback", lookback, 1, allow_float=False)
        self.target = check_choice("target", target, _TARGETS)

    def _draw(self, n_tasks, support_size, query_size, rng):
        vols = np.array([self.vol_low, self.vol_high])
        sigma = vols * rng.uniform(*_VOL_JITTER, size=(n_tasks, 2))
        stay = rng.uniform(*self.stay_prob, size=(n_tasks, 2))
        n_steps = 2 * self.lookback + support_size + query_size
        regimes = _markov_chain(stay, n_steps, rng)
        returns = np.take_along_axis(sigma, regimes, axis=1) * rng.standard_normal(regimes.shape)
        batch = series_episodes(returns, self.lookback, support_size, query_size)
        if self.target == "variance":
            batch = batch._replace(support_y=batch.support_y**2, query_y=batch.query_y**2)
        regime_windows = series_episodes(regimes, self.lookback, support_size, query_size)
        origin = regime_windows.query_x[:, :, -1, 0]
        params = {
            "sigma_low": sigma[:, 0],
            "sigma_high": sigma[:, 1],
            "stay_low": stay[:, 0],
            "stay_high": stay[:, 1],
            "query_regime": origin,
            "true_variance": _next_variance(sigma, stay, origin),
        }
        return batch, params


def _next_variance(sigma: np.ndarray, stay: np.ndarray, regime: np.ndarray) -> np.ndarray:
    """`E[r_{t+1}^2 | s_t]` for `(n_tasks, 2)` sigma and stay, `(n_tasks, n)` regimes s_t."""
    stay_now = np.take_along_axis(stay, regime, axis=1)
    own = np.take_along_axis(sigma**2, regime, axis=1)
    other = np.take_along_axis(sigma**2, 1 - regime, axis=1)
    return stay_now * own + (1.0 - stay_now) * other


def _markov_chain(stay: np.ndarray, n_steps: int, rng: np.random.Generator) -> np.ndarray:
    """`(n_tasks, n_steps)` two-state chains from their stationary law; `stay` is `(n_tasks, 2)`."""
    leave = 1.0 - stay
    uniforms = rng.uniform(size=(stay.shape[0], n_steps))
    states = np.empty(uniforms.shape, dtype=np.int64)
    states[:, 0] = uniforms[:, 0] < leave[:, 0] / (leave[:, 0] + leave[:, 1])
    rows = np.arange(stay.shape[0])
    for t in range(1, n_steps):
        previous = states[:, t - 1]
        states[:, t] = np.where(uniforms[:, t] < stay[rows, previous], previous, 1 - previous)
    return states
