"""Running a recipe: its command-line options (defaults from the spec), the sequence of steps,
and one ``Error:`` line for an expected failure."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import click

from transplant.errors import TransplantError
from transplant.recipes.spec import RecipeSpec
from transplant.recipes.options import recipe_command
from transplant.recipes.pipeline import Recipe


def every_step(recipe: Recipe) -> None:
    """What every recipe runs, in order; a recipe that needs another sequence passes its own."""
    text = recipe.text()  # 1. dedupe, hold out
    tokenizer = recipe.tokenizer(text)  # 2. train-tokenizer, bytes per token before/after
    vectors = recipe.static_vectors(text, tokenizer)  # 3. fastText + dictionary (wechsel, focus)
    recipe.transplant(tokenizer, vectors)  # 4. convert with each method, score bits per byte
    final = recipe.distill(text)  # 5. --distill-tokens N
    recipe.report(final)  # 6. OUT/report.md, plots, model/


def main(spec: RecipeSpec, recipe_file: str | Path, doc: str | None, body=every_step, argv: list[str] | None = None, invoked_as: list[str] | None = None) -> int:
    """Parse ``argv`` and run ``body(recipe)``; an expected failure ends with one ``Error:`` line and
    status 1 (2 for a bad option).

    ``invoked_as``: the command that ran it (``["transplant", "recipe", "de"]``), for messages and
    the report; default: this Python and the recipe file."""
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    argv = list(sys.argv[1:] if argv is None else argv)

    def run(**options) -> None:
        body(Recipe.from_options(spec, argparse.Namespace(**options), recipe_file, argv, invoked_as))

    command = recipe_command(spec, doc, run)
    prog = " ".join(invoked_as) if invoked_as else f"python {os.path.relpath(recipe_file)}"
    try:
        command.main(args=argv, prog_name=prog, standalone_mode=False)
    except click.exceptions.Exit as done:  # --help
        return done.exit_code
    except click.UsageError as error:  # a bad option: the Error line alone, as every command
        print(f"Error: {error.format_message()}", file=sys.stderr)
        return 2
    except TransplantError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: finished steps are kept; run the same command again to resume", file=sys.stderr)
        return 130
    return 0
