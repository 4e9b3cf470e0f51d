"""Hypernetworks shipped with the package, found by the base model's embedding rows.

Each lives in ``hypernet/builtin/NAME/`` (``hypernet.json`` + ``hypernet.safetensors``, package
data). ``--method hypernet`` without ``--hypernet`` takes the one whose fingerprint (a hash of
the base model's embedding rows, see :func:`hypernet.model.fingerprint`) equals the model's:
the rows themselves decide, not the model's name or path, so a renamed copy of the same model
matches and another model never does. ``TRANSPLANT_HYPERNETS`` (directories separated by
``os.pathsep``) adds places to look, each holding hypernetwork directories like ``builtin/``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from transplant.errors import TransplantError
from .io import CONFIG_FILE, WEIGHTS_FILE
from .model import fingerprint

PACKAGE_DIR = Path(__file__).parent / "builtin"
SEARCH_PATH_VARIABLE = "TRANSPLANT_HYPERNETS"


@dataclass
class BuiltinHypernet:
    name: str
    directory: Path
    config: dict  # hypernet.json

    @property
    def weight_bytes(self) -> int:
        return (self.directory / WEIGHTS_FILE).stat().st_size


def search_path() -> list[Path]:
    extra = [Path(p) for p in os.environ.get(SEARCH_PATH_VARIABLE, "").split(os.pathsep) if p]
    return extra + [PACKAGE_DIR]


def builtin_hypernets() -> list[BuiltinHypernet]:
    """Every hypernetwork on the search path (its json read, its weights not loaded)."""
    found = []
    for root in search_path():
        if not root.is_dir():
            continue
        for directory in sorted(root.iterdir()):
            config_path = directory / CONFIG_FILE
            if config_path.is_file() and (directory / WEIGHTS_FILE).is_file():
                try:
                    config = json.loads(config_path.read_text())
                except ValueError:
                    continue  # not ours to judge here; `load` reports a broken one when chosen
                found.append(BuiltinHypernet(directory.name, directory, config))
    return found


def matching_builtin(source: torch.Tensor, kind: str = "input") -> BuiltinHypernet:
    """The built-in hypernetwork trained for the model whose ``kind`` rows are ``source``."""
    key = fingerprint(source)
    available = builtin_hypernets()
    for candidate in available:
        if candidate.config.get("fingerprints", {}).get(kind) == key:
            return candidate
    names = ", ".join(f"{c.name} ({c.config.get('source_rows')} x {c.config.get('embedding_dim')})" for c in available) or "none"
    raise TransplantError(
        f"no built-in hypernetwork matches this model's {kind} embeddings ({source.shape[0]} x {source.shape[1]}, fingerprint {key}; built in: {names}); "
        "pass --hypernet DIR (train one with `transplant hypernet train`)"
    )
