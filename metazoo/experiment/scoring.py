"""From forecasts to the leaderboard: forecast errors, ICs, strategies, portfolios and VaR.

Rows are scored per (target, evaluation set, model) over every query sample of every fold
(a forecast of the first target column is "day 1 ahead"):

* all targets: `mse`, `mae`, `r2_oos` (1 - MSE / MSE of the historical-mean baseline),
  `ic`, `rank_ic` (pooled) and `icir` (IC per calendar period of the tasks, mean / std);
* `return` and `direction`: `hit_rate` (sign of the return forecast, or of the forecast
  probability minus 0.5), and the *signal* strategy: in each sleeve (fold x asset) hold
  `sign` of the day-1 forecast from the close of a query day to the next close, flat
  otherwise, paying `cost_bps` per unit of turnover; sleeves share the capital equally.
  `sharpe`, `ann_return`, `ann_vol`, `max_drawdown`, `turnover` describe it.
  `sharpe_vol_scaled`: the same signs sized to a 10% annualized volatility from the trailing
  21-day close-to-close volatility known at the forecast date (at most 2x leverage).
  `portfolio_sharpe`: a long-short portfolio of the forecasts across the assets of each date
  within a fold (only where a fold has two or more assets per date), folds averaged.
  `buy_and_hold` (long every sleeve on every query day, same costs) is the naive strategy.
* variance targets (`variance`, `variance:5`, any name whose part before `:` is
  `variance`; the horizon follows the colon, default 1): see `metazoo.experiment.variance_scoring`.
  Every variance forecast must be positive and finite: anything else is a bug of the model
  that made it, and scoring stops with an error naming it (nothing is floored).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metazoo.backtest import backtest, portfolio_weights, positions_from_forecasts
from metazoo.experiment import variance_scoring as variance
from metazoo.experiment.targets import target_spec
from metazoo.experiment.variance_scoring import (
    MAX_LEVERAGE,
    TARGET_VOL,
    sleeves,
)
from metazoo.metrics import finance
from metazoo.metrics.forecast import hit_rate, ic, mae, mse, rank_ic


def score(predictions: pd.DataFrame, config, calibration=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`(leaderboard, strategies)` of a run's predictions (see the module docstring);
    `calibration`: in-sample rows of the same layout that the calibrated VaR of the 1-day
    variance targets is read from (see `metazoo.experiment.variance_scoring`)."""
    board, strategies = [], []
    if calibration is not None and len(calibration):
        calibration = dict(tuple(calibration.groupby(["target", "model"], sort=False)))
    else:
        calibration = {}
    for (target, eval_set), part in predictions.groupby(["target", "eval_set"], sort=False):
        spec = target_spec(target, config)
        kind = spec.kind
        if kind == "variance":
            variance.check_forecasts(part)
        group = []
        pred_cols = sorted(c for c in part if c.startswith("pred_") and part[c].notna().any())
        true_cols = [c.replace("pred_", "true_") for c in pred_cols]
        reference = part[part["model"] == "historical_mean"]
        ref_mse = mse(reference[true_cols], reference[pred_cols]) if len(reference) else np.nan
        models = list(dict.fromkeys(part["model"]))
        for model in models:
            rows = part[part["model"] == model]
            entry = {
                "target": target,
                "eval_set": eval_set,
                "model": model,
                "kind": rows["kind"].iloc[0],
            }
            entry |= forecast_metrics(rows[true_cols].to_numpy(), rows[pred_cols].to_numpy())
            entry["r2_oos"] = 1 - entry["mse"] / ref_mse if ref_mse > 0 else np.nan
            entry["icir"] = _icir(rows, true_cols[0], pred_cols[0])
            if kind in ("return", "direction"):
                entry |= _strategy_metrics(rows, kind, config, strategies, model, eval_set)
            elif kind == "variance":
                entry |= variance.errors(rows)
                if spec.scores_risk:
                    own = calibration.get((target, model))
                    metrics, daily = variance.risk(rows, config, own)
                    entry |= metrics
                    strategies += [
                        strategy_frame(returns, rows, model, eval_set, name)
                        for name, returns in daily.items()
                    ]
            group.append(entry)
        if kind == "variance":
            tests = variance.significance(part, spec.horizon, config.seed)
            group = [entry | tests.get(entry["model"], {}) for entry in group]
        board += group
        if kind in ("return", "direction"):
            rows = part[part["model"] == models[0]].assign(pred_1=1.0, kind="baseline")
            entry = {"target": target, "eval_set": eval_set, "model": "buy_and_hold"}
            entry["kind"] = "baseline"
            entry |= _strategy_metrics(rows, "return", config, strategies, "buy_and_hold", eval_set)
            board.append(entry)
    leaderboard = pd.DataFrame(board)
    strategies = pd.concat(strategies, ignore_index=True) if strategies else pd.DataFrame()
    return leaderboard, strategies


