"""Initialisers behind one name registry: adding a method means adding one file in this package.

A method is a subclass of :class:`Initializer` decorated with :func:`register`; every module in
this package is imported on first use, so a new file is picked up without touching this one.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..errors import TransplantError
from .base import EXACT, SPECIAL, InitInputs, Initializer, ModelAccess

_REGISTRY: dict[str, type[Initializer]] = {}


def register(cls: type[Initializer]) -> type[Initializer]:
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name not in ("base",):
            importlib.import_module(f"{__name__}.{module.name}")


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


__all__ = ["EXACT", "SPECIAL", "InitInputs", "Initializer", "ModelAccess", "available", "get", "method_class", "register"]
