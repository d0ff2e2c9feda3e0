"""What a result was measured on, for reports and benchmark scripts."""

from __future__ import annotations

import os
import platform


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
