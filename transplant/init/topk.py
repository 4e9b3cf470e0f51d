"""``topk``: a new token is a softmax-weighted mix of its k most similar source tokens.

Similarity is cosine in a *similarity space* that is kept apart from the rows being combined.
Here that space is the model's own vocabulary tensor: the query for a new token is its FVT
estimate (the mean of the source rows that spell it), and the candidates are the source rows of
real tokens (no special tokens, no padding rows beyond the tokenizer). The k best candidates,
found with :class:`~transplant.neighbors.NeighborIndex`, are combined with weights
softmax(similarity / temperature):

    new[t] = Σ_i softmax(cos(q_t, v_i) / T)_i · E_old[i]      over the k nearest i

A separate space (e.g. static word vectors) only has to supply a :class:`SimilaritySpace`; the
combined rows are always the tensor being rebuilt (input embeddings, or an untied head in its
own space). Tokens without a query (nothing spells them) get the mean source row, rule "mean".
A head's bias is rebuilt by ``fvt`` (``handles_bias = False``).

The helpers here (:func:`candidate_ids`, :func:`own_space`, :func:`nearest`, the option
declarations) are shared with ``tokenadapt``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import TransplantError
from ..lazy import lazy_import
from . import option, register
from .base import InitInputs, Initializer
from .fvt import FvtInit

torch = lazy_import("torch")
neighbors = lazy_import("transplant.neighbors")

PROGRESS_FROM = 10_000  # show the neighbour-search progress bar from this many new tokens on
COMBINE_BATCH = 2048  # queries whose k neighbour rows are gathered at once
ROW_BATCH = 16384  # new tokens per call of rows(): bounds the queries and results held at once (~40 MB each at width 576)


@dataclass
class SimilaritySpace:
    """The vectors similarities are measured in (not necessarily the rows that get combined).

    ``source[i]`` is the vector of source id i (only candidate ids are ever searched);
    ``queries[j]`` is the vector of the j-th requested target token, meaningful where ``known[j]``.
    """

    source: torch.Tensor  # [source ids, dim]
    queries: torch.Tensor  # [requested target tokens, dim]
    known: torch.Tensor  # bool [requested target tokens]


def candidate_ids(inputs: InitInputs, space: SimilaritySpace | None = None) -> torch.Tensor:
    """Source ids a new token may borrow from: real tokens with a row (and a vector) of their own."""
    limit = len(inputs.source) if space is None else min(len(inputs.source), len(space.source))
    ids = [i for i, key in enumerate(inputs.mapping.source.canonical) if key is not None and i < limit]
    if not ids:
        raise TransplantError("the source vocabulary has no ordinary tokens to take neighbours from")
    return torch.tensor(ids, dtype=torch.long)


def fvt_estimates(inputs: InitInputs, target_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """FVT rows of ``target_ids`` (mean of their decomposition) and which have a decomposition."""
    rows, names = FvtInit().rows(inputs, target_ids)
    return rows, torch.tensor([name == "fvt" for name in names], dtype=torch.bool)


def own_space(inputs: InitInputs, target_ids: list[int]) -> SimilaritySpace:
    """The model's own space: source rows as they are, FVT estimates as the queries."""
    queries, known = fvt_estimates(inputs, target_ids)
    return SimilaritySpace(inputs.source, queries, known)


class NeighborCache:
    """One neighbour index per source tensor, kept across the batches of new tokens of one
    tensor (an HNSW graph over a large vocabulary takes tens of seconds to build); rebuilt for
    another tensor."""

    def __init__(self):
        self._vectors: torch.Tensor | None = None
        self._candidates: torch.Tensor | None = None
        self._index: neighbors.NeighborIndex | None = None

    def index(self, space: SimilaritySpace, candidates: torch.Tensor) -> neighbors.NeighborIndex:
        same = self._vectors is space.source and self._candidates is not None and torch.equal(self._candidates, candidates)
        if not same:
            self._index = None  # free the old graph before building the new one
            self._index = neighbors.NeighborIndex(space.source[candidates], normalize=True)
            self._vectors, self._candidates = space.source, candidates
        return self._index


def nearest(
    space: SimilaritySpace, candidates: torch.Tensor, queries: torch.Tensor, k: int, progress: bool = True, index: neighbors.NeighborIndex | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities and source ids of the ``k`` nearest candidates of each query, best first.

    Ids are source ids (not positions among the candidates); -1 pads when fewer were found.
    ``index`` is a prebuilt index over ``space.source[candidates]`` (see :class:`NeighborCache`).
    """
    if index is None:
        index = neighbors.NeighborIndex(space.source[candidates], normalize=True)
    scores, positions = index.search(queries, k, progress=progress and len(queries) >= PROGRESS_FROM)
    ids = torch.where(positions >= 0, candidates[positions.clamp_min(0)], torch.full_like(positions, -1))
    return scores, ids


def combine(scores: torch.Tensor, ids: torch.Tensor, rows: torch.Tensor, temperature: float, batch_size: int = COMBINE_BATCH) -> torch.Tensor:
    """:func:`softmax_combination` in batches of queries, so [queries, k, width] is never held whole."""
    out = torch.empty(len(ids), rows.shape[1], dtype=rows.dtype)
    for start in range(0, len(ids), batch_size):
        stop = start + batch_size
        out[start:stop] = neighbors.softmax_combination(scores[start:stop], ids[start:stop], rows, temperature)
    return out


def neighbours_option(default: int):
    return option(default, "Nearest source tokens mixed per new token.", minimum=1)


def temperature_option(default: float):
    return option(default, "Softmax temperature over the neighbours' cosine similarities (lower: closer to the nearest).", minimum=0, above_minimum=True)


@dataclass
class TopkOptions:
    k: int = neighbours_option(10)
    temperature: float = temperature_option(0.1)


@register
class TopkInit(Initializer):
    name = "topk"
    Options = TopkOptions
    handles_bias = False
    row_batch = ROW_BATCH

    def __init__(self, **options):
        super().__init__(**options)
        self.neighbors = NeighborCache()

    def similarity_space(self, inputs: InitInputs, target_ids: list[int]) -> SimilaritySpace:
        """Where similarities are measured; the model's own space unless a subclass says otherwise."""
        return own_space(inputs, target_ids)

    def rows(self, inputs: InitInputs, target_ids: list[int]) -> tuple[torch.Tensor, list[str]]:
        space = self.similarity_space(inputs, target_ids)
        result = inputs.token_rows().mean(0).expand(len(target_ids), -1).clone()
        known = space.known.nonzero().squeeze(1)
        if len(known):
            candidates = candidate_ids(inputs, space)
            index = self.neighbors.index(space, candidates)
            scores, ids = nearest(space, candidates, space.queries[known], self.options.k, progress=inputs.progress, index=index)
            result[known] = combine(scores, ids, inputs.source, self.options.temperature)
        names = ["topk" if flag else "mean" for flag in space.known.tolist()]
        return result, names
