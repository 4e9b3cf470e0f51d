"""``focus``: a new token is a sparsemax mix of shared tokens, by similarity of target-side vectors.

FOCUS (Dobler & de Melo, 2023). fastText is trained on target-language text written as the
*target* tokenizer's tokens (``--target-corpus``; CBOW, dim 100, 3 epochs, minCount 10, as in
``deepfocus``; cached), or such a token-level model is given (``--target-vectors``; models
trained by ``deepfocus`` work, tokens are spelled the same). Anchors are the tokens the target
shares with the source (same bytes) that have a vector; they keep their source rows. Every
other token t with a vector gets

    new[t] = Σ_a sparsemax(cos(v_t, v_a))_a · E_old[source id of a]      over anchors a

a convex combination of few anchors. The similarities are found with
:class:`~transplant.neighbors.NeighborIndex` (never a dense new x anchors matrix): sparsemax
runs over each token's ``anchors`` (default 64) most similar anchors, and rows whose support fills
them all are searched again with twice as many, so the result equals sparsemax over all anchors.
Tokens without a vector (too rare for fastText's minCount) get the FVT estimate (rule ``fvt``),
not random rows. ``level="word"`` (Python API) uses word-level vectors of the token's text
instead, like deepfocus's ``fasttext-wordlevel``. A head's bias is rebuilt by ``fvt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from ..errors import TransplantError
from ..lazy import lazy_import
from . import option, register
from .base import Initializer, InitInputs
from .wechsel import (
    PROGRESS_FROM,
    SimilarityPlan,
    apply_plan,
    check_vectors_or_corpus,
)

entmax = lazy_import("entmax")
torch = lazy_import("torch")
static = lazy_import("transplant.static")
neighbors = lazy_import("transplant.neighbors")

if TYPE_CHECKING:
    from ..static import FastTextParams
    from ..vocab import VocabMapping

RULE = "focus"


def sparsemax(scores: torch.Tensor) -> torch.Tensor:
    """Sparsemax along the last dimension (Martins & Astudillo, 2016), from the ``entmax`` package."""
    return entmax.sparsemax(scores.double(), dim=-1).float()


def top_k_sparsemax(index: neighbors.NeighborIndex, queries: torch.Tensor, k: int, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sparsemax over the similarities of each query to every anchor in ``index``, computed from
    each query's most similar anchors only; returned sparse as (query rows, anchor positions,
    weights) of the non-zero weights.

    Restricting sparsemax to the top k scores is exact when the support of the result is
    smaller than k: sparsemax(z) = max(z - tau, 0), and tau is found from the sorted scores
    alone, as the largest s with 1 + s * z_(s) > z_(1) + ... + z_(s) (here z_(1) >= z_(2) >= ...
    are the sorted scores); that test holds exactly for s up to the support size, so it only ever
    reads the top support-plus-one scores. A row whose support reaches k might have been cut
    short, so it is searched again with 2k anchors, until its support is below k or k covers all
    anchors.
    """
    total = len(index)
    width = min(k, total)
    pending = torch.arange(len(queries))
    rows, positions, weights = [], [], []
    while len(pending):
        scores, found = index.search(queries[pending], width, progress=progress and len(pending) >= PROGRESS_FROM)
        result = sparsemax(scores)
        result = torch.where(found >= 0, result, torch.zeros_like(result))
        done = ((result > 0).sum(-1) < width) | (width >= total)
        keep = (result > 0) & done.unsqueeze(1)
        rows.append(pending.unsqueeze(1).expand_as(found)[keep])
        positions.append(found[keep])
        weights.append(result[keep])
        pending = pending[~done]
        width = min(2 * width, total)
    return torch.cat(rows), torch.cat(positions), torch.cat(weights)


