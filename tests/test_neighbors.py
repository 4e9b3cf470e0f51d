"""The faiss neighbour wrapper against brute force."""

from __future__ import annotations

import torch

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


def test_index_type_follows_the_search_work(monkeypatch):
    from transplant import neighbors

    monkeypatch.setattr(neighbors, "EXACT_WORK_LIMIT", 1000 * 200 * 8)  # queries x vectors x dimension
    vectors = torch.randn(200, 8, generator=torch.Generator().manual_seed(2))
    assert not NeighborIndex(vectors).approximate  # no query count: only the index size decides
    assert not NeighborIndex(vectors, expected_queries=1000).approximate  # exactly at the limit
    assert NeighborIndex(vectors, expected_queries=1001).approximate
    assert not NeighborIndex(vectors, approximate=False, expected_queries=10**9).approximate  # forcing wins
    assert neighbors.needs_approximate(neighbors.EXACT_LIMIT + 1, 8)  # many vectors, whatever the queries
    assert not neighbors.needs_approximate(neighbors.EXACT_LIMIT, 8, expected_queries=0)


def test_work_limit_at_smollm2_scale():
    """49k rows of width 576: a 32k-token target (~26k queries) stays exact, a 1M-token one does not."""
    from transplant.neighbors import needs_approximate

    assert not needs_approximate(49_135, 576, expected_queries=26_000)
    assert needs_approximate(49_135, 576, expected_queries=1_000_000)


def test_initialisers_pass_their_query_count(monkeypatch):
    """topk / tokenadapt build their index knowing how many queries come (shared ``nearest``)."""
    from transplant import neighbors
    from transplant.init import topk

    seen = []

    class Recording(NeighborIndex):
        def __init__(self, *args, **kwargs):
            seen.append(kwargs.get("expected_queries"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(neighbors, "NeighborIndex", Recording)  # topk looks it up there at each call
    generator = torch.Generator().manual_seed(3)
    space = topk.SimilaritySpace(torch.randn(50, 4, generator=generator), torch.randn(7, 4, generator=generator), torch.ones(7, dtype=torch.bool))
    _, ids = topk.nearest(space, torch.arange(10, 50), space.queries, 3)
    assert seen == [7] and ids.shape == (7, 3) and bool((ids >= 10).all())
