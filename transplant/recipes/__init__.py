"""Recipes: a model adapted to one language end to end, each step cached and resumable.

- :mod:`.spec`: :class:`RecipeSpec`, what a language changes;
- :mod:`.languages`: one spec per language (its module docstring is ``transplant recipe LANG --help``);
- :mod:`.options`: the recipe's command-line options;
- :mod:`.steps`: steps built once into the work directory and reused;
- :mod:`.pipeline`: :class:`Recipe`, the six steps;
- :mod:`.downloads`, :mod:`.report`: what a recipe fetches, and what it writes;
- :mod:`.command`: :func:`main`, one run with one ``Error:`` line for expected failures.

``recipes/*.py`` in the checkout run the same specs as scripts.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from pathlib import Path

from ..errors import TransplantError


from . import languages
from .spec import RecipeSpec


def available() -> list[str]:
    return sorted(module.name for module in pkgutil.iter_modules(languages.__path__))


def find_recipe(name_or_file: str):
    """(spec, docstring, file) of a built-in recipe by name, or of a recipe file the user names
    (a Python file defining ``SPEC``; running it is what the user asked for)."""
    path = Path(name_or_file)
    if path.suffix == ".py":
        if not path.is_file():
            raise TransplantError(f"recipe file not found: {path}")
        loader = importlib.util.spec_from_file_location(f"transplant_user_recipe_{path.stem}", path)
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
    elif name_or_file in available():
        module = importlib.import_module(f"{languages.__name__}.{name_or_file}")
    else:
        raise TransplantError(f"no recipe '{name_or_file}' (built in: {', '.join(available())}; or give a recipe .py file)")
    spec = getattr(module, "SPEC", None)
    if spec is None:
        raise TransplantError(f"{name_or_file} defines no SPEC (a transplant.recipes.RecipeSpec)")
    return spec, module.__doc__, Path(module.__file__)


__all__ = ["RecipeSpec", "available", "find_recipe"]
