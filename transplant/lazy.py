"""Modules loaded on first attribute access (the standard library's ``importlib.util.LazyLoader``).

The initialiser files use it for torch, numpy and the project's heavy modules: every method is
imported to build ``convert``'s flags and ``transplant methods``, and those must answer without
seconds of imports. ``name = lazy_import("torch")`` reads like ``import torch``; the module runs
the first time one of its attributes is used.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_import(name: str) -> ModuleType:
    """The module ``name`` (absolute), executed only when first used."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:  # not installed: fail where it is used, not on import
        return _Missing(name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class _Missing(ModuleType):
    """Stands for a module that is not installed; using it raises the ImportError an import would
    have (a method whose optional dependency is missing must not break the other methods)."""

    def __getattr__(self, attribute: str):
        raise ImportError(f"No module named '{self.__name__}' (needed here; pip install it)", name=self.__name__)
