"""Scores of variance forecasts: their errors, whether the differences are significant, and
the risk figures and volatility-targeted books made from them.

A variance target is a token of kind `variance` (`variance`, `variance:5`; parsed by
`metazoo.experiment.targets`); the number after the colon is the horizon in days (the run's
`horizon` without one). Each prediction row holds the forecast `pred_1` of the mean daily variance over the horizon,
made at the close of `date`, and its realized value `true_1` (mean squared log return).
Per (target, evaluation set, model), over the query samples of every fold:

* **errors**: `qlike` (mean of `v / h - log(v / h) - 1`, `v` the realized variance raised
  to 1e-12), `mse_log` (mean squared error of the log variance, `log(max(v, 1e-12)) -
  log(h)`, as `metazoo.data.variance` takes logs); `mse` and `r2_oos` (against the
  historical mean) come from `metazoo.experiment.scoring` as for every target.
* **significance**: `dm_p_har` and `dm_p_garch`, the one-sided Diebold-Mariano p-value of
  "the model's QLIKE is lower than that of `har_rv` (`garch11`)". The losses of the two
  models are paired on the (fold, date, symbol) rows both forecast, then averaged per date
  across assets, so that the assets of one date, whose losses move together, count as one
  observation; the long-run variance is the Bartlett (Newey-West) kernel with `horizon - 1`
  lags (h-day targets overlap). `in_mcs` and `mcs_p`: the 90% model confidence set of all
  models (`arch.bootstrap.MCS`, range statistic, `MCS_REPS` stationary-bootstrap
  replications seeded with the run's seed) on the daily mean losses over the rows every
  model forecasts. A p-value of 0.05 or more is a difference inside the noise.
* **risk** (1-day targets only: a row carries the next day's return and no longer one, so
  the VaR of a 5-day forecast is not scored): for each level `alpha` of `VAR_LEVELS` (and
  the run's `var_alpha`), the normal VaR `-z_alpha sqrt(h)` against the next day's log
  return, `var{a}_breach` (the share of breaches, `a` = 100 alpha), and the same for a
  Student t with `T_DOF` (5) degrees of freedom of variance `h` in `var{a}t_*` columns,
  and, where the run gives `calibration` rows, the *calibrated* VaR in `var{a}c_*` columns:
  `-q sqrt(h)`, `q` the empirical `alpha` quantile of the model's own standardized returns
  `r / sqrt(h)` on its in-sample forecasts of the fold's training tasks (filtered
  historical simulation; its ES is the mean of those standardized returns at or below `q`,
  times `-sqrt(h)`). Each column carries Kupiec's
  `var{a}_kupiec_p` and Christoffersen's conditional coverage `var{a}_cc_p` (transitions
  counted within each evaluation task's consecutive query days, summed over tasks), and
  the expected shortfall: `es{a}_forecast`, the mean forecast ES on the breach days, beside
  `es{a}_realized`, the mean realized loss on those days (equal if the ES is right).
  `var_breach_rate` and `var_kupiec_p` repeat those of `var_alpha`.
* **books** (1-day targets): `vol_target`, a long position per sleeve (fold x asset) of
  `TARGET_VOL / sqrt(252 h)` (at most `MAX_LEVERAGE`) held to the next close, and
  `inverse_vol`, per fold, the inverse-volatility portfolio of the fold's assets scaled to
  `TARGET_VOL` (assets taken as uncorrelated, gross at most `MAX_LEVERAGE`), both net of
  `cost_bps`. `vt_vol_ratio` and `ivp_vol_ratio`: realized annualized volatility over the
  days with a forecast divided by the target (1 is perfect); `vt_tracking` and
  `ivp_tracking`: the mean over sleeves (folds) of `mean_abs_log_ratio` of
  `metazoo.backtest.vol_tracking` in `TRACKING_WINDOW`-day windows (0 is perfect, 0.1 is
  about 10% off), for sleeves with at least that many days. Their daily net returns
  (sleeves or folds sharing the capital equally) go to `strategies`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metazoo.backtest import backtest, inverse_vol_positions, vol_target_positions, vol_tracking
from metazoo.backtest.risk import expected_shortfall, pooled_christoffersen_test, var_from_variance
from metazoo.data.variance import log_variance
from metazoo.metrics.finance import var_breaches, var_report
from metazoo.metrics.significance import diebold_mariano, model_confidence_set, qlike_losses

TARGET_VOL, MAX_LEVERAGE = 0.10, 2.0
DAYS_PER_YEAR = 252
DM_REFERENCES = {"dm_p_har": "har_rv", "dm_p_garch": "garch11"}
SIGNIFICANCE = 0.05  # a DM p-value below this marks a significant improvement
MCS_SIZE, MCS_REPS = 0.1, 300
VAR_LEVELS = (0.01, 0.05)
# Return distributions of the VaR: the normal, and a Student t with T_DOF degrees of freedom
# scaled to the forecast variance (a fixed, standard choice for fat-tailed daily returns,
# not fitted), whose columns carry a `t` after the level (`var1t_breach`), and the model's own
# standardized in-sample returns of the fold's training tasks (`c`, `var1c_breach`).
VAR_DISTS = (("normal", ""), ("t", "t"), ("calibrated", "c"))
T_DOF = 5
TRACKING_WINDOW = 21  # a month: evaluation tasks are quarters of which K days adapt


def level_name(alpha: float) -> str:
    """`"1"` for 0.01: the percent label of a VaR level in column names."""
    return f"{100 * alpha:g}"


def sleeves(rows: pd.DataFrame, values) -> pd.DataFrame:
    """Wide dates x sleeves (`fold|symbol`) of `values` (aligned with `rows`)."""
    frame = pd.DataFrame(
        {
            "date": rows["date"].to_numpy(),
            "symbol": (rows["fold"] + "|" + rows["symbol"]).to_numpy(),
            "value": np.asarray(values, dtype=np.float64),
        }
    )
    wide = frame.pivot(index="date", columns="symbol", values="value")
    wide.columns.name = None
    return wide


def check_forecasts(part: pd.DataFrame) -> None:
    """Raise unless every variance forecast `pred_1` is finite and > 0 and every realized
    variance `true_1` finite and >= 0; the error names the models at fault."""
    forecast = part["pred_1"].to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(forecast) & (forecast > 0))
    if bad.any():
        where = part.loc[bad, ["model", "pred_1"]].groupby("model", sort=True)["pred_1"]
        named = "; ".join(
            f"model {model!r}: {len(values)} forecast(s), e.g. {float(values.iloc[0]):.3g}"
            for model, values in where
        )
        raise ValueError(
            "`predictions` expected variance forecasts (pred_1) > 0 and finite from every "
            f"model. Received on target {part['target'].iloc[0]!r}, evaluation set "
            f"{part['eval_set'].iloc[0]!r}: {named}"
        )
    truth = part["true_1"].to_numpy(dtype=np.float64)
    if not (np.isfinite(truth) & (truth >= 0)).all():
        raise ValueError(
            "`predictions` expected realized variances (true_1) >= 0 and finite. Received: "
            f"{int(np.sum(~(np.isfinite(truth) & (truth >= 0))))} other value(s)"
        )


def errors(rows: pd.DataFrame) -> dict:
    """`qlike` and `mse_log` of one model's rows."""
    truth = rows["true_1"].to_numpy(dtype=np.float64)
    forecast = rows["pred_1"].to_numpy(dtype=np.float64)
    return {
        "qlike": float(np.mean(qlike_losses(truth, forecast))),
        "mse_log": float(np.mean((log_variance(truth) - np.log(forecast)) ** 2)),
    }


