"""Initialisers behind one name registry: adding a method means adding one file in this package.

A method is a subclass of :class:`Initializer` decorated with :func:`register`, whose options are
declared with :func:`option` (see :mod:`.options`); every module in this package is imported on
first use, so a new file is picked up without touching this one, and ``convert``'s flags and
``transplant methods`` are generated from the declarations. Methods of other packages register
through the ``transplant.methods`` entry point group.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import warnings

from ..errors import TransplantError
from .base import EXACT, NEEDS, SPECIAL, InitInputs, Initializer, ModelAccess
from .options import OptionInfo, option

_REGISTRY: dict[str, type[Initializer]] = {}


def register(cls: type[Initializer]) -> type[Initializer]:
    _REGISTRY[cls.name] = cls
    return cls


ENTRY_POINTS = "transplant.methods"  # other packages' methods (the hypernetwork's) register here
_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for module in pkgutil.iter_modules(__path__):
        if module.name not in ("base", "options"):
            importlib.import_module(f"{__name__}.{module.name}")
    for entry in importlib.metadata.entry_points(group=ENTRY_POINTS):
        try:
            entry.load()  # its module calls register()
        except ImportError as error:  # an uninstalled plugin must not break every other method
            warnings.warn(f"method plugin {entry.name} ({entry.value}) failed to import: {error}", stacklevel=2)
    _loaded = True


def available() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def method_class(name: str) -> type[Initializer]:
    _load_all()
    if name not in _REGISTRY:
        raise TransplantError(f"unknown method '{name}' (available: {', '.join(available())})")
    return _REGISTRY[name]


def get(name: str, **options) -> Initializer:
    return method_class(name)(**options)


__all__ = ["EXACT", "NEEDS", "SPECIAL", "InitInputs", "Initializer", "ModelAccess", "OptionInfo", "available", "get", "method_class", "option", "register"]
