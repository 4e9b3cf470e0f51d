"""Nearest-neighbour search for every similarity-based initialiser, on faiss.

Queries are searched in batches against a faiss index, so no dense (new x old) similarity
matrix is ever held: memory is the index plus one batch of results. Up to ``EXACT_LIMIT``
vectors the search is exact (``IndexFlatIP``); above it an HNSW graph is built, which is what
keeps million-token vocabularies tractable.
"""

from __future__ import annotations

import faiss
import numpy as np
import torch
from tqdm.auto import tqdm

EXACT_LIMIT = 200_000
HNSW_NEIGHBORS = 32
HNSW_SEARCH_DEPTH = 128


def _as_float32(vectors) -> np.ndarray:
    if isinstance(vectors, torch.Tensor):
        vectors = vectors.detach().float().cpu().numpy()
    return np.ascontiguousarray(vectors, dtype=np.float32)


class NeighborIndex:
    """Inner-product neighbours over fixed vectors (cosine similarity when ``normalize``)."""

    def __init__(self, vectors, normalize: bool = True, approximate: bool | None = None):
        data = _as_float32(vectors)
        if data.ndim != 2 or len(data) == 0:
            raise ValueError("NeighborIndex needs a non-empty 2-D array of vectors")
        self.normalize = normalize
        if normalize:
            data = data.copy()
            faiss.normalize_L2(data)
        self.approximate = len(data) > EXACT_LIMIT if approximate is None else approximate
        dim = data.shape[1]
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