def loss_table(part: pd.DataFrame) -> pd.DataFrame:
    """QLIKE losses of every row: index (fold, date, symbol), one column per model (NaN
    where a model has no forecast). Raises if a model has two rows for one index."""
    losses = qlike_losses(part["true_1"].to_numpy(), part["pred_1"].to_numpy())
    frame = part[["fold", "date", "symbol", "model"]].assign(loss=losses)
    table = frame.pivot(index=["fold", "date", "symbol"], columns="model", values="loss")
    table.columns.name = None
    return table


def daily_mean_losses(losses: pd.DataFrame, models) -> pd.DataFrame:
    """Mean loss per date of `models`, over the rows where each of them has a loss."""
    common = losses[list(models)].dropna()
    return common.groupby(level="date", sort=True).mean()


def dm_p_value(losses: pd.DataFrame, model: str, reference: str, horizon: int) -> float:
    """One-sided DM p-value that `model`'s QLIKE is lower than `reference`'s (see the
    module docstring); NaN with fewer than 3 common dates."""
    daily = daily_mean_losses(losses, [model, reference])
    if len(daily) < 3:
        return np.nan
    test = diebold_mariano(daily[model], daily[reference], horizon=horizon, alternative="less")
    return test["p_value"]


def significance(part: pd.DataFrame, horizon: int, seed: int) -> dict:
    """Model -> `{dm_p_har, dm_p_garch, in_mcs, mcs_p}` for one target and evaluation set."""
    losses = loss_table(part).dropna(axis=1, how="all")
    out = {model: {} for model in losses.columns}
    for column, reference in DM_REFERENCES.items():
        for model in losses.columns:
            known = reference in losses and model != reference
            out[model][column] = dm_p_value(losses, model, reference, horizon) if known else np.nan
    for model, row in confidence_set(losses, seed).iterrows():
        out[model] |= {"in_mcs": bool(row["included"]), "mcs_p": float(row["p_value"])}
    return out


