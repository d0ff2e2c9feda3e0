"""A trained learner as a self-contained forecaster: from raw prices to a forecast.

A `Forecaster` holds a trained learner together with everything needed to apply it to
prices it has never seen: the feature list, the lookback, the data's target (`return`,
`rv:squared_return`, ...), the horizon, the fitted scaler statistics and the map from the
learner's outputs back to the data's units. `save(path)` writes one folder (`model.keras`
and `forecaster.json`); `metazoo.load_forecaster(path)` reads it back, with no knowledge
of how the learner was trained.

Example:
    ```python
    forecaster = metazoo.load_forecaster("runs/.../models/return/MSFT/maml_mlp")
    prices = metazoo.data.load_prices("my.csv")
    forecaster.forecast(prices, support_days=20)   # one row per symbol
    ```
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from metazoo import data as mdata
from metazoo.data import features as mfeatures
from metazoo.data import variance as mvariance
from metazoo.validation import check_choice, check_count

OUTPUTS = ("identity", "inverse_scaling", "exp")
"""How a learner's outputs become the data's units: as they are, through the inverse of
the target standardization, or `exp` of a log-variance output."""

MODEL_FILE = "model.keras"
SPEC_FILE = "forecaster.json"
FORMAT = 1
SHIPPED = Path(__file__).resolve().parent / "forecasters" / "variance_1d"
"""The forecaster shipped with the package (see `scripts/build_forecaster.py`)."""
Z_95 = 1.959963984540054  # the two-sided 95% quantile of the standard normal
EWM_MEMORY = 5  # extra rows (times the window) read for features with an infinite memory


class Forecaster:
    """A trained learner with the recipe that turns raw prices into its inputs.

    Args:
        model: the trained learner: a trainer of `metazoo.trainers.registry` (anything with
            `predict_tasks`, which adapts on each task's support set: gradient
            meta-learners, amortized ones, `Pooled`, `FineTuned`) or a plain Keras model
            (applied to the last window as it is).
        features: feature names of the inputs, in order (see `metazoo.data.features`).
        lookback: rows of features per input window.
        target: the data's target, e.g. `"return"` or `"rv:squared_return"`.
        horizon: trading days ahead.
        cumulative: one target over the whole horizon (see `make_windows`).
        support_size: support windows to adapt on when `forecast` is not told.
        feature_mean, feature_scale: `(n_features,)` standardization of the inputs (the
            fitted `WindowScaler`'s `mean_` and `scale_`); None for unscaled inputs.
        target_mean, target_scale: `(n_targets,)` standardization of the targets; None if
            the learner was trained on unscaled targets.
        output: how outputs map to the data's units, one of `OUTPUTS`; default
            `"inverse_scaling"` when the targets are scaled, else `"identity"`.
        adapt_steps: inner steps when adapting (gradient meta-learners); None for the
            learner's own.
        info: JSON-serializable notes kept with the forecaster (what it was trained on).
    """

    def __init__(
        self,
        model,
        features,
        lookback,
        target,
        horizon=1,
        cumulative=False,
        support_size=20,
        feature_mean=None,
        feature_scale=None,
        target_mean=None,
        target_scale=None,
        output=None,
        adapt_steps=None,
        info=None,
    ):
        self.model = model
        self.features = tuple(str(f) for f in features)
        for name in self.features:
            mfeatures.parse_feature(name)
        self.lookback = check_count("lookback", lookback)
        self.target = check_choice("target", target, mfeatures.TARGETS + mfeatures.VARIANCE_TARGETS)
        self.horizon = check_count("horizon", horizon)
        self.cumulative = bool(cumulative)
        self.support_size = check_count("support_size", support_size)
        n_targets = len(self.target_names)
        self.feature_mean = _vector("feature_mean", feature_mean, len(self.features))
        self.feature_scale = _vector("feature_scale", feature_scale, len(self.features), True)
        self.target_mean = _vector("target_mean", target_mean, n_targets)
        self.target_scale = _vector("target_scale", target_scale, n_targets, True)
        if (self.feature_mean is None) != (self.feature_scale is None) or (
            self.target_mean is None
        ) != (self.target_scale is None):
            raise ValueError(
                "feature_mean/feature_scale and target_mean/target_scale expected both or "
                f"neither of each pair. Received: feature_mean is None: {feature_mean is None}, "
                f"feature_scale is None: {feature_scale is None}, target_mean is None: "
                f"{target_mean is None}, target_scale is None: {target_scale is None}"
            )
        if output is None:
            output = "identity" if self.target_mean is None else "inverse_scaling"
        if output not in OUTPUTS or (output == "inverse_scaling") != (self.target_mean is not None):
            raise ValueError(
                f"output expected one of {OUTPUTS} ('inverse_scaling' exactly when "
                f"target_mean is given). Received: output={output!r}"
            )
        self.output = output
        self.adapt_steps = None if adapt_steps is None else int(adapt_steps)
        self.info = dict(info or {})
        json.dumps(self.info)  # refuse notes that cannot be saved, now

    @classmethod
    def from_scaler(cls, model, scaler, windows, support_size, **kwargs) -> Forecaster:
        """The forecaster of a learner trained on `scaler.transform(windows)`-like samples.

        Args:
            model: the trained learner.
            scaler: the fitted `WindowScaler` (one set of statistics, not `per_symbol`).
            windows: a `WindowSet` made as the training samples were (its feature names,
                lookback, targets and horizon are read).
            support_size: support windows to adapt on by default.
            **kwargs: `target`, `cumulative`, `output`, `adapt_steps`, `info`: see the
                class (`target` is required; `cumulative` default False).
        """
        if getattr(scaler, "per_symbol", False):
            raise ValueError(
                "scaler expected one set of statistics (per_symbol=False): a new asset has "
                "no statistics of its own. Received: a per_symbol WindowScaler"
            )
        scaled = bool(getattr(scaler, "scale_targets", False))
        return cls(
            model,
            windows.feature_names,
            windows.lookback,
            horizon=windows.horizon,
            support_size=support_size,
            feature_mean=scaler.mean_,
            feature_scale=scaler.scale_,
            target_mean=scaler.y_mean_ if scaled else None,
            target_scale=scaler.y_scale_ if scaled else None,
            **kwargs,
        )

    # -- what it reads ---------------------------------------------------------------------
    @property
    def target_names(self) -> list[str]:
        """Names of the forecast columns, as `make_windows` names the targets."""
        return mfeatures.target_names(self.target, self.horizon, self.cumulative)

    def fields(self) -> list[str]:
        """The price fields the features and the target need."""
        needed = {f for name in self.features for f in mfeatures.feature_fields(name)}
        parsed = mvariance.parse_variance_target(self.target)
        needed |= set(mvariance.PROXY_FIELDS[parsed[1]]) if parsed else {"close"}
        return [f for f in ("open", "high", "low", "close", "volume") if f in needed]

    def history_rows(self, support_days: int | None = None) -> int:
        """Rows of each symbol's history that `forecast` reads: the last window, the
        `support_days` labelled windows before it, and the features' warm-up (with five
        windows more for features with an infinite memory, such as `rsi`)."""
        k = self._support_days(support_days)
        warmup = max(_memory(name) for name in self.features)
        return k + self.horizon + self.lookback + warmup - 1

    # -- forecasting -----------------------------------------------------------------------
    def forecast(self, prices, support_days: int | None = None) -> pd.DataFrame:
        """Forecast the next horizon of every symbol from its last date.

        For each symbol the learner adapts on its last `support_days` labelled windows
        (those whose targets are known by the last date) and forecasts from the last
        window, which ends on the last date (the forecast origin). Only the last
        `history_rows(support_days)` rows of each symbol are read.

        Intervals (`lower`, `upper`):
            * variance targets (`variance`, `rv:*`, `log_rv:*`): the +-1.96 sigma band of
              the log return over the days the row covers, sigma the square root of the
              forecast variance over those days (a Gaussian 95% interval around 0; the 5%
              one-day VaR is 1.645 sigma). A `log_rv` forecast is read as the log of the
              median variance.
            * `return`: the forecast +-1.96 times the root mean square of the adapted
              learner's errors on the support windows (in-sample, so narrower than
              out-of-sample errors for learners that fit the support closely).
            * `direction`: none (NaN).

        Args:
            prices: a long price frame (`date, symbol, close`, optionally `open, high, low,
                volume`), as `metazoo.data.load_prices` returns, one or many symbols; a
                single-asset frame without `symbol` is read as `load_prices` reads it.
            support_days: labelled windows to adapt on (default `support_size`).

        Returns:
            A DataFrame with one row per symbol (per symbol and day ahead for per-day
            targets): `date` (the origin), `symbol`, `target` (the target column),
            `horizon` (trading days ahead the row covers), `forecast` (in the data's
            units), `lower`, `upper`.

        Raises:
            TypeError: if `prices` is not a DataFrame.
            ValueError: for missing fields, too few rows, or `support_days` out of range.
        """
        k = self._support_days(support_days)
        frame = self._prices(prices)
        tail = self._tail(frame, k)
        support, last_x, origins = self._inputs(tail, k)
        symbols = list(origins)
        sx = self._scale_x(np.stack([s.X for s in support]))
        sy = np.stack([s.y for s in support])
        sy_scaled = sy if self.target_mean is None else (sy - self.target_mean) / self.target_scale
        qx = np.concatenate([sx, self._scale_x(last_x)[:, None]], axis=1)
        batch = mdata.MetaBatch(
            sx.astype(np.float32),
            sy_scaled.astype(np.float32),
            qx.astype(np.float32),
            np.zeros((len(symbols), k + 1, sy.shape[-1]), np.float32),
        )
        outputs = self.to_units(self.predict_tasks(batch))
        return self._table(symbols, origins, outputs[:, k], outputs[:, :k], sy)

    def predict_tasks(self, batch) -> np.ndarray:
        """The learner's `(n_tasks, query_size, n_targets)` outputs (in its own units) on
        a meta-batch of scaled inputs, each task adapted on its support set."""
        model = self.model
        if hasattr(model, "predict_tasks"):
            steps = {} if self.adapt_steps is None else {"steps": self.adapt_steps}
            return np.asarray(model.predict_tasks(batch, **steps))
        from metazoo.models import compiled_call

        qx = np.asarray(batch.query_x)
        flat = compiled_call(model, qx.reshape(-1, *qx.shape[2:]))
        return flat.reshape(*qx.shape[:2], -1)

    def to_units(self, outputs) -> np.ndarray:
        """Learner outputs in the data's units (see `output`)."""
        outputs = np.asarray(outputs, dtype=np.float64)
        if self.output == "inverse_scaling":
            return outputs * self.target_scale + self.target_mean
        if self.output == "exp":
            return np.exp(outputs)
        return outputs

    # -- saving ----------------------------------------------------------------------------
    def get_config(self) -> dict:
        """Everything but the model, as JSON-serializable values."""

        def listed(values):
            return None if values is None else [float(v) for v in values]

        return {
            "format": FORMAT,
            "learner": type(self.model).__name__,
            "features": list(self.features),
            "lookback": self.lookback,
            "target": self.target,
            "horizon": self.horizon,
            "cumulative": self.cumulative,
            "target_names": self.target_names,
            "support_size": self.support_size,
            "feature_mean": listed(self.feature_mean),
            "feature_scale": listed(self.feature_scale),
            "target_mean": listed(self.target_mean),
            "target_scale": listed(self.target_scale),
            "output": self.output,
            "adapt_steps": self.adapt_steps,
            "info": self.info,
        }

    def save(self, path) -> Path:
        """Write the forecaster into the folder `path` (created; files in it replaced):
        `model.keras` (the learner) and `forecaster.json` (the rest). Returns the folder."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(folder / MODEL_FILE)
        text = json.dumps(self.get_config(), indent=2)
        (folder / SPEC_FILE).write_text(text + "\n", encoding="utf-8")
        return folder

    # -- helpers ---------------------------------------------------------------------------
    def _support_days(self, support_days) -> int:
        if support_days is None:
            return self.support_size
        return check_count("support_days", support_days)

    def _prices(self, prices) -> pd.DataFrame:
        if not isinstance(prices, pd.DataFrame):
            raise TypeError(
                "prices expected a DataFrame of prices (see metazoo.data.load_prices). "
                f"Received: {type(prices).__name__}"
            )
        columns = {str(c).strip().lower() for c in prices.columns}
        layout = "long" if "symbol" in columns else "single"
        frame = mdata.load_prices(prices, layout=layout)
        lacking = [f for f in self.fields() if f not in frame.columns or frame[f].isna().all()]
        if lacking:
            raise ValueError(
                f"prices expected the fields {self.fields()} (the features "
                f"{list(self.features)} and the target {self.target!r} need them). "
                f"Received: no values of {lacking}"
            )
        return frame

    def _tail(self, frame, k) -> pd.DataFrame:
        """The last `history_rows(k)` rows of each symbol, after checking each has them."""
        need = self.history_rows(k)
        counts = frame.groupby("symbol", sort=True).size()
        short = counts[counts < need]
        if len(short):
            raise ValueError(
                f"prices expected at least {need} rows per symbol for support_days={k} "
                f"(the last window, {k} labelled windows of lookback {self.lookback} and "
                f"horizon {self.horizon}, and {need - k - self.horizon - self.lookback + 1} "
                f"rows of feature warm-up). Received: {short.to_dict()}; pass a smaller "
                "support_days or a longer history."
            )
        tail = frame.groupby("symbol", sort=False, group_keys=False).tail(need)
        return tail.reset_index(drop=True)

    def _inputs(self, tail, k):
        """Per symbol: the last `k` labelled windows, the last window `(lookback,
        n_features)`, and the origin date."""
        windows = mdata.make_windows(
            tail, self.lookback, self.horizon, list(self.features), self.target, self.cumulative
        )
        feats = mfeatures.compute_features(tail, list(self.features))
        support, last, origins, bad = [], [], {}, {}
        for symbol, rows in feats.groupby("symbol", sort=True):
            part = windows.select(symbols=[symbol])
            x = rows[list(self.features)].to_numpy()[-self.lookback :]
            if len(part) < k or not np.isfinite(x).all():
                bad[symbol] = len(part)
                continue
            support.append(part[np.arange(len(part) - k, len(part))])
            last.append(x)
            origins[symbol] = pd.Timestamp(rows["date"].iloc[-1])
        if bad:
            raise ValueError(
                f"prices expected {k} labelled windows with finite features and a finite last "
                f"window per symbol in their last {self.history_rows(k)} rows (missing or "
                f"flat prices leave gaps). Received: labelled windows per symbol {bad}"
            )
        return support, np.stack(last), origins

    def _scale_x(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.feature_mean is None:
            return x
        return (x - self.feature_mean) / self.feature_scale

    def _table(self, symbols, origins, forecast, fitted, truth) -> pd.DataFrame:
        rows = []
        for i, symbol in enumerate(symbols):
            for j, name in enumerate(self.target_names):
                days = self.horizon if self.cumulative else j + 1
                lower, upper = self._interval(forecast[i, j], fitted[i, :, j], truth[i, :, j])
                rows.append(
                    {
                        "date": origins[symbol],
                        "symbol": symbol,
                        "target": name,
                        "horizon": days,
                        "forecast": float(forecast[i, j]),
                        "lower": lower,
                        "upper": upper,
                    }
                )
        return pd.DataFrame(rows)

    def _interval(self, value, fitted, truth) -> tuple[float, float]:
        if self.target == "direction":
            return np.nan, np.nan
        if self.target == "return":
            spread = Z_95 * float(np.sqrt(np.mean((truth - fitted) ** 2)))
            return float(value - spread), float(value + spread)
        variance = np.exp(value) if self.target.startswith("log_rv:") else max(value, 0.0)
        days = self.horizon if (self.cumulative and self.target != "variance") else 1
        sigma = float(np.sqrt(variance * days))
        return -Z_95 * sigma, Z_95 * sigma


def load_forecaster(path) -> Forecaster:
    """Read a forecaster written by `Forecaster.save` (its folder, or the JSON in it)."""
    import keras

    from metazoo import keras_objects

    folder = Path(path)
    folder = folder.parent if folder.name == SPEC_FILE else folder
    spec_path = folder / SPEC_FILE
    if not spec_path.is_file() or not (folder / MODEL_FILE).is_file():
        raise FileNotFoundError(
            f"path expected a forecaster folder holding {SPEC_FILE} and {MODEL_FILE}. "
            f"Received: {str(path)!r}"
        )
    config = json.loads(spec_path.read_text(encoding="utf-8"))
    if config.get("format") != FORMAT:
        raise ValueError(
            f"path expected a forecaster of format {FORMAT}. Received: format "
            f"{config.get('format')!r} in {spec_path}"
        )
    keras_objects.register()
    model = keras.models.load_model(folder / MODEL_FILE)
    for key in ("format", "learner", "target_names"):
        config.pop(key, None)
    return Forecaster(model, **config)


def find_forecaster(path=None) -> Path:
    """The forecaster folder `path` names: a forecaster folder, its JSON, or a folder
    holding exactly one forecaster (a run folder holds one per learner, target and fold:
    name one of them); None for the shipped forecaster `SHIPPED`."""
    if path is None:
        if not (SHIPPED / SPEC_FILE).is_file():
            raise FileNotFoundError(
                f"model expected a forecaster folder: this install has no shipped forecaster "
                f"at {SHIPPED}. Received: model=None"
            )
        return SHIPPED
    folder = Path(path)
    folder = folder.parent if folder.name == SPEC_FILE else folder
    if (folder / SPEC_FILE).is_file() or not folder.is_dir():
        return folder
    found = sorted(p.parent for p in folder.rglob(SPEC_FILE))
    if len(found) == 1:
        return found[0]
    listed = "\n  ".join(str(p) for p in found[:40])
    more = f"\n  ... and {len(found) - 40} more" if len(found) > 40 else ""
    raise ValueError(
        f"model expected one forecaster folder; {folder} holds {len(found)}"
        + (f":\n  {listed}{more}" if found else "")
        + f"\nReceived: model={str(path)!r}"
    )


def interval_note(target: str) -> str:
    """What the `lower` and `upper` columns of a forecast of `target` are."""
    if target == "direction":
        return "none for a direction forecast"
    if target == "return":
        return "forecast +- 1.96 x the RMS error of the adapted learner on the support days"
    return "+-1.96 sigma band of the log return over the horizon (sigma from the forecast)"


def save_run_forecaster(learner, scaler, windows, spec, config, path) -> Path | None:
    """Save the forecaster of a learner of a `metazoo run` fold in the folder `path`
    (beside its `.keras` file); None for a learner that saves no model.

    Args:
        learner: the fold's trained `metazoo.experiment.learners.Learner`.
        scaler: the fold's fitted `WindowScaler`.
        windows: the run's windows of the target (features, lookback, horizon).
        spec: the target's `metazoo.experiment.targets.TargetSpec` (its data target,
            whether it is a mean over the horizon, whether outputs are log variances).
        config: the run's `ExperimentConfig`.
        path: the forecaster's folder.
    """
    if learner.model is None or not learner.saved:
        return None
    forecaster = Forecaster.from_scaler(
        learner.model,
        scaler,
        windows,
        config.support_size,
        target=spec.data_target,
        cumulative=spec.cumulative,
        output="exp" if spec.log_output else None,
        info={"learner": learner.name, "trained_by": "metazoo run", "seed": config.seed},
    )
    return forecaster.save(path)


def _vector(name, values, size, positive=False):
    if values is None:
        return None
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.shape != (size,) or not np.isfinite(array).all() or (positive and (array <= 0).any()):
        rule = "positive finite" if positive else "finite"
        raise ValueError(
            f"{name} expected {size} {rule} values. Received: {np.asarray(values).tolist()}"
        )
    return array


def _memory(name: str) -> int:
    """Rows before a feature's value at t that it reads (the warm-up, more for `rsi`)."""
    kind, window = mfeatures.parse_feature(name)
    extra = EWM_MEMORY * window if kind == "rsi" else 0
    return mfeatures.feature_warmup(name) + extra
