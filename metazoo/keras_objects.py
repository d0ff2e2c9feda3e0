"""Metazoo's Keras classes, found by `keras.models.load_model` after a plain `import metazoo`.

How Keras 3 finds a custom class on load: a saved object's config names its
`registered_name` (`"metazoo>MAML"`) and its `module`. Keras looks the registered name up
in the registry that `@keras.saving.register_keras_serializable` fills (or in a
`custom_objects` scope); it imports the `module` only for its own packages (`keras`,
`keras_hub`, `keras_cv`, `keras_nlp`), never for others. A metazoo class is therefore
found only once the module that defines it has run.

`import metazoo` must not import TensorFlow, so it cannot import those modules. It calls
`install()` instead: once Keras's registry module is loaded (now or whenever Keras is
imported), a lookup of a `metazoo>` name that misses imports metazoo's Keras modules
(`register()`) and looks again. Nothing is imported until a metazoo object is loaded.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import sys

PREFIX = "metazoo>"
REGISTRY_MODULE = "keras.src.saving.object_registration"
_MARK = "_metazoo_lookup"


def register() -> None:
    """Import every metazoo module that registers Keras classes: the zoo (layers, heads,
    losses, models) and every trainer of `metazoo.trainers.registry`."""
    importlib.import_module("metazoo.models")
    from metazoo.trainers import registry

    for name in registry.available():
        importlib.import_module(registry.get(name).path.split(":")[0])


def install() -> None:
    """Make Keras's registry find metazoo's classes on first use (see the module
    docstring); safe to call more than once."""
    module = sys.modules.get(REGISTRY_MODULE)
    if module is not None:
        _wrap_lookup(module)
    elif not any(isinstance(f, _RegistryFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegistryFinder())


def _wrap_lookup(module) -> None:
    original = module.get_registered_object
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def get_registered_object(name, custom_objects=None, module_objects=None):
        found = original(name, custom_objects, module_objects)
        if found is None and isinstance(name, str) and name.startswith(PREFIX):
            register()
            found = original(name, custom_objects, module_objects)
        return found

    setattr(get_registered_object, _MARK, True)
    module.get_registered_object = get_registered_object


class _RegistryFinder(importlib.abc.MetaPathFinder):
    """Finds Keras's registry module with the other finders and wraps its lookup as soon
    as the module has run (before any other Keras module binds it)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != REGISTRY_MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _WrappingLoader(spec.loader)
        return spec


class _WrappingLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        _wrap_lookup(module)
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _RegistryFinder)]

    def __getattr__(self, name):
        return getattr(self.loader, name)