def forecast_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Errors and correlations over every entry (all target columns)."""
    return {
        "n": int(len(y_true)),
        "mse": mse(y_true, y_pred),
        "mae": mae(y_true, y_pred),
        "ic": ic(y_true, y_pred),
        "rank_ic": rank_ic(y_true, y_pred),
    }


def _icir(rows, true_col, pred_col) -> float:
    periods = rows["task"].str.split("@").str[-1].to_numpy()
    series = finance.ic_by_period(rows[true_col].to_numpy(), rows[pred_col].to_numpy(), periods)
    return finance.icir(series) if len(series) >= 2 else np.nan


def _direction_forecast(rows, target) -> pd.Series:
    """The day-1 forecast as a signed return view."""
    return rows["pred_1"] - 0.5 if target == "direction" else rows["pred_1"]


def _strategy_metrics(rows, target, config, strategies, model, eval_set) -> dict:
    view = _direction_forecast(rows, target)
    truth = rows["true_1"] - 0.5 if target == "direction" else rows["true_1"]
    out = (
        {"hit_rate": hit_rate(truth.to_numpy(), view.to_numpy())} if model != "buy_and_hold" else {}
    )
    simple = sleeves(rows, np.expm1(rows["next_return"].to_numpy()))
    positions = positions_from_forecasts(sleeves(rows, view), method="sign")
    result = backtest(positions, simple.fillna(0.0), cost_bps=config.cost_bps)
    daily = result.asset_pnl.mean(axis=1)  # equal capital per sleeve
    summary = finance.strategy_summary(daily.to_numpy())
    out |= {
        "sharpe": summary["sharpe_ratio"],
        "ann_return": summary["annualized_return"],
        "ann_vol": summary["annualized_volatility"],
        "max_drawdown": summary["max_drawdown"],
        "turnover": finance.turnover(positions / positions.shape[1]),
    }
    strategies.append(strategy_frame(daily, rows, model, eval_set, "signal"))
    sized = positions_from_forecasts(
        sleeves(rows, view),
        method="vol_scaled",
        vol=sleeves(rows, rows["trailing_vol"]),
        target_vol=TARGET_VOL,
        max_leverage=MAX_LEVERAGE,
    )
    scaled = backtest(sized, simple.fillna(0.0), cost_bps=config.cost_bps).asset_pnl.mean(axis=1)
    out["sharpe_vol_scaled"] = finance.sharpe_ratio(scaled.to_numpy())
    strategies.append(strategy_frame(scaled, rows, model, eval_set, "vol_scaled"))
    portfolio = _portfolio(rows, view, config)
    if portfolio is not None:
        out["portfolio_sharpe"] = finance.sharpe_ratio(portfolio.to_numpy())
        strategies.append(strategy_frame(portfolio, rows, model, eval_set, "portfolio"))
    return out


def _portfolio(rows, view, config) -> pd.Series | None:
    """Daily net returns of the long-short portfolio of each fold, averaged over folds."""
    returns = []
    for _, fold in rows.assign(view=view.to_numpy()).groupby("fold", sort=True):
        if fold.groupby("date")["symbol"].nunique().max() < 2:
            continue
        scores = fold.pivot(index="date", columns="symbol", values="view")
        simple = np.expm1(fold.pivot(index="date", columns="symbol", values="next_return"))
        weights = portfolio_weights(scores, scheme="long_short")
        result = backtest(weights, simple.fillna(0.0), cost_bps=config.cost_bps)
        returns.append(result.net_returns)
    if not returns:
        return None
    return pd.concat(returns, axis=1).fillna(0.0).mean(axis=1)


def strategy_frame(daily, rows, model, eval_set, strategy) -> pd.DataFrame:
    """The daily net returns `daily` of one strategy as rows of `strategies`."""
    return pd.DataFrame(
        {
            "target": rows["target"].iloc[0],
            "eval_set": eval_set,
            "model": model,
            "strategy": strategy,
            "date": daily.index,
            "net_return": daily.to_numpy(),
        }
    )
