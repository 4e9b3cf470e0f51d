"""transplant: move a pretrained language model onto a new tokenizer.

    import transplant
    model, tokenizer, report = transplant.transplant("path/to/model", "path/to/tokenizer", method="fvt")
    transplant.save(model, tokenizer, "out/")
    transplant.convert("path/to/model", "path/to/tokenizer", "out/", method="fvt")  # streaming, on disk

The names below are imported on first use, so that ``transplant --help`` and argument errors
answer without loading torch and transformers (seconds of imports).
"""

from __future__ import annotations

import importlib

_API = {
    "TransplantError": ("errors", "TransplantError"),
    "TransplantReport": ("core", "TransplantReport"),
    "available_methods": ("init", "available"),
    "convert": ("core", "convert"),
    "load_model": ("loading", "load_model"),
    "load_tokenizer": ("loading", "load_tokenizer"),
    "save": ("core", "save"),
    "transplant": ("core", "transplant"),
    "trusting_remote_code": ("remote_code", "trusting_remote_code"),
}
__all__ = sorted(_API)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'transplant' has no attribute '{name}'")
    module, attribute = _API[name]
    value = getattr(importlib.import_module(f".{module}", __name__), attribute)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
