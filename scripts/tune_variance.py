"""Choose the variance section's trainer settings on validation periods only.

Usage::

    python scripts/tune_variance.py [--seed 0] [--folds 3] [--targets variance]
        [--learners finetune,maml,meta_sgd,anil] [--inner-lr 0.005,0.02,0.05]
        [--adapt-steps 1,3] [--models har,harnet] [--meta-steps 300]
        [--features "log_rv:1,log_rv:5,log_rv:22;log_rv:1,log_rv:5,log_rv:22,log_rv:66"]

Every grid point is one `run_experiment` in validation mode (`validation=True`): each
asset's evaluation period and the embargo before it are removed from the data first, and
the protocol runs on what is left, so the held-out scores below are on validation periods
of held-out assets and the evaluation period is never read. Meta-training uses as many
inner steps as adaptation (`variance_inner_steps = variance_adapt_steps`).

The criterion is the mean held-out QLIKE of the adapting learners (all but `pooled`) over
the targets; the script prints one row per grid point (each learner's held-out QLIKE, the
`har_rv` reference) and the chosen settings.
"""

from __future__ import annotations

import argparse
import itertools
import time

import pandas as pd


def _floats(text):
    return [float(v) for v in text.split(",")]


def _ints(text):
    return [int(v) for v in text.split(",")]


def _names(text):
    return [v.strip() for v in text.split(",") if v.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--targets", type=_names, default=["variance"])
    parser.add_argument("--learners", type=_names, default=["finetune", "maml", "meta_sgd", "anil"])
    parser.add_argument("--inner-lr", type=_floats, default=[0.005, 0.02, 0.05])
    parser.add_argument("--adapt-steps", type=_ints, default=[1, 3])
    parser.add_argument("--models", type=_names, default=["har", "harnet"])
    parser.add_argument("--meta-steps", type=_ints, default=[300])
    parser.add_argument(
        "--features",
        type=lambda text: [_names(part) for part in text.split(";")],
        default=[["log_rv:1", "log_rv:5", "log_rv:22"]],
        help="feature sets separated by ';', features by ','",
    )
    parser.add_argument("--verbose", action="store_true", help="print each learner's seconds")
    args = parser.parse_args()

    from metazoo.experiment.environment import import_tensorflow_quietly

    import_tensorflow_quietly()
    from metazoo.experiment import ExperimentConfig, run_experiment

    began = time.perf_counter()
    rows = []
    grid = itertools.product(
        args.features, args.models, args.inner_lr, args.adapt_steps, args.meta_steps
    )
    for features, base, inner_lr, steps, meta_steps in grid:
        config = ExperimentConfig(
            targets=args.targets,
            folds=args.folds,
            learners=args.learners,
            baselines=["har_rv"],
            variance_models=[base],
            variance_features=features,
            variance_inner_lr=inner_lr,
            variance_inner_steps=steps,
            variance_adapt_steps=steps,
            variance_meta_steps=meta_steps,
            validation=True,
            seed=args.seed,
        )
        start = time.perf_counter()
        say = print if args.verbose else None
        board = run_experiment(config, write=False, progress=say).leaderboard
        held = board[board["eval_set"] == "held_out_assets"]
        qlike = held.groupby("model")["qlike"].mean()  # over the targets
        adapting = [m for m in qlike.index if held.set_index("model").loc[[m], "kind"].iloc[0]
                    == "learner" and not m.startswith("pooled:")]  # fmt: skip
        row = {
            "features": "+".join(
                f.split(":")[1] if f.startswith("log_rv:") else f for f in features
            ),
            "models": base,
            "inner_lr": inner_lr,
            "adapt_steps": steps,
            "meta_steps": meta_steps,
            "criterion": qlike[adapting].mean(),
            **{m.split(":")[0]: qlike[m] for m in qlike.index if m != "har_rv"},
            "har_rv": qlike.get("har_rv"),
            "seconds": round(time.perf_counter() - start, 1),
        }
        rows.append(row)
        print(pd.DataFrame([row]).to_string(index=False, float_format="{:.4f}".format), flush=True)
    table = pd.DataFrame(rows)
    print(
        f"\nvalidation periods, held-out assets, QLIKE (targets {args.targets}, seed {args.seed}, "
        f"{args.folds} folds, {time.perf_counter() - began:.0f}s):"
    )
    print(table.to_string(index=False, float_format="{:.4f}".format))
    best = table.loc[table["criterion"].idxmin()]
    print(
        "\nchosen: "
        f"variance_features={best['features']!r} (log_rv windows), "
        f"variance_models=[{best['models']!r}], variance_inner_lr={best['inner_lr']}, "
        f"variance_inner_steps={int(best['adapt_steps'])}, "
        f"variance_adapt_steps={int(best['adapt_steps'])}, "
        f"variance_meta_steps={int(best['meta_steps'])}"
    )


if __name__ == "__main__":
    main()
