"""Nearest-neighbour search for every similarity-based initialiser, on faiss.

Queries are searched in batches against a faiss index, so no dense (new x old) similarity
matrix is ever held: memory is the index plus one batch of results. The search is exact
(``IndexFlatIP``) unless the index holds more than ``EXACT_LIMIT`` vectors or, when the caller
says how many queries will come (``expected_queries``), an exact search would cost more than
``EXACT_WORK_LIMIT`` multiply-adds (queries x vectors x dimension); then an HNSW graph is built.
The second rule is for a million new tokens against a 49k-token model: exact, that is ~2.8e13
multiply-adds (~11 min on 2 cores, estimated); the graph takes ~10 s to build and at
``HNSW_SEARCH_DEPTH`` 128 is searched in ~3.5-4.5 min (bench/large_vocab.py), at the price of some
neighbours: on that benchmark a third of the ``topk`` rows equal the exact search's, mean cosine
0.985. A lower depth is faster and less exact (64: ~2x faster; 32: ~3.5x).

An int8 coarse pass (int8 x int8 scores of every pair, then the best k*2 or k*4 re-ranked in
float32) and faiss's 8-bit scalar quantizer were measured and not adopted: neither is faster than
the exact search on this CPU (bench/neighbor_search.py). The same bench timed, on one thread
against SmolLM2's 49k rows, the exact search at 725 s per million queries and HNSW (depth 128)
at 826 s with recall@10 0.87: about 6 min for exact on 2 cores, not the ~11 estimated above, so
``EXACT_WORK_LIMIT`` should be re-measured on a full bench/large_vocab.py run (not done yet).
"""

from __future__ import annotations

import faiss
import numpy as np
import torch
from tqdm.auto import tqdm

EXACT_LIMIT = 200_000  # indexed vectors
EXACT_WORK_LIMIT = 2e12  # queries x vectors x dimension; ~1 min of exact search on 2 CPU cores
HNSW_NEIGHBORS = 32
HNSW_SEARCH_DEPTH = 128


def _as_float32(vectors) -> np.ndarray:
    if isinstance(vectors, torch.Tensor):
        vectors = vectors.detach().float().cpu().numpy()
    return np.ascontiguousarray(vectors, dtype=np.float32)


def needs_approximate(vectors: int, dim: int, expected_queries: int | None = None) -> bool:
    """Whether :class:`NeighborIndex` builds an HNSW graph rather than searching exactly."""
    if vectors > EXACT_LIMIT:
        return True
    return expected_queries is not None and expected_queries * vectors * dim > EXACT_WORK_LIMIT


class NeighborIndex:
    """Inner-product neighbours over fixed vectors (cosine similarity when ``normalize``).

    ``approximate`` forces the choice; left ``None`` it follows :func:`needs_approximate`, which
    only weighs the search work when ``expected_queries`` is given.
    """

    def __init__(
        self, vectors, normalize: bool = True, approximate: bool | None = None, expected_queries: int | None = None
    ):
        data = _as_float32(vectors)
        if data.ndim != 2 or len(data) == 0:
            raise ValueError("NeighborIndex needs a non-empty 2-D array of vectors")
        self.normalize = normalize
        if normalize:
            data = data.copy()
            faiss.normalize_L2(data)
        dim = data.shape[1]
        self.approximate = needs_approximate(len(data), dim, expected_queries) if approximate is None else approximate
        if self.approximate:
            self.index = faiss.IndexHNSWFlat(dim, HNSW_NEIGHBORS, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efSearch = HNSW_SEARCH_DEPTH
        else:
            self.index = faiss.IndexFlatIP(dim)
        self.index.add(data)

    def __len__(self) -> int:
        return self.index.ntotal

    def search(self, queries, k: int, batch_size: int = 4096, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(similarities, ids), each [queries, k], best first; k is capped at the index size."""
        data = _as_float32(queries)
        k = min(k, len(self))
        scores = np.empty((len(data), k), dtype=np.float32)
        ids = np.empty((len(data), k), dtype=np.int64)
        starts = range(0, len(data), batch_size)
        for start in tqdm(starts, desc="neighbour search", disable=not progress or len(starts) < 2):
            batch = data[start : start + batch_size].copy()
            if self.normalize:
                faiss.normalize_L2(batch)
            scores[start : start + len(batch)], ids[start : start + len(batch)] = self.index.search(batch, k)
        return torch.from_numpy(scores), torch.from_numpy(ids)


def softmax_combination(scores: torch.Tensor, ids: torch.Tensor, rows: torch.Tensor, temperature: float) -> torch.Tensor:
    """For each query, sum of ``rows[ids]`` weighted by softmax(scores / temperature)."""
    weights = torch.softmax(scores / temperature, dim=-1)
    valid = ids >= 0  # faiss pads with -1 when it finds fewer than k neighbours
    weights = torch.where(valid, weights, torch.zeros_like(weights))
    weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)
    return torch.einsum("qk,qkd->qd", weights, rows[ids.clamp_min(0)])
