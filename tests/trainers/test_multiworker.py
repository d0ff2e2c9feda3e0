"""Meta-training across two worker processes with `MultiWorkerMirroredStrategy`.

Two workers on loopback (each with its own `TF_CONFIG`) train MAML on the same meta-batches,
the tasks of each split between them, and a third process trains on one device. See
`multiworker_worker.py` for what runs in each process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).with_name("multiworker_worker.py")
TIMEOUT_S = 120
_DROPPED = {"http_proxy", "https_proxy", "all_proxy", "grpc_proxy", "tf_config"}


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _environment(tf_config: dict | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k.lower() not in _DROPPED}
    env |= {"TF_CPP_MIN_LOG_LEVEL": "3", "NO_PROXY": "127.0.0.1,localhost"}
    return env if tf_config is None else env | {"TF_CONFIG": json.dumps(tf_config)}


def _run_all(jobs: dict) -> dict:
    """Start `{name: (out_path, env)}` at once; wait for all under one deadline; kill them
    whatever happens. Returns `{name: (returncode, stderr)}`."""
    processes = {
        name: subprocess.Popen(
            [sys.executable, str(SCRIPT), str(out)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (out, env) in jobs.items()
    }
    deadline = time.monotonic() + TIMEOUT_S
    results = {}
    try:
        for name, process in processes.items():
            try:
                _, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                _, err = process.communicate()
                err = f"timed out after {TIMEOUT_S}s\n{err}"
            results[name] = (process.returncode, err)
    finally:
        for process in processes.values():
            process.kill()
    return results


def _train(tmp_path) -> dict:
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    jobs = {
        f"worker{i}": (
            tmp_path / f"worker{i}.npz",
            _environment({"cluster": cluster, "task": {"type": "worker", "index": i}}),
        )
        for i in range(2)
    }
    jobs["single"] = (tmp_path / "single.npz", _environment(None))
    return _run_all(jobs)


@pytest.mark.slow
def test_two_workers_train_in_lockstep_and_match_one_device(tmp_path):
    results = _train(tmp_path)
    if any("in use" in err for code, err in results.values() if code):
        results = _train(tmp_path)  # a free port was taken meanwhile: once more, new ports
    for name, (code, err) in results.items():
        assert code == 0, f"{name} failed:\n{err[-4000:]}"
    workers = [np.load(tmp_path / f"worker{i}.npz") for i in range(2)]
    single = np.load(tmp_path / "single.npz")
    assert [int(w["replicas"]) for w in workers] == [2, 2] and int(single["replicas"]) == 1
    assert int(workers[0]["iterations"]) == int(single["iterations"]) == 6  # 2 epochs x 3
    names = sorted(name for name in single.files if name.startswith("weight_"))
    assert names
    moved = max(np.abs(single[n] - single[n.replace("weight", "start")]).max() for n in names)
    assert moved > 1e-2, "training changed the weights"
    for name in names:
        np.testing.assert_array_equal(workers[0][name], workers[1][name], err_msg=name)
        np.testing.assert_allclose(workers[0][name], single[name], rtol=0, atol=1e-6)
    assert float(workers[0]["loss"]) == pytest.approx(float(single["loss"]), rel=1e-6)
