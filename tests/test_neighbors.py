"""The faiss neighbour wrapper against brute force."""

from __future__ import annotations

import torch

from transplant import neighbors as neighbors_module
from transplant.neighbors import NeighborIndex, softmax_combination


def _brute_force(vectors, queries, k):
    a = torch.nn.functional.normalize(vectors, dim=-1)
    b = torch.nn.functional.normalize(queries, dim=-1)
    return (b @ a.T).topk(k, dim=-1)


def test_exact_search_matches_brute_force():
    generator = torch.Generator().manual_seed(0)
    vectors, queries = torch.randn(3000, 24, generator=generator), torch.randn(500, 24, generator=generator)
    scores, ids = NeighborIndex(vectors).search(queries, 7, batch_size=128)
    expected = _brute_force(vectors, queries, 7)
    assert torch.allclose(scores, expected.values, atol=1e-5)
    assert (ids == expected.indices).float().mean() > 0.999  # ties may swap order


def test_approximate_index_finds_true_neighbours():
    generator = torch.Generator().manual_seed(1)
    vectors = torch.randn(5000, 16, generator=generator)
    queries = vectors[:300] + 0.01 * torch.randn(300, 16, generator=generator)
    index = NeighborIndex(vectors, approximate=True)
    assert index.approximate
    _, ids = index.search(queries, 1)
    assert (ids[:, 0] == torch.arange(300)).float().mean() > 0.98


def test_softmax_combination_weights_rows():
    rows = torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    scores = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    ids = torch.tensor([[0, 1], [2, -1]])
    combined = softmax_combination(scores, ids, rows, temperature=1.0)
    assert torch.allclose(combined[0], torch.tensor([0.5, 0.5]))
    assert torch.allclose(combined[1], torch.tensor([5.0, 5.0]))  # the padded -1 neighbour is ignored


def test_only_the_index_size_chooses_hnsw(monkeypatch):
    """Exact and HNSW search both cost about the same per query whatever their number, so the
    query count never matters; an index above EXACT_LIMIT vectors gets the graph."""
    from transplant import neighbors

    monkeypatch.setattr(neighbors, "EXACT_LIMIT", 200)
    generator = torch.Generator().manual_seed(2)
    assert not NeighborIndex(torch.randn(200, 8, generator=generator)).approximate  # exactly at the limit
    assert NeighborIndex(torch.randn(201, 8, generator=generator)).approximate
    assert not NeighborIndex(torch.randn(201, 8, generator=generator), approximate=False).approximate  # forcing wins


def test_a_million_new_tokens_against_smollm2_search_exactly():
    """49k source rows: exact however many queries come (HNSW was no faster there,
    bench/neighbor_search.py); so is any index up to 200k rows."""
    assert not neighbors_module.needs_approximate(49_135)
    assert not neighbors_module.needs_approximate(200_000)
    assert neighbors_module.needs_approximate(neighbors_module.EXACT_LIMIT + 1)
