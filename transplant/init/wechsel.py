"""``wechsel``: a new token is a softmax mix of the source tokens nearest in aligned static word space.

WECHSEL (Minixhofer et al., 2022). Every token gets the fastText vector of its text (canonical
bytes, whitespace stripped; fastText composes it from character n-grams): source tokens in a
source-language model, target tokens in a target-language model. The source space is rotated
onto the target space by orthogonal Procrustes on the word pairs of a bilingual dictionary
(``--dictionary``, required). Then, by cosine similarity through
:class:`~transplant.neighbors.NeighborIndex`:

    new[t] = Σ_i softmax(cos(v_t, W·v_i) / T)_i · E_old[i]      over the k nearest source tokens i

with k = 10 and T = 0.1 as in the paper. Tokens shared with the source (same bytes) are copied
first. Tokens without a vector (partial UTF-8 bytes, whitespace, nothing known to fastText)
get the FVT estimate (mean of the rows that spell them, rule ``fvt``), not random rows.

Vectors come from ``--source-vectors``/``--target-vectors`` (``.bin``, ``.vec`` or a language
code, which downloads ``cc.LANG.300.bin``) or are trained on ``--source-corpus``/
``--target-corpus`` (fastText CBOW, dim 100, minn = maxn = 5, 20 epochs, as WECHSEL's
``train_embeddings``, with punctuation split off words as its nltk tokenisation does; cached).
When one side is given as vectors and the other is trained, the trained side takes the given
side's dimension (unless ``dim`` is set). One model is in memory at a time. The neighbour weights
are computed once and reused for every tensor (input embeddings, untied head). A head's bias is
rebuilt by ``fvt``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import TransplantError
from ..lazy import lazy_import
from . import option, register
from .base import Initializer, InitInputs
from .fvt import FvtInit

np = lazy_import("numpy")
torch = lazy_import("torch")
neighbors = lazy_import("transplant.neighbors")
static = lazy_import("transplant.static")

if TYPE_CHECKING:
    from ..static import FastTextParams
    from ..vocab import VocabMapping

RULE = "wechsel"
PROGRESS_FROM = 10_000


@dataclass
class SimilarityPlan:
    """Sparse weights over source rows for the tokens set by similarity, reused for every tensor.

    ``positions`` index the requested ``target_ids``; row j of the weights (COO ``rows``/``cols``/
    ``values``) belongs to ``positions[j]``. The other requested tokens fall back to FVT.
    """

    mapping: VocabMapping
    target_ids: tuple[int, ...]
    positions: list[int]
    rows: torch.Tensor
    cols: torch.Tensor
    values: torch.Tensor
    info: dict = field(default_factory=dict)

    def combine(self, source: torch.Tensor) -> torch.Tensor:
        weights = torch.sparse_coo_tensor(
            torch.stack([self.rows, self.cols]), self.values, (len(self.positions), len(source)), check_invariants=False
        )
        return torch.sparse.mm(weights, source)


def apply_plan(plan: SimilarityPlan, inputs: InitInputs, target_ids: list[int], rule: str) -> tuple[torch.Tensor, list[str]]:
    """Rows for ``target_ids``: the plan's combinations where it has them, FVT for the rest."""
    if len(plan.cols) and int(plan.cols.max()) >= len(inputs.source):
        raise TransplantError(f"{rule}: the {inputs.kind} tensor has fewer rows than the source vocabulary")
    out = torch.empty(len(target_ids), inputs.source.shape[1], dtype=torch.float32)
    names = [""] * len(target_ids)
    if plan.positions:
        out[plan.positions] = plan.combine(inputs.source)
        for position in plan.positions:
            names[position] = rule
    chosen = set(plan.positions)
    rest = [position for position in range(len(target_ids)) if position not in chosen]
    if rest:
        values, fallback_names = FvtInit().rows(inputs, [target_ids[p] for p in rest])
        out[rest] = values
        for position, name in zip(rest, fallback_names):
            names[position] = name
    return out, names


def check_vectors_or_corpus(method: str, side: str, vectors, corpus) -> None:
    """Fail before any work when a side has neither vectors nor a corpus, or names a missing file."""
    if vectors is None and corpus is None:
        raise TransplantError(f"{method} needs --{side}-vectors (a fastText .bin/.vec file or a language code) or --{side}-corpus (text to train fastText on)")
    if vectors is not None and not Path(vectors).exists() and not static.download.LANGUAGE_CODE.match(str(vectors)):
        raise TransplantError(f"{side} vectors not found: {vectors} (give a fastText .bin/.vec file or a language code like en)")
    if vectors is None and not Path(corpus).is_file():
        raise TransplantError(f"{side} corpus not found: {corpus}")


