"""One recipe spec per language: ``SPEC`` (a :class:`~transplant.recipes.spec.RecipeSpec`) and the
docstring ``transplant recipe LANG --help`` shows."""
