"""One registry of trainers: what the experiment compares, the scripts reproduce, the
notebooks show and the tests check, each entry a name, a class, default arguments and
what the learner is built from.

Adding a learner is one module (the class) and one `register` call below.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

NEEDS = ("base", "experts", "members")
TRAINS_ON = ("episodes", "windows", "nothing")


@dataclass(frozen=True)
class TrainerSpec:
    """A registered trainer.

    Attributes:
        name: the registry name (the experiment's learner kind).
        path: where the class is, `"module:Class"` (imported on first use of `cls`).
        defaults: constructor arguments of this entry (on top of the class defaults).
        needs: what the constructor's first argument is: `"base"` (one zoo network),
            `"experts"` (networks trained beforehand, one per training asset and one on
            all) or `"members"` (untrained networks trained together).
        trains_on: what `fit` takes in an experiment: `"episodes"` (meta-batches),
            `"windows"` (plain samples) or `"nothing"`.
        few_shot: whether it follows the few-shot contract (`adapt`, `predict_tasks`).
        summary: one line for listings.
    """

    name: str
    path: str
    defaults: Mapping = field(default_factory=dict)
    needs: str = "base"
    trains_on: str = "episodes"
    few_shot: bool = True
    summary: str = ""

    @property
    def cls(self) -> type:
        """The trainer class."""
        module, name = self.path.split(":")
        return getattr(importlib.import_module(module), name)

    def arguments(self) -> frozenset:
        """Names the constructor accepts, through every metazoo class it inherits from."""
        names = set()
        for klass in self.cls.__mro__:
            if klass.__module__.startswith("metazoo") and "__init__" in vars(klass):
                signature = inspect.signature(klass.__init__)
                names |= {
                    n
                    for n, p in signature.parameters.items()
                    if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
                }
        return frozenset(names)

    def create(self, source, **settings):
        """An instance built from `source` (a network, or a list for experts and members)
        with this entry's defaults; `settings` the constructor does not take are ignored,
        so one dict of settings serves every entry."""
        accepted = self.arguments()
        chosen = {k: v for k, v in settings.items() if k in accepted}
        return self.cls(source, **{**self.defaults, **chosen})


_ENTRIES: dict[str, TrainerSpec] = {}


def register(
    name, path, defaults=None, needs="base", trains_on="episodes", few_shot=True, summary=""
):
    """Add a trainer to the registry (names are unique)."""
    if name in _ENTRIES:
        raise ValueError(f"name expected a new trainer name. Received: {name!r} (registered)")
    if needs not in NEEDS or trains_on not in TRAINS_ON:
        raise ValueError(
            f"needs expected one of {NEEDS} and trains_on one of {TRAINS_ON}. "
            f"Received: needs={needs!r}, trains_on={trains_on!r}"
        )
    defaults = MappingProxyType(dict(defaults or {}))
    _ENTRIES[name] = TrainerSpec(name, path, defaults, needs, trains_on, few_shot, summary)
    return _ENTRIES[name]


def available(few_shot: bool | None = None) -> list[str]:
    """Registered names in registration order (only few-shot learners, or only the others)."""
    return [n for n, s in _ENTRIES.items() if few_shot is None or s.few_shot == few_shot]


def get(name: str) -> TrainerSpec:
    """The entry of `name`."""
    if name not in _ENTRIES:
        raise ValueError(f"name expected one of {available()}. Received: name={name!r}")
    return _ENTRIES[name]


def _register_all() -> None:
    register(
        "pooled",
        "metazoo.trainers.pooled:Pooled",
        trains_on="windows",
        summary="one network on every sample",
    )
    register(
        "finetune",
        "metazoo.trainers.finetuned:FineTuned",
        trains_on="windows",
        summary="pooled + fine-tuning",
    )
    register(
        "scratch",
        "metazoo.trainers.scratch:Scratch",
        trains_on="nothing",
        summary="a new network per task",
    )
    register(
        "averaging",
        "metazoo.trainers.averaging:ModelAveraging",
        {"weighting": "inverse_error"},
        needs="members",
        trains_on="windows",
        few_shot=False,
        summary="model averaging, no adaptation",
    )
    register("maml", "metazoo.trainers.maml:MAML", summary="MAML")
    register(
        "fomaml", "metazoo.trainers.maml:MAML", {"first_order": True}, summary="first-order MAML"
    )
    register("reptile", "metazoo.trainers.reptile:Reptile", summary="Reptile")
    register("meta_sgd", "metazoo.trainers.meta_sgd:MetaSGD", summary="Meta-SGD")
    register("anil", "metazoo.trainers.anil:ANIL", summary="ANIL")
    register(
        "context",
        "metazoo.trainers.model_based:ContextMetaLearner",
        summary="context encoder, FiLM and head",
    )
    register(
        "context_memory",
        "metazoo.trainers.model_based:ContextMetaLearner",
        {"memory_size": 256, "memory": "episodic"},
        summary="context learner with an episodic memory",
    )
    register(
        "prototypes",
        "metazoo.trainers.metric_based:ExpertPrototypes",
        needs="experts",
        summary="expert prototypes",
    )
    register(
        "meta_averaging",
        "metazoo.trainers.meta_averaging:MetaLearnedAveraging",
        needs="experts",
        summary="meta-learned averaging",
    )


_register_all()