def confidence_set(losses: pd.DataFrame, seed: int) -> pd.DataFrame:
    """`model_confidence_set` of the daily mean losses (`included`, `p_value` per model).

    Models with identical losses cannot be told apart (and `arch`'s MCS cannot divide by
    their zero variance): one of them enters the test and the others share its result.
    Empty with fewer than 2 distinct models or 2 dates.
    """
    daily = daily_mean_losses(losses, losses.columns)
    first = {}
    for model in daily.columns:
        twin = next((m for m in first.values() if daily[m].equals(daily[model])), model)
        first[model] = twin
    distinct = list(dict.fromkeys(first.values()))
    if len(daily) < 2 or len(distinct) < 2:
        return pd.DataFrame(columns=["p_value", "included"])
    mcs = model_confidence_set(daily[distinct], size=MCS_SIZE, reps=MCS_REPS, seed=seed)
    return mcs.loc[[first[m] for m in daily.columns]].set_axis(daily.columns)


def risk(rows: pd.DataFrame, config, calibration: pd.DataFrame | None = None) -> tuple[dict, dict]:
    """`(metrics, daily)`: the VaR, ES and book metrics of one model's 1-day forecasts, and
    the daily net returns of its `vol_target` and `inverse_vol` books. `calibration`: the
    same model's in-sample rows (`fold`, `pred_1`, `next_return`) that the calibrated VaR
    is read from; without rows for every fold of `rows` that VaR is not scored."""
    dists = [dist for dist, _ in VAR_DISTS if dist != "calibrated"]
    if calibration is not None and set(rows["fold"]) <= set(calibration["fold"]):
        dists.append("calibrated")
    metrics = {}
    for alpha in dict.fromkeys((*VAR_LEVELS, config.var_alpha)):
        for dist in dists:
            metrics |= var_scores(rows, alpha, dist, calibration)
    chosen = level_name(config.var_alpha)
    metrics["var_breach_rate"] = metrics[f"var{chosen}_breach"]
    metrics["var_kupiec_p"] = metrics[f"var{chosen}_kupiec_p"]
    books, daily = vol_books(rows, config.cost_bps)
    return metrics | books, daily


def var_scores(rows: pd.DataFrame, alpha: float, dist: str = "normal", calibration=None) -> dict:
    """Breach rate, Kupiec and Christoffersen p-values and ES of the `alpha` VaR under the
    return distribution `dist` of `VAR_DISTS` (`"calibrated"` reads `calibration`)."""
    rows = rows.sort_values(["fold", "task", "date"])
    forecast = rows["pred_1"].to_numpy(dtype=np.float64)
    returns = rows["next_return"].to_numpy(dtype=np.float64)
    if dist == "calibrated":
        var, shortfall = calibrated_var(rows, calibration, alpha)
    else:
        var = var_from_variance(forecast, alpha, dist, T_DOF)
        shortfall = expected_shortfall(forecast, alpha, dist, T_DOF)
    breach = var_breaches(returns, var)
    kupiec = var_report(returns, var, alpha)
    tasks = (rows["fold"] + "|" + rows["task"]).to_numpy()
    coverage = pooled_christoffersen_test(breach, tasks, alpha)
    a = level_name(alpha) + dict(VAR_DISTS)[dist]
    return {
        f"var{a}_breach": kupiec["breach_rate"],
        f"var{a}_kupiec_p": kupiec["p_value"],
        f"var{a}_cc_p": coverage["p_value_cc"],
        f"es{a}_forecast": float(shortfall[breach].mean()) if breach.any() else np.nan,
        f"es{a}_realized": float(-returns[breach].mean()) if breach.any() else np.nan,
    }


