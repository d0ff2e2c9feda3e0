"""What a result was measured on, for reports and benchmark scripts."""

from __future__ import annotations

import os
import platform
import sys


def describe_machine() -> str:
    """Processor, cores, GPUs, platform and the versions of Python, TensorFlow and Keras."""
    import keras
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    return (
        f"{platform.processor() or platform.machine()}, os.cpu_count()={os.cpu_count()}, "
        f"{gpus} GPU(s), {platform.platform()}, Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}"
    )


def import_tensorflow_quietly() -> None:
    """Import TensorFlow without its C++ start-up log on the terminal.

    TensorFlow's native libraries write lines such as "Could not find cuda drivers" to
    file descriptor 2 while they load, before any log level applies; they say nothing
    about the run. Descriptor 2 is pointed at the null device for the import alone (a
    failed import still raises, after it is restored), and `TF_CPP_MIN_LOG_LEVEL`
    defaults to 3 so that TensorFlow's native log stays quiet; Python warnings and
    errors are not affected. Set `TF_CPP_MIN_LOG_LEVEL=0` to see everything.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


MAX_AUTO_JOBS = 4  # worker processes `jobs=0` may start: each holds its own TensorFlow


def resolve_jobs(jobs: int, parts: int) -> int:
    """Worker processes for `parts` independent parts: `jobs`, or with 0 one per CPU
    core this process may use (at most `MAX_AUTO_JOBS`); never more than `parts`."""
    if jobs == 0:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover (not on Linux)
            cores = os.cpu_count() or 1
        jobs = min(cores, MAX_AUTO_JOBS)
    return max(1, min(jobs, parts))