@dataclass
class FocusOptions:
    target_vectors: str | Path | None = option(None, "fastText .bin trained on target text written as the new tokenizer's tokens (e.g. by deepfocus).", kind="path")
    target_corpus: str | Path | None = option(None, "Target-language text to train token-level fastText on when no target vectors are given.", kind="path")
    # widened per token where the sparsemax support needs more, so the result does not depend on it
    anchors: int = option(64, "Most similar shared tokens sparsemax starts from (searched again with twice as many where all are used).", minimum=1)
    level: str = option("token", "token: token-level fastText vectors (FOCUS); word: word-level vectors of the token's text.", choices=("token", "word"))
    # fastText training when a corpus is given (deepfocus's defaults)
    dim: int = option(100, "fastText dimension when training vectors.", minimum=1)
    epochs: int = option(3, "fastText epochs when training vectors.", minimum=1)
    min_count: int = option(10, "fastText minimum word count when training vectors.", minimum=1)
    threads: int | None = option(None, "fastText training threads (default: all cores).", kind="int", minimum=1)


@register
class FocusInit(Initializer):
    name = "focus"
    Options = FocusOptions
    needs = ("static_vectors",)
    renamed_options = {"k": "anchors"}
    handles_bias = False

    def __init__(self, **options):
        super().__init__(**options)
        self.last_plan: SimilarityPlan | None = None  # reused for every tensor; public for inspection

    def check(self) -> None:
        o = self.options
        if o.target_vectors is None and o.target_corpus is None:
            raise TransplantError(
                "focus needs --target-corpus (target-language text to train token-level fastText on) "
                "or --target-vectors (a fastText model trained on text written in the new tokenizer's tokens)"
            )
        check_vectors_or_corpus(self.name, "target", o.target_vectors, o.target_corpus)
        self.fasttext_params().check()

    def fasttext_params(self) -> FastTextParams:
        o = self.options
        return static.FastTextParams(model="cbow", dim=o.dim, epochs=o.epochs, min_count=o.min_count, neg=10)

    def rows(self, inputs: InitInputs, target_ids: list[int]) -> tuple[torch.Tensor, list[str]]:
        plan = self.last_plan
        if plan is None or plan.mapping is not inputs.mapping or plan.target_ids != tuple(target_ids):
            plan = self.last_plan = self.plan(inputs.mapping, target_ids, len(inputs.source), progress=inputs.progress)
        return apply_plan(plan, inputs, target_ids, RULE)

    def plan(self, mapping: VocabMapping, target_ids: list[int], source_rows: int, progress: bool = True) -> SimilarityPlan:
        o = self.options
        tokenizer = mapping.target.tokenizer if o.level == "token" else None
        words = "as-is" if o.level == "token" else "split-punctuation"
        vectors = static.obtain_vectors(o.target_vectors, o.target_corpus, self.fasttext_params(), side="target", method=self.name, tokenizer=tokenizer, words=words, threads=o.threads)
        matrix, known = static.token_vectors(mapping.target, vectors, level=o.level)
        del vectors

        anchors = [
            t for t, kind in enumerate(mapping.match_kind)
            if kind == "exact" and known[t] and 0 <= mapping.matches[t] < source_rows
        ]
        positions = [p for p, t in enumerate(target_ids) if t < len(known) and known[t]]
        rows = cols = torch.empty(0, dtype=torch.long)
        values = torch.empty(0)
        if positions and not anchors:
            raise TransplantError(
                "focus: no token shared by both vocabularies has a vector, so there is nothing to combine; "
                "train on more target text (or a lower min_count) or use --method fvt"
            )
        if positions:
            anchor_sources = torch.tensor([mapping.matches[t] for t in anchors], dtype=torch.long)
            index = neighbors.NeighborIndex(matrix[anchors], normalize=True)
            queries = matrix[[target_ids[p] for p in positions]]
            rows, found, values = top_k_sparsemax(index, torch.from_numpy(queries), o.anchors, progress=progress)
            cols = anchor_sources[found]
        info = {"anchors": len(anchors), "target_with_vector": int(known.sum())}
        return SimilarityPlan(mapping, tuple(target_ids), positions, rows, cols, values, info)
