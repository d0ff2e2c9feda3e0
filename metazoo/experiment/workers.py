"""Entry points of the worker processes of `metazoo run --jobs N`.

A spawned worker imports this module to find its initializer, before anything else: it
must not import TensorFlow itself, so that `start` can import it quietly (see
`metazoo.experiment.environment.import_tensorflow_quietly`), as the command line does.
"""

from __future__ import annotations

_STATE = {}  # the worker's progress queue


def start(lines) -> None:
    """Initializer of a worker: TensorFlow, imported without its start-up log, and the
    queue that the worker's progress lines go to."""
    from metazoo.experiment.environment import import_tensorflow_quietly

    import_tensorflow_quietly()
    import metazoo.experiment.learners  # noqa: F401 (what every part needs, loaded at start)

    _STATE["say"] = lines.put


def ready() -> None:
    """A task that does nothing: submitted first, it makes the pool start its workers."""


def check_zoo(config) -> str:
    """`metazoo.experiment.config.check_zoo(config)` in a worker; returns the machine's
    description (`describe_machine`, which reads TensorFlow) for the report."""
    from metazoo.experiment.config import check_zoo as check
    from metazoo.experiment.environment import describe_machine

    check(config)
    return describe_machine()


def run_part(*args) -> list:
    """`metazoo.experiment.run._run_part(*args)`, its progress lines sent to the queue."""
    from metazoo.experiment.run import _run_part

    return _run_part(*args, _STATE["say"])
