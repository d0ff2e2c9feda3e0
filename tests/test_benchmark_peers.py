"""scripts/benchmark_peers.py: the peers compute metazoo's second-order MAML step."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "benchmark_peers.py"


def load_script():
    spec = importlib.util.spec_from_file_location("benchmark_peers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lstm_case(seed=0, tasks=2, points=3, window=(4, 3), units=5):
    """Random LSTM weights in Keras' layout and one meta-batch."""
    rng = np.random.default_rng(seed)
    lookback, features = window
    shapes = [(features, 4 * units), (units, 4 * units), (4 * units,), (units, 1), (1,)]
    weights = [(0.5 * rng.standard_normal(s)).astype(np.float32) for s in shapes]
    batch = tuple(
        rng.standard_normal(s).astype(np.float32)
        for s in [(tasks, points, lookback, features), (tasks, points, 1)] * 2
    )
    return weights, batch


def test_torch_lstms_agree_and_the_check_catches_a_wrong_gate_order():
    script = load_script()
    weights, batch = lstm_case()
    vmapped = script.TorchLSTMVmap([batch], weights).check(batch)
    looped = script.TorchLSTMLoop([batch], weights).check(batch)
    diff, loss_diff, ok = script.compare(vmapped, looped)
    assert ok and diff < 1e-5 and loss_diff < 1e-6
    assert [g.shape for g in looped[1]] == [w.shape for w in weights]
    # Keras' gate order read as i, c, f, o (forget and cell blocks swapped) must not pass.
    units = weights[1].shape[0]
    blocks = [0, 2, 1, 3]

    def swap(w):
        return np.concatenate([w[..., b * units : (b + 1) * units] for b in blocks], axis=-1)

    swapped = [swap(w) for w in weights[:3]] + weights[3:]
    wrong = script.TorchLSTMLoop([batch], swapped).check(batch)
    wrong = (wrong[0], [swap(g) for g in wrong[1][:3]] + wrong[1][3:])
    assert not script.compare(vmapped, wrong)[2]


def quick_run(*setups):
    """The script's `--quick` output on one thread; fails if its gradient check fails."""
    env = os.environ | {"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, str(SCRIPT), "--quick", "--threads", "1", "--warmup", "1"]
    command += ["--setups", *setups]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "FAILED" not in done.stdout
    rows = re.findall(
        r"^\| (.+?) \| ([\d,.]+) \|.*\| ([\d.e+-]+) / ([\d.e+-]+) \|$", done.stdout, re.M
    )
    for _, rate, grad_diff, loss_diff in rows:
        assert float(rate.replace(",", "")) > 0
        assert float(grad_diff) < 1e-4 and float(loss_diff) < 1e-4
    return [label for label, *_ in rows]


def test_quick_sinusoid_run_checks_metazoo_against_torch_func():
    assert quick_run("sinusoid") == ["metazoo train_on_batch", "torch.func + vmap"]


@pytest.mark.slow
def test_quick_lstm_run_checks_metazoo_against_both_torch_lstms():
    labels = quick_run("lstm")
    assert labels == [
        "metazoo train_on_batch",
        "torch, LSTM cell written out, vmap over tasks",
        "torch nn.LSTM, task loop",
    ]
