"""Kill a meta-training process mid-epoch with SIGKILL, restart it, and get the weights of a
run that was never interrupted.

Keras 3's `BackupAndRestore` restores the weights, the optimizer state and the epoch, but
not the position inside an epoch: its metadata holds the last batch, yet `fit` restarts the
interrupted epoch from its first batch. So backups are taken at the end of each epoch
(`save_freq="epoch"`) and the resumed run redoes the epoch that was killed, which makes the
result exact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).with_name("resumable_training.py")
TIMEOUT_S = 120
STOP_EPOCH, STOP_BATCH = 2, 3  # of 4 epochs x 6 meta-batches


def _start(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def _finish(process: subprocess.Popen) -> None:
    try:
        out, err = process.communicate(timeout=TIMEOUT_S)
    finally:
        process.kill()
    assert process.returncode == 0, out + err


def _wait_for(path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError("training ended before the kill point:\n" + process.stderr.read())
        if time.monotonic() > deadline:
            raise AssertionError(f"no signal file after {TIMEOUT_S}s")
        time.sleep(0.05)


@pytest.mark.slow
def test_killed_and_resumed_training_ends_with_the_uninterrupted_weights(tmp_path):
    backup, signal_file = tmp_path / "backup", tmp_path / "at_kill_point"
    reference = _start(tmp_path / "reference_backup", tmp_path / "reference.npz")
    victim = _start(
        backup, tmp_path / "never.npz", "--stop-at", STOP_EPOCH, STOP_BATCH, signal_file
    )
    try:
        _wait_for(signal_file, victim)
        # The backup of the last finished epoch is on disk: the process dies mid-epoch.
        metadata = json.loads((backup / "training_metadata.json").read_text())
        assert metadata["epoch"] == STOP_EPOCH
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.wait(timeout=TIMEOUT_S) == -signal.SIGKILL
    finally:
        victim.kill()
        victim.communicate()
    assert not (tmp_path / "never.npz").exists()
    _finish(_start(backup, tmp_path / "resumed.npz"))  # the same command, without the stop
    _finish(reference)

    resumed, expected = np.load(tmp_path / "resumed.npz"), np.load(tmp_path / "reference.npz")
    assert int(expected["first_epoch"]) == 0
    assert int(resumed["first_epoch"]) == STOP_EPOCH, "the restart resumed from the backup"
    assert sorted(resumed.files) == sorted(expected.files)
    for name in expected.files:
        if name != "first_epoch":  # weights and optimizer state (Adam moments, iterations)
            np.testing.assert_array_equal(resumed[name], expected[name], err_msg=name)
    assert not backup.exists(), "the backup is deleted once training completes"
