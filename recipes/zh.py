"""Chinese: SmolLM2-135M moved onto a Chinese tokenizer, measured, and written as a report.

    python recipes/zh.py [options]      # the same as: transplant recipe zh [options]

The recipe itself (its parameters and what it measured best) is transplant/recipes/languages/zh.py; this
script runs it from a checkout without installing the package.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, when not installed

from transplant.recipes.command import main  # noqa: E402
from transplant.recipes.languages.zh import SPEC, __doc__ as RECIPE_DOC  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(SPEC, __file__, RECIPE_DOC))  # the six steps of transplant.recipes.command.every_step
