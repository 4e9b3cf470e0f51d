"""Importing the reference packages ``wechsel`` (0.0.4) and ``deepfocus`` (1.0.1) offline.

Both import modules at module level that the code paths used by this project never call
(``datasets``, ``nltk``, ``gensim``: training, downloading, word2vec). Where those are not
installed they are replaced by empty modules while the reference package is imported, and
removed from ``sys.modules`` again afterwards. What the reference code then runs is real:
scikit-learn's cosine similarity and scipy's Procrustes (wechsel), fastdist/numba and entmax
(deepfocus). Install them with ``pip install --no-deps wechsel==0.0.4 deepfocus==1.0.1``.

Used by tests/test_wechsel_focus.py and bench/reference_methods.py.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types

INSTALL = "pip install --no-deps wechsel==0.0.4 deepfocus==1.0.1"

# Imported at module level by the reference packages, never called on the code paths used here.
UNUSED = {
    "datasets": {"load_dataset": None},
    "datasets.fingerprint": {"Hasher": None},
    "datasets.load": {"load_dataset": None},
    "nltk": {},
    "gensim": {},
    "gensim.models": {"Word2Vec": type("Word2Vec", (), {})},
}


class ReferenceUnavailable(ImportError):
    """The reference package is not installed, or cannot be imported; the message says which."""


@contextlib.contextmanager
def stand_ins(names: dict[str, dict]):
    """Empty modules (with the given attributes) for packages that are not installed, only while
    a reference package is imported: ``sys.modules`` is restored afterwards."""
    added = []
    for name, attributes in names.items():
        top = name.split(".")[0]
        if top not in added and importlib.util.find_spec(top) is not None:
            continue
        module = sys.modules.get(name) if name in added else None
        if module is None:
            module = types.ModuleType(name)
            sys.modules[name] = module
            added.append(name)
        for key, value in attributes.items():
            setattr(module, key, value)
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


def import_reference(package: str):
    """The reference package ``package`` ("wechsel" or "deepfocus"), imported with the stand-ins;
    raises :class:`ReferenceUnavailable` when it is not installed or cannot be imported."""
    if importlib.util.find_spec(package) is None:
        raise ReferenceUnavailable(f"reference package {package} is not installed ({INSTALL})")
    if package in sys.modules:
        return sys.modules[package]
    with stand_ins(UNUSED):
        try:
            return importlib.import_module(package)
        except ImportError as error:
            raise ReferenceUnavailable(f"reference package {package} cannot be imported: {error}") from None