def standardized_tails(calibration: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Per fold of one model's in-sample rows: `quantile`, the empirical `alpha` quantile of
    the standardized returns `next_return / sqrt(pred_1)`, and `shortfall`, their mean at
    or below it (both negative for a sensible model)."""
    z = calibration["next_return"].to_numpy(np.float64) / np.sqrt(
        calibration["pred_1"].to_numpy(np.float64)
    )
    frame = pd.DataFrame({"fold": calibration["fold"].to_numpy(), "z": z}).dropna()
    out = {}
    for fold, part in frame.groupby("fold", sort=True)["z"]:
        q = float(np.quantile(part.to_numpy(), alpha))
        out[fold] = {"quantile": q, "shortfall": float(part[part <= q].mean()), "n": len(part)}
    return pd.DataFrame.from_dict(out, orient="index")


def calibrated_var(rows: pd.DataFrame, calibration: pd.DataFrame, alpha: float) -> tuple:
    """`(var, es)` per row: `-q sqrt(h)` and `-s sqrt(h)` with the `quantile` `q` and
    `shortfall` `s` of `standardized_tails` of the row's fold."""
    tails = standardized_tails(calibration, alpha)
    scale = np.sqrt(rows["pred_1"].to_numpy(np.float64))
    folds = rows["fold"].to_numpy()
    var = -tails["quantile"].reindex(folds).to_numpy() * scale
    return var, -tails["shortfall"].reindex(folds).to_numpy() * scale


def vol_books(rows: pd.DataFrame, cost_bps: float) -> tuple[dict, dict]:
    """Volatility-targeted positions per sleeve and inverse-volatility portfolios per fold
    from one model's forecasts: their tracking of `TARGET_VOL` and daily net returns."""
    forecast = sleeves(rows, rows["pred_1"])
    simple = sleeves(rows, np.expm1(rows["next_return"].to_numpy())).fillna(0.0)
    positions = vol_target_positions(forecast, TARGET_VOL, MAX_LEVERAGE, DAYS_PER_YEAR)
    pnl = backtest(positions, simple, cost_bps=cost_bps).asset_pnl
    known = pnl.where(forecast.notna())
    sleeve_tracking = [
        _tracking(known[sleeve].dropna()) for sleeve in known if known[sleeve].count()
    ]
    portfolios, portfolio_tracking, portfolio_known = [], [], []
    fold_of = dict(zip(rows["fold"] + "|" + rows["symbol"], rows["fold"], strict=True))
    for fold in sorted(set(fold_of.values())):
        columns = [c for c in forecast.columns if fold_of[c] == fold]
        variance = forecast[columns]
        weights = inverse_vol_positions(variance, TARGET_VOL, MAX_LEVERAGE, DAYS_PER_YEAR)
        net = backtest(weights, simple[columns], cost_bps=cost_bps).net_returns
        portfolios.append(net)
        portfolio_known.append(net[variance.notna().any(axis=1)])
        portfolio_tracking.append(_tracking(portfolio_known[-1]))
    metrics = {
        "vt_vol_ratio": _vol_ratio(known.to_numpy()[known.notna().to_numpy()]),
        "vt_tracking": _mean(sleeve_tracking),
        "ivp_vol_ratio": _vol_ratio(pd.concat(portfolio_known).to_numpy()),
        "ivp_tracking": _mean(portfolio_tracking),
    }
    daily = {
        "vol_target": pnl.mean(axis=1),  # equal capital per sleeve
        "inverse_vol": pd.concat(portfolios, axis=1).fillna(0.0).mean(axis=1),
    }
    return metrics, daily


def _vol_ratio(returns) -> float:
    """Annualized realized volatility (root mean square) of daily returns / the target."""
    returns = np.asarray(returns, dtype=np.float64)
    if not len(returns):
        return np.nan
    return float(np.sqrt(np.mean(returns**2) * DAYS_PER_YEAR) / TARGET_VOL)


def _tracking(returns: pd.Series) -> float:
    """`mean_abs_log_ratio` of `vol_tracking`, NaN for fewer than `TRACKING_WINDOW` days."""
    if len(returns) < TRACKING_WINDOW:
        return np.nan
    return vol_tracking(returns.to_numpy(), TARGET_VOL, TRACKING_WINDOW, DAYS_PER_YEAR)[
        "mean_abs_log_ratio"
    ]


def _mean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else np.nan
