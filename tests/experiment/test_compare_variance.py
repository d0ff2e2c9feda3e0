"""scripts/compare_variance.py: DM tests of a run's variance forecasts against any model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "compare_variance.py"


def _script():
    spec = importlib.util.spec_from_file_location("compare_variance", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_dir(tmp_path):
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2020-01-01", periods=300)
    truth = rng.chisquare(1, len(dates)) * 1e-4
    rows = []
    for model, error in (("good", 0.0), ("bad", 1.5), ("har_log", 0.7)):
        forecast = 1e-4 * np.exp(error * rng.normal(size=len(dates)))
        rows.append(
            pd.DataFrame(
                {
                    "target": "variance",
                    "fold": "A",
                    "eval_set": "held_out_assets",
                    "model": model,
                    "date": dates,
                    "symbol": "X",
                    "pred_1": forecast,
                    "true_1": truth,
                }
            )
        )
    pd.concat(rows).to_csv(tmp_path / "predictions.csv.gz", index=False)
    return tmp_path


def test_the_better_model_is_significant_and_the_worse_is_not(tmp_path, capsys):
    _script().main([str(_run_dir(tmp_path)), "--reference", "har_log"])
    lines = {
        line.split()[0]: float(line.split()[-1])
        for line in capsys.readouterr().out.splitlines()[-2:]
    }
    assert lines["good"] < 0.05 < lines["bad"]


def test_an_unknown_reference_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--reference expected a model of the run"):
        _script().main([str(_run_dir(tmp_path)), "--reference", "garch11"])
