"""What every initialiser receives and returns, and the step they all share (exact-match copy)."""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar

from ..errors import TransplantError
from ..lazy import lazy_import
from .options import OptionInfo, checked_value, declared

torch = lazy_import("torch")  # methods are imported to build the CLI; torch loads when rows are made

if TYPE_CHECKING:
    from ..vocab import VocabMapping

EXACT = "exact"
SPECIAL = "special"

# What a method may need beyond the model's embedding rows and the two tokenizers, so that
# `transplant methods` can say it and a recipe can tell which methods it can prepare inputs for.
NEEDS = {
    "model": "the source model itself (it runs the model, not only its embedding rows)",
    "target_text": "text in the new tokenizer's language (--target-corpus)",
    "static_vectors": "fastText vectors, or text to train them on",
    "dictionary": "a bilingual dictionary (--dictionary)",
    "donor": "a donor model that already uses the new tokenizer (--donor)",
    "hypernetwork": "a trained hypernetwork (--hypernet)",
}


@dataclass
class ModelAccess:
    """What a method that runs the model itself (``tokendistill``) gets beyond embedding rows.

    The model is loaded only when ``load_model`` is called, so methods that only mix rows never
    pay for it. ``run_dir`` is a scratch directory beside the output for resumable checkpoints.
    """

    load_model: Callable[[], object]  # the source model (transformers), in full precision
    source_tokenizer: object
    target_tokenizer: object
    run_dir: Path | None = None


@dataclass
class InitInputs:
    """One vocabulary tensor to rebuild: input embeddings, output head, or head bias (as [rows, 1])."""

    mapping: VocabMapping
    source: torch.Tensor  # [source rows, width], float32
    kind: str  # "input", "output" or "output_bias"
    generator: torch.Generator
    progress: bool = True  # whether long steps may show progress bars
    model: ModelAccess | None = None  # the source model and both tokenizers, for methods that run it

    def token_rows(self) -> torch.Tensor:
        """Source rows of real tokens: no special tokens, no padding rows beyond the tokenizer."""
        ids = [i for i, key in enumerate(self.mapping.source.canonical) if key is not None and i < len(self.source)]
        return self.source[ids]


@dataclass
class NoOptions:
    pass


class Initializer:
    """Base class: subclasses set ``name``, optionally ``Options`` (a dataclass whose fields are
    declared with :func:`~transplant.init.options.option`) and ``needs``, and implement ``rows``.
    The first line of the method module's docstring is its summary in ``transplant methods``."""

    name: ClassVar[str]
    Options: ClassVar[type] = NoOptions
    needs: ClassVar[tuple[str, ...]] = ()  # keys of NEEDS
    # Old option names still accepted from the Python API, with a warning: {old: new}.
    renamed_options: ClassVar[dict[str, str]] = {}
    # The option naming another method whose own options this one accepts and passes on
    # (tokendistill's ``init``), or None.
    passes_options_to: ClassVar[str | None] = None
    copies_exact_matches: ClassVar[bool] = True
    # Methods built on similarities between embedding rows have nothing to say about a head's
    # bias vector; for them the bias is rebuilt by ``fvt``.
    handles_bias: ClassVar[bool] = True
    # Methods whose ``rows`` treat each token on its own may be given the new tokens in batches of
    # this many: a million new tokens then need one batch of temporaries (queries, neighbour
    # rows) beside the result matrix, not several result-sized copies.
    row_batch: ClassVar[int | None] = None

    def unties_head(self, tied_rows: torch.Tensor) -> bool:
        """True when a tied model (whose tied matrix is ``tied_rows``) should get head rows of its
        own (an "output" role built from the tied matrix): a method whose input rows are learned
        may want the head left as init, a hypernetwork may predict a head of its own."""
        return False

    def report(self) -> dict:
        """Anything the method measured (budgets, timings) for the conversion report."""
        return {}

    @classmethod
    def declared_options(cls) -> list[OptionInfo]:
        return declared(cls.Options)

    @classmethod
    def summary(cls) -> str:
        """The first line of the method module's docstring, without its leading ``name``."""
        lines = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
        line = lines[0] if lines else cls.name
        return line.split(": ", 1)[1] if line.startswith("``") and ": " in line else line

    def __init__(self, **options):
        for old, new in self.renamed_options.items():
            if old in options:
                warnings.warn(f"method '{self.name}': option '{old}' is now called '{new}'", FutureWarning, stacklevel=3)
                options.setdefault(new, options.pop(old))
        infos = {info.name: info for info in self.declared_options()}
        unknown = sorted(set(options) - set(infos))
        if unknown:
            allowed = ", ".join(sorted(infos)) or "none"
            raise TransplantError(f"method '{self.name}' has no option {', '.join(unknown)} (its options: {allowed})")
        values = {name: checked_value(self.name, infos[name], value) for name, value in options.items()}
        self.options = self.Options(**values)
        self.check()  # before a conversion does any heavy work

    def check(self) -> None:
        """Raise TransplantError for options that cannot work (a required input missing, ...)."""

    def rows(self, inputs: InitInputs, target_ids: list[int]) -> tuple[torch.Tensor, list[str]]:
        """New rows for ``target_ids`` and, for each, the name of the rule that set it."""
        raise NotImplementedError

    def initialize(self, inputs: InitInputs, size: int) -> tuple[torch.Tensor, list[str]]:
        """The whole new tensor of ``size`` rows: exact matches copied first, the rest by ``rows``."""
        mapping = inputs.mapping
        matrix = torch.empty(size, inputs.source.shape[1], dtype=torch.float32)
        rules = [""] * size
        copied, sources, rest = [], [], []
        for target_id in range(size):
            source_id = mapping.matches[target_id] if target_id < len(mapping.matches) else -1
            if self.copies_exact_matches and 0 <= source_id < len(inputs.source):
                copied.append(target_id)
                sources.append(source_id)
                rules[target_id] = SPECIAL if mapping.match_kind[target_id] == SPECIAL else EXACT
            else:
                rest.append(target_id)
        if copied:  # one gather, not a row copy per token (a million of them at scale)
            matrix[copied] = inputs.source[sources]
        step = self.row_batch or max(len(rest), 1)
        for start in range(0, len(rest), step):
            batch = rest[start : start + step]
            values, names = self.rows(inputs, batch)
            matrix[batch] = values
            del values
            for target_id, name in zip(batch, names):
                rules[target_id] = name
        return matrix, rules
