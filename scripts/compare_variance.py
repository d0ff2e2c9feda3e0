"""One-sided Diebold-Mariano tests between any two models of a run's variance sections.

    python scripts/compare_variance.py RUN_DIR --reference har_log

prints, for every variance target and evaluation set of the run folder RUN_DIR, the p-value
that each model's QLIKE is lower than the reference's, with the same pairing (fold, date,
symbol rows both forecast, averaged per date across assets) and Newey-West lags as the
leaderboard's `dm_p_har` column (`metazoo.experiment.variance_scoring`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from metazoo.experiment.targets import target_horizon, target_kind
from metazoo.experiment.variance_scoring import dm_p_value, loss_table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--reference", default="har_log")
    args = parser.parse_args(argv)
    predictions = pd.read_csv(args.run_dir / "predictions.csv.gz", parse_dates=["date"])
    settings = args.run_dir / "config.json"  # a token without a horizon takes the run's
    horizon = json.loads(settings.read_text())["horizon"] if settings.exists() else 1
    rows = []
    for (target, eval_set), part in predictions.groupby(["target", "eval_set"], sort=False):
        if target_kind(target) != "variance":
            continue
        losses = loss_table(part).dropna(axis=1, how="all")
        if args.reference not in losses:
            raise ValueError(
                f"--reference expected a model of the run. Received: {args.reference!r}; "
                f"the run has {list(losses.columns)}"
            )
        for model in losses.columns.drop(args.reference):
            p = dm_p_value(losses, model, args.reference, target_horizon(target, horizon))
            rows.append({"target": target, "eval_set": eval_set, "model": model, "p": p})
    table = pd.DataFrame(rows).pivot(index="model", columns=["target", "eval_set"], values="p")
    print(f"one-sided DM p-value: QLIKE lower than {args.reference}'s")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
