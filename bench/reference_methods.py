"""The reference implementations of WECHSEL and FOCUS, run on exactly our inputs, for
bench/compare_methods.py.

Each reference package is wrapped as a transplant method (``wechsel-reference``: the
``wechsel`` package; ``focus-reference``: ``deepfocus``) whose ``initialize`` hands the whole new
matrix to the package. A reference conversion therefore goes through the same
``transplant.convert`` as ours: the same checkpoint reading, vocabulary mapping, config
remapping and checkpoint writing, so its wall time and peak RSS differ from ours only by how the
new rows are computed. Every row is the reference's own (no exact-match copy of ours).

The inputs are ours: the model's embedding matrix as ``convert`` reads it, the same tokenizers,
the same dictionary, and the very fastText models our ``wechsel``/``focus`` use.
:func:`static_vectors` finds them in transplant's fastText cache
(``cache_dir()/fasttext``) by asking it with our initialisers' own training parameters; it
trains them there only when they are missing, the same models our runs then load.

Importing this module registers the two methods; the packages themselves are imported only when
a conversion runs (see bench/reference_packages.py for how they are imported offline).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from reference_packages import ReferenceUnavailable, import_reference

from transplant.errors import TransplantError
from transplant.init import Initializer, InitInputs, get, register
from transplant.loading import load_tokenizer
from transplant.static import train_fasttext


@dataclass(frozen=True)
class Reference:
    label: str  # the row name in the benchmark's table
    package: str  # the reference package
    method: str  # the transplant method registered below


REFERENCES = {
    "wechsel": Reference("wechsel (reference package)", "wechsel", "wechsel-reference"),
    "focus": Reference("focus (reference: deepfocus)", "deepfocus", "focus-reference"),
}


def unavailable(method: str) -> str | None:
    """Why the reference for our ``method`` cannot run here (None when it can)."""
    try:
        import_reference(REFERENCES[method].package)
    except ReferenceUnavailable as error:
        return str(error)
    return None


def static_vectors(method: str, options: dict, tokenizer_dir: Path) -> tuple[dict[str, str], float]:
    """The fastText models our ``method`` uses with ``options`` (corpus options, as the benchmark
    gives them), as the reference's options, and the seconds it took to find (or train) them.

    The paths are transplant's cache entries for the same corpus, training parameters, word
    splitting and (FOCUS) target tokenizer that our initialisers ask for, so both runs load the
    very same files."""
    started = time.perf_counter()
    initializer = get(method, **options)
    params = initializer.fasttext_params()
    if method == "wechsel":  # word-level, punctuation split off, as WechselInit.side_vectors trains them
        paths = {
            f"{side}_vectors": train_fasttext(options[f"{side}_corpus"], params, words="split-punctuation")
            for side in ("source", "target")
        }
        paths["dictionary"] = options["dictionary"]
    elif method == "focus":  # token-level: the corpus written in the target tokenizer's tokens, as FocusInit.plan
        paths = {"target_vectors": train_fasttext(options["target_corpus"], params, tokenizer=load_tokenizer(tokenizer_dir))}
    else:
        raise ValueError(f"no reference implementation for {method}")
    return {key: str(value) for key, value in paths.items()}, time.perf_counter() - started


def _rules(size: int, *groups: tuple[str, set[int]], rest: str) -> list[str]:
    """A rule name per target id: the first group holding it, else ``rest``."""
    return [next((name for name, ids in groups if target_id in ids), rest) for target_id in range(size)]


def _check_rows(method: str, matrix: torch.Tensor, size: int) -> torch.Tensor:
    if matrix.shape[0] != size:
        raise TransplantError(f"{method}: the reference returned {matrix.shape[0]} rows for a vocabulary of {size}")
    return matrix.float()


@dataclass
class WechselReferenceOptions:
    source_vectors: str = ""
    target_vectors: str = ""
    dictionary: str = ""
    k: int = 10
    temperature: float = 0.1


@register
class WechselReference(Initializer):
    """``wechsel.WECHSEL(source fastText, target fastText, dictionary).apply(...)`` as it is."""

    name = "wechsel-reference"
    Options = WechselReferenceOptions
    copies_exact_matches = False
    handles_bias = False

    def check(self) -> None:
        for name in ("source_vectors", "target_vectors", "dictionary"):
            if not Path(getattr(self.options, name)).is_file():
                raise TransplantError(f"{self.name}: {name} not found: {getattr(self.options, name)!r}")

    def initialize(self, inputs: InitInputs, size: int) -> tuple[torch.Tensor, list[str]]:
        import fasttext

        wechsel = import_reference("wechsel")
        o = self.options
        source, target = inputs.mapping.source.tokenizer, inputs.mapping.target.tokenizer
        reference = wechsel.WECHSEL(fasttext.load_model(o.source_vectors), fasttext.load_model(o.target_vectors), bilingual_dictionary=o.dictionary)
        matrix, info = reference.apply(source, target, inputs.source.numpy(), neighbors=o.k, temperature=o.temperature)
        matrix = _check_rows(self.name, torch.from_numpy(matrix), size)
        # what the reference did with each token: special tokens copied, the rest by neighbours
        # unless fastText knows nothing of its text (then a random row)
        vocab = target.get_vocab()
        specials = {token for value in source.special_tokens_map.values() for token in ([value] if isinstance(value, str) else value)}
        not_found = set(info.not_found)
        random_ids = {target_id for target_id, token in enumerate(target.convert_ids_to_tokens(list(range(size)))) if token in not_found}
        return matrix, _rules(size, ("special", {vocab[t] for t in specials if t in vocab}), ("random", random_ids), rest="wechsel")


@dataclass
class FocusReferenceOptions:
    target_vectors: str = ""


@contextlib.contextmanager
def _results_of(module, name: str):
    """Record what ``module.name`` returns while inside (the reference's own bookkeeping)."""
    original = getattr(module, name)
    results = []

    def recording(*args, **kwargs):
        results.append(original(*args, **kwargs))
        return results[-1]

    setattr(module, name, recording)
    try:
        yield results
    finally:
        setattr(module, name, original)


@register
class FocusReference(Initializer):
    """``deepfocus.FOCUS(target, source, embeddings, fasttext_model_path=...)`` as it is."""

    name = "focus-reference"
    Options = FocusReferenceOptions
    copies_exact_matches = False
    handles_bias = False

    def check(self) -> None:
        if not Path(self.options.target_vectors).is_file():
            raise TransplantError(f"{self.name}: target_vectors not found: {self.options.target_vectors!r}")

    def initialize(self, inputs: InitInputs, size: int) -> tuple[torch.Tensor, list[str]]:
        deepfocus = import_reference("deepfocus")
        from deepfocus import focus as focus_module

        source, target = inputs.mapping.source.tokenizer, inputs.mapping.target.tokenizer
        # FOCUS's own split of the target vocabulary, read as it happens (no second computation):
        # overlapping tokens are copied, new tokens with a vector combined, the rest random
        with _results_of(focus_module, "get_overlapping_tokens") as split:
            matrix = deepfocus.FOCUS(target, source, inputs.source, fasttext_model_path=self.options.target_vectors, verbosity="silent")
        matrix = _check_rows(self.name, matrix, size)
        overlap, combined = split[0]  # FOCUS deletes the new tokens it sets randomly from the second dict
        copied = {token.target.id for token in overlap.values()}
        return matrix, _rules(size, ("exact", copied), ("focus", {token.target.id for token in combined.values()}), rest="random")