def softmax_weights(scores: torch.Tensor, ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(scores / T) over each row's neighbours; faiss's -1 padding gets weight 0."""
    weights = torch.softmax(scores.double() / temperature, dim=-1)
    weights = torch.where(ids >= 0, weights, torch.zeros_like(weights))
    return (weights / weights.sum(-1, keepdim=True).clamp_min(1e-30)).float()


@dataclass
class WechselOptions:
    source_vectors: str | Path | None = option(None, "fastText .bin/.vec of the source language, or a language code (downloads cc.LANG.300).", kind="path")
    target_vectors: str | Path | None = option(None, "fastText .bin/.vec of the target language, or a language code (downloads cc.LANG.300).", kind="path")
    source_corpus: str | Path | None = option(None, "Source-language text to train fastText on when no source vectors are given.", kind="path")
    target_corpus: str | Path | None = option(None, "Target-language text to train fastText on when no target vectors are given.", kind="path")
    dictionary: str | Path | None = option(None, "Bilingual dictionary, `source<TAB>target` word pairs per line (aligns the two spaces).", kind="path")
    k: int = option(10, "Nearest source tokens mixed per new token.", minimum=1)
    temperature: float = option(0.1, "Softmax temperature over the cosine similarities.", minimum=0, above_minimum=True)
    # fastText training when a corpus is given (WECHSEL's train_embeddings settings)
    dim: int = option(100, "fastText dimension when training vectors.", minimum=1)
    epochs: int = option(20, "fastText epochs when training vectors.", minimum=1)
    min_count: int = option(5, "fastText minimum word count when training vectors.", minimum=1)
    threads: int | None = option(None, "fastText training threads (default: all cores).", kind="int", minimum=1)


@register
class WechselInit(Initializer):
    name = "wechsel"
    Options = WechselOptions
    needs = ("static_vectors", "dictionary")
    handles_bias = False

    def __init__(self, **options):
        super().__init__(**options)
        self.last_plan: SimilarityPlan | None = None  # reused for every tensor; public for inspection
        self._given = set(options)

    def check(self) -> None:
        o = self.options
        if o.dictionary is None:
            raise TransplantError("wechsel needs --dictionary FILE (bilingual `source_word<TAB>target_word` lines) to align the two vector spaces")
        if not Path(o.dictionary).is_file():
            raise TransplantError(f"dictionary not found: {o.dictionary}")
        for side in ("source", "target"):
            check_vectors_or_corpus(self.name, side, getattr(o, f"{side}_vectors"), getattr(o, f"{side}_corpus"))
        self.fasttext_params().check()

    def fasttext_params(self, dim: int | None = None) -> FastTextParams:
        o = self.options
        return static.FastTextParams(model="cbow", dim=dim or o.dim, epochs=o.epochs, min_count=o.min_count, minn=5, maxn=5, neg=10)

    def rows(self, inputs: InitInputs, target_ids: list[int]) -> tuple[torch.Tensor, list[str]]:
        plan = self.last_plan
        if plan is None or plan.mapping is not inputs.mapping or plan.target_ids != tuple(target_ids):
            plan = self.last_plan = self.plan(inputs.mapping, target_ids, len(inputs.source), progress=inputs.progress)
        return apply_plan(plan, inputs, target_ids, RULE)

    def side_vectors(self, mapping: VocabMapping, side: str, dictionary_words, dim: int | None) -> tuple[np.ndarray, np.ndarray, dict]:
        """Token vectors of one side's vocabulary and its dictionary words' vectors; then frees the model."""
        o = self.options
        vectors = static.obtain_vectors(
            getattr(o, f"{side}_vectors"), getattr(o, f"{side}_corpus"), self.fasttext_params(dim),
            side=side, method=self.name, words="split-punctuation", threads=o.threads,
        )
        matrix, known = static.token_vectors(getattr(mapping, side), vectors, level="word")
        lookup = static.dictionary_vectors(vectors, dictionary_words)
        return matrix, known, lookup

    def plan(self, mapping: VocabMapping, target_ids: list[int], source_rows: int, progress: bool = True) -> SimilarityPlan:
        o = self.options
        dictionary = static.read_dictionary(o.dictionary)
        words = {"source": [s for s, _ in dictionary], "target": [t for _, t in dictionary]}
        # given vectors first, so that a side trained here can take their dimension
        sides = sorted(("source", "target"), key=lambda side: getattr(o, f"{side}_vectors") is None)
        per_side, dim = {}, None
        for side in sides:
            per_side[side] = self.side_vectors(mapping, side, words[side], None if "dim" in self._given else dim)
            dim = dim or per_side[side][0].shape[1]
        (source_vectors, source_known, source_words), (target_vectors, target_known, target_words) = per_side["source"], per_side["target"]
        if source_vectors.shape[1] != target_vectors.shape[1]:
            raise TransplantError(
                f"static vectors differ in dimension: source {source_vectors.shape[1]}, target {target_vectors.shape[1]}; "
                "use vectors of the same dimension on both sides"
            )
        rotation, pairs = static.alignment_from_lookups(dictionary, source_words, target_words, label=f"dictionary {o.dictionary}")
        aligned = torch.from_numpy(source_vectors) @ rotation

        candidates = [i for i, key in enumerate(mapping.source.canonical) if key is not None and i < source_rows and source_known[i]]
        if not candidates:
            raise TransplantError("wechsel: no source token has a static vector (is --source-vectors in the source language?)")
        candidate_ids = torch.tensor(candidates, dtype=torch.long)
        positions = [p for p, t in enumerate(target_ids) if t < len(target_known) and target_known[t]]
        queries = target_vectors[[target_ids[p] for p in positions]]
        rows = cols = torch.empty(0, dtype=torch.long)
        values = torch.empty(0)
        if positions:
            index = neighbors.NeighborIndex(aligned[candidate_ids], normalize=True)
            scores, nearest = index.search(queries, o.k, progress=progress and len(positions) >= PROGRESS_FROM)
            ids = torch.where(nearest >= 0, candidate_ids[nearest.clamp_min(0)], torch.full_like(nearest, -1))
            weights = softmax_weights(scores, ids, o.temperature)
            keep = ids >= 0
            rows = torch.arange(len(positions)).unsqueeze(1).expand_as(ids)[keep]
            cols, values = ids[keep], weights[keep]
        info = {"dictionary_pairs": pairs, "source_with_vector": len(candidates), "target_with_vector": int(target_known.sum())}
        return SimilarityPlan(mapping, tuple(target_ids), positions, rows, cols, values, info)
