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
* `variance`: `qlike`, and the `var_alpha` (1%) Value at Risk from the forecast volatility
  under a normal distribution, checked against the next day's log return:
  `var_breach_rate` and the Kupiec test's `var_kupiec_p`. A network trained on squared
  returns with a squared error can forecast a variance <= 0; for both, forecasts are
  floored at `VARIANCE_FLOOR` (1e-6, a daily volatility of 0.1%) and `n_floored` counts
  how many needed it (QLIKE punishes them heavily, as it should).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from metazoo.backtest import backtest, portfolio_weights, positions_from_forecasts
from metazoo.metrics import finance
from metazoo.metrics.forecast import hit_rate, ic, mae, mse, rank_ic

TARGET_VOL, MAX_LEVERAGE = 0.10, 2.0
VARIANCE_FLOOR = 1e-6  # a daily volatility of 0.1%: below any quiet day of the bundled assets


def score(predictions: pd.DataFrame, config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`(leaderboard, strategies)` of a run's predictions (see the module docstring)."""
    board, strategies = [], []
    for (target, eval_set), part in predictions.groupby(["target", "eval_set"], sort=False):
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
            if target in ("return", "direction"):
                entry |= _strategy_metrics(rows, target, config, strategies, model, eval_set)
            else:
                entry |= _risk_metrics(rows, config)
            board.append(entry)
        if target in ("return", "direction"):
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


def _sleeves(rows, values) -> pd.DataFrame:
    """Wide dates x sleeves (fold|symbol) of `values` (aligned with `rows`)."""
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


def _strategy_metrics(rows, target, config, strategies, model, eval_set) -> dict:
    view = _direction_forecast(rows, target)
    truth = rows["true_1"] - 0.5 if target == "direction" else rows["true_1"]
    out = (
        {"hit_rate": hit_rate(truth.to_numpy(), view.to_numpy())} if model != "buy_and_hold" else {}
    )
    simple = _sleeves(rows, np.expm1(rows["next_return"].to_numpy()))
    positions = positions_from_forecasts(_sleeves(rows, view), method="sign")
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
    strategies.append(_strategy_frame(daily, rows, model, eval_set, "signal"))
    sized = positions_from_forecasts(
        _sleeves(rows, view),
        method="vol_scaled",
        vol=_sleeves(rows, rows["trailing_vol"]),
        target_vol=TARGET_VOL,
        max_leverage=MAX_LEVERAGE,
    )
    scaled = backtest(sized, simple.fillna(0.0), cost_bps=config.cost_bps).asset_pnl.mean(axis=1)
    out["sharpe_vol_scaled"] = finance.sharpe_ratio(scaled.to_numpy())
    strategies.append(_strategy_frame(scaled, rows, model, eval_set, "vol_scaled"))
    portfolio = _portfolio(rows, view, config)
    if portfolio is not None:
        out["portfolio_sharpe"] = finance.sharpe_ratio(portfolio.to_numpy())
        strategies.append(_strategy_frame(portfolio, rows, model, eval_set, "portfolio"))
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


def _strategy_frame(daily, rows, model, eval_set, strategy) -> pd.DataFrame:
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


def _risk_metrics(rows, config) -> dict:
    """QLIKE and the VaR check of day-1 variance forecasts."""
    forecast = rows["pred_1"].to_numpy()
    floored = np.maximum(forecast, VARIANCE_FLOOR)
    alpha = config.var_alpha
    var = -stats.norm.ppf(alpha) * np.sqrt(floored)  # a loss in log-return terms
    report = finance.var_report(rows["next_return"].to_numpy(), var, alpha)
    return {
        "qlike": finance.qlike(rows["true_1"].to_numpy(), floored),
        "n_floored": int(np.sum(forecast < VARIANCE_FLOOR)),
        "var_breach_rate": report["breach_rate"],
        "var_kupiec_p": report["p_value"],
    }
