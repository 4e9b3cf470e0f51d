"""Nearest-neighbour search for every similarity-based initialiser, on faiss.

Queries are searched in batches against a faiss index, so no dense (new x old) similarity
matrix is ever held: memory is the index plus one batch of results. The search is exact
(``IndexFlatIP``) unless the index holds more than ``EXACT_LIMIT`` vectors; then an HNSW graph is
built. Only the index size decides, not the number of queries: both searches cost about the same
per query whatever their number, and the exact one's cost grows with the index while the graph's
barely does. Measured on one thread with FVT-like queries against SmolLM2's rows plus FVT-like
mixtures (``python bench/neighbor_search.py --threads 1 --queries 20000 --index-sizes
49152,100000,200000``), seconds per million queries, exact vs HNSW at ``HNSW_SEARCH_DEPTH`` 128
(with the share of the true 10 nearest HNSW finds): 475 vs 450 (0.87) at 49k vectors, 953 vs
548 (0.78) at 100k, 1,862 vs 622 (0.70) at 200k. Up to a few hundred thousand vectors an exact
search is worth its time: a model's vocabulary (32k to 256k rows) always stays exact now, however
many new tokens come. (Until this was measured, a 1M-token target against 49k rows switched to HNSW
for no speed and a third of its ``topk`` rows equal to the exact search's.)

An int8 coarse pass (int8 x int8 scores of every pair, then the best k*2 or k*4 re-ranked in
float32) and faiss's 8-bit scalar quantizer were measured and not adopted: neither is faster than
the exact search on this CPU (bench/neighbor_search.py).
"""

from __future__ import annotations

import faiss
import numpy as np
import torch
from tqdm.auto import tqdm

EXACT_LIMIT = 200_000  # indexed vectors; above it an HNSW graph is searched
HNSW_NEIGHBORS = 32
HNSW_SEARCH_DEPTH = 128


def _as_float32(vectors) -> np.ndarray:
    if isinstance(vectors, torch.Tensor):
        vectors = vectors.detach().float().cpu().numpy()
    return np.ascontiguousarray(vectors, dtype=np.float32)


def needs_approximate(vectors: int) -> bool:
    """Whether :class:`NeighborIndex` builds an HNSW graph over ``vectors`` rather than searching exactly."""
    return vectors > EXACT_LIMIT


class NeighborIndex:
    """Inner-product neighbours over fixed vectors (cosine similarity when ``normalize``).

    ``approximate`` forces the choice; left ``None`` it follows :func:`needs_approximate`.
    """

    def __init__(self, vectors, normalize: bool = True, approximate: bool | None = None):
        data = _as_float32(vectors)
        if data.ndim != 2 or len(data) == 0:
            raise ValueError("NeighborIndex needs a non-empty 2-D array of vectors")
        self.normalize = normalize
        if normalize:
            data = data.copy()
            faiss.normalize_L2(data)
        dim = data.shape[1]
        self.approximate = needs_approximate(len(data)) if approximate is None else approximate
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
