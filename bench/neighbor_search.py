"""Neighbour search on SmolLM2-135M's embeddings: exact, HNSW, and int8 coarse passes re-ranked exactly.

Index: the 49,152 x 576 input embedding matrix (cosine similarity, as topk and tokenadapt use
it). Queries: --queries FVT-like estimates, each the mean of 1-3 random rows (a new token's
pieces). For each search, on --threads threads: seconds, and recall@k against the exact
search (the share of the exact k nearest it returns; k = 10, topk's default).

- ``exact``: faiss IndexFlatIP (float32, BLAS), what NeighborIndex uses up to its work limit;
- ``hnsw``: faiss IndexHNSWFlat at NeighborIndex's settings, what it uses above that limit;
- ``sq8+rerank xR``: faiss IndexScalarQuantizer (8 bits per dimension) returns k*R candidates,
  IndexRefineFlat re-ranks them with the float32 vectors;
- ``int8 matmul+rerank xR``: rows and queries rounded to int8 with one scale per vector,
  torch._int_mm (int8 x int8 -> int32) scores every pair, the top k*R are re-ranked exactly.

    python bench/neighbor_search.py --threads 1 --queries 20000

Writes bench/out/neighbor_search.json. Measured (that command, 1 thread, other jobs on the cores):

| search | build s | search s | recall@10 | search s per 1M queries |
|---|---|---|---|---|
| exact | 0.1 | 14.5 | 1.0000 | 725 |
| hnsw (depth 128) | 13.4 | 16.5 | 0.8698 | 826 |
| sq8+rerank x2 | 0.2 | 45.0 | 0.9884 | 2,249 |
| int8 matmul+rerank x2 | 0.0 | 13.2 | 0.9742 | 659 |
| sq8+rerank x4 | 0.1 | 46.2 | 0.9898 | 2,308 |
| int8 matmul+rerank x4 | 0.0 | 16.6 | 0.9877 | 830 |

Not adopted: the int8 coarse pass is no faster than the exact float32 search here (torch._int_mm
on this CPU runs at about sgemm's speed; the top-k and the re-rank add the rest), so it only trades
recall (0.974 at 0.91x the exact time) for nothing; faiss's SQ8 scan is 3x slower than BLAS. Against
HNSW it wins (0.988 vs 0.870 recall at equal time), but so does the exact search itself: on one
thread, 49k x 576 vectors, the exact search is as fast as the HNSW graph at NeighborIndex's depth.

By index size (`--index-sizes 49152,100000,200000`, same queries, 1 thread, the other core busy),
seconds per 1M queries, exact vs HNSW (recall@10): 475 vs 450 (0.870) at 49k rows, 953 vs 548
(0.776) at 100k, 1,862 vs 622 (0.698) at 200k; HNSW builds in 8, 20 and 44 s. Hence
transplant.neighbors searches exactly up to 200k rows, whatever the number of queries.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "neighbor_search.json"


def fvt_like_queries(rows, count: int, seed: int):
    import torch

    generator = torch.Generator().manual_seed(seed)
    pieces = torch.randint(1, 4, (count,), generator=generator)
    picks = torch.randint(0, len(rows), (count, 3), generator=generator)
    weights = (torch.arange(3)[None, :] < pieces[:, None]).float()
    return (rows[picks] * weights[..., None]).sum(1) / pieces[:, None]


def int8_rows(vectors):
    """Round each row to int8 with its own scale: (codes, scales)."""
    import torch

    scales = vectors.abs().amax(1).clamp_min(1e-12) / 127
    return torch.round(vectors / scales[:, None]).to(torch.int8), scales


def int8_search(index_vectors, queries, k: int, widen: int, batch_size: int = 1024):
    """Coarse int8 scores of every pair, top k*widen candidates, exact float32 re-rank."""
    import torch

    codes, scales = int8_rows(index_vectors)
    codes_t = codes.t().contiguous()
    found = []
    for start in range(0, len(queries), batch_size):
        batch = queries[start : start + batch_size]
        query_codes, _ = int8_rows(batch)
        coarse = torch._int_mm(query_codes, codes_t).float() * scales[None, :]  # the query's own scale ranks nothing
        candidates = coarse.topk(k * widen, dim=1).indices
        exact = torch.einsum("qd,qcd->qc", batch, index_vectors[candidates])
        best = exact.topk(k, dim=1).indices
        found.append(candidates.gather(1, best))
    return torch.cat(found)


def recall(found, truth) -> float:
    hits = (found[:, :, None] == truth[:, None, :]).any(2).float().sum(1)
    return (hits / truth.shape[1]).mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--widen", default="2,4", help="candidates per wanted neighbour for the coarse passes")
    parser.add_argument("--index-sizes", default=None,
                        help="instead: exact vs HNSW on indexes of these sizes (comma-separated; SmolLM2's rows plus FVT-like mixtures of them)")
    args = parser.parse_args()

    import faiss
    import torch

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    from transplant.checkpoint import resolve_model_dir
    from transplant.demo import smollm2_gguf
    from transplant.loading import load_model
    from transplant.neighbors import HNSW_NEIGHBORS, HNSW_SEARCH_DEPTH

    rows = load_model(resolve_model_dir(smollm2_gguf())).get_input_embeddings().weight.detach().float()
    queries = fvt_like_queries(rows, args.queries, seed=0)
    rows = torch.nn.functional.normalize(rows, dim=1).contiguous()
    queries = torch.nn.functional.normalize(queries, dim=1).contiguous()
    if args.index_sizes:
        return by_index_size(rows, queries, [int(n) for n in args.index_sizes.split(",")], args)
    data, query_data = rows.numpy(), queries.numpy()
    dim, k = rows.shape[1], args.k
    results = {}

    def timed(name, build, search):
        started = time.perf_counter()
        index = build()
        built = time.perf_counter()
        found = search(index)
        done = time.perf_counter()
        results[name] = {"build_s": built - started, "search_s": done - built, "found": found}
        print(f"{name}: build {built - started:.1f} s, search {done - built:.1f} s", flush=True)

    def flat():
        index = faiss.IndexFlatIP(dim)
        index.add(data)
        return index

    def hnsw():
        index = faiss.IndexHNSWFlat(dim, HNSW_NEIGHBORS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = HNSW_SEARCH_DEPTH
        index.add(data)
        return index

    def faiss_search(index, **params):
        return torch.from_numpy(index.search(query_data, k, **params)[1])

    timed("exact", flat, faiss_search)
    timed(f"hnsw (depth {HNSW_SEARCH_DEPTH})", hnsw, faiss_search)
    for widen in [int(w) for w in args.widen.split(",")]:
        def sq8(widen=widen):
            coarse = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
            refined = faiss.IndexRefineFlat(coarse)
            refined.train(data)
            refined.add(data)
            refined.k_factor = widen
            return refined

        timed(f"sq8+rerank x{widen}", sq8, faiss_search)
        timed(f"int8 matmul+rerank x{widen}", lambda: None, lambda _, widen=widen: int8_search(rows, queries, k, widen))

    truth = results["exact"]["found"]
    table = [f"{args.queries:,} FVT-like queries against SmolLM2-135M's 49,152 x 576 embeddings, k={k}, threads={args.threads}", "",
             "| search | build s | search s | recall@k | search s per 1M queries |", "|---|---|---|---|---|"]
    for name, result in results.items():
        result["recall"] = recall(result.pop("found"), truth)
        per_million = result["search_s"] * 1e6 / args.queries
        table.append(f"| {name} | {result['build_s']:.1f} | {result['search_s']:.1f} | {result['recall']:.4f} | {per_million:,.0f} |")
    print("\n".join(table))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"args": vars(args), "results": results}, indent=1))


def by_index_size(rows, queries, sizes: list[int], args) -> None:
    """Exact and HNSW search times per index size: the exact search's cost grows with the index,
    the graph's barely, so the index size alone says which is faster."""
    import faiss
    import torch

    from transplant.neighbors import HNSW_NEIGHBORS, HNSW_SEARCH_DEPTH

    normalized_queries = queries.numpy()
    table = [f"{len(queries):,} FVT-like queries, k={args.k}, threads={args.threads}; index: SmolLM2-135M's rows plus FVT-like mixtures", "",
             "| index vectors | exact search s per 1M queries | HNSW build s | HNSW search s per 1M queries | HNSW recall@k |", "|---|---|---|---|---|"]
    results = []
    for size in sizes:
        extra = max(0, size - len(rows))
        index_rows = torch.cat([rows[:size], torch.nn.functional.normalize(fvt_like_queries(rows, extra, seed=1), dim=1)]) if extra else rows[:size]
        data = index_rows.contiguous().numpy()
        exact = faiss.IndexFlatIP(data.shape[1])
        exact.add(data)
        started = time.perf_counter()
        truth = torch.from_numpy(exact.search(normalized_queries, args.k)[1])
        exact_s = time.perf_counter() - started
        started = time.perf_counter()
        graph = faiss.IndexHNSWFlat(data.shape[1], HNSW_NEIGHBORS, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efSearch = HNSW_SEARCH_DEPTH
        graph.add(data)
        built = time.perf_counter()
        found = torch.from_numpy(graph.search(normalized_queries, args.k)[1])
        hnsw_s = time.perf_counter() - built
        row = {"index_vectors": size, "exact_s_per_million": exact_s * 1e6 / len(queries), "hnsw_build_s": built - started,
               "hnsw_s_per_million": hnsw_s * 1e6 / len(queries), "hnsw_recall": recall(found, truth)}
        results.append(row)
        table.append(f"| {size:,} | {row['exact_s_per_million']:,.0f} | {row['hnsw_build_s']:.1f} | {row['hnsw_s_per_million']:,.0f} | {row['hnsw_recall']:.4f} |")
        print(table[-1], flush=True)
    print("\n".join(table))
    out = OUT.with_name("neighbor_search_by_index_size.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=1))


if __name__ == "__main__":
    main()
