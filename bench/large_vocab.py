"""A million-token target vocabulary: SmolLM2-135M's embeddings, no dense new x old matrix.

Every initialiser works from the vocabulary mapping (sparse: a few source pieces per new token)
and, for the similarity-based ones, a faiss neighbour index searched in batches, so memory
grows with new tokens x width, never with new tokens x old tokens. This script shows it:

1. builds a synthetic target tokenizer of --tokens N tokens (default 1,000,000) in SmolLM2's
   byte-level style: a ``tokenizers`` WordLevel model whose vocabulary is N distinct strings in
   the GPT-2 byte alphabet (the 256 single bytes, then the most frequent words, word-start
   prefixes (Ġ...) and word-internal suffixes of ../shared/corpus/{en,de,fr,es,ru,ar}.train.txt,
   character n-grams of zh/ja, then random word concatenations if those run out), ByteLevel
   pre-tokenizer and decoder, and SmolLM2's special tokens (<|endoftext|> unk, <|im_start|> bos,
   <|im_end|> eos); it is cached in --work-dir;
2. for each method (fvt, topk, tokenadapt) runs, in a child process of its own, the in-memory
   pipeline on SmolLM2-135M's input embedding matrix (49,152 x 576) only:
   ``transplant.core.plan`` then ``transplant.core.new_vocab_tensors`` (no checkpoint is
   written: a 1M x 576 fp32 matrix alone is 2.3 GB, and writing it is not what is measured);
   the child's RSS is polled every 50 ms (as in bench/checkpoint_memory.py) and the child
   reports its own kernel high-water mark (VmHWM) after each phase;
3. for topk and tokenadapt, checks a random sample of the rows against the same initialiser
   run on the sample alone, which shows what batching the rows (and, above
   ``transplant.neighbors.EXACT_LIMIT`` source rows, an HNSW search) changed;
4. prints a table (with the size a dense new x old fp32 similarity matrix would have had) and
   writes bench/out/large_vocab.json.

    python bench/large_vocab.py                       # 1M tokens, fvt/topk/tokenadapt: ~11 min on 2 cores
    python bench/large_vocab.py --tokens 50000 --methods topk
    python bench/large_vocab.py --methods topk --search-depth 32   # where a search is HNSW: faster, less exact

At 1M tokens ~978k new tokens need neighbours among 49k source rows: ~2.8e13 multiply-adds, an
exact search (``transplant.neighbors`` searches exactly up to 200k source rows: HNSW was no faster
at 49k, bench/neighbor_search.py). Until that was measured, these runs searched an HNSW graph.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from checkpoint_memory import run_measured

from transplant.table import format_table

CORPUS = ROOT.parent / "shared" / "corpus"
OUT_JSON = ROOT / "bench" / "out" / "large_vocab.json"
SPACED = ("en", "de", "fr", "es", "ru", "ar")  # words are separated by spaces
UNSPACED = ("zh", "ja")  # character n-grams instead of words
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")  # SmolLM2's ids 0, 1, 2
ROLES = {"unk_token": "<|endoftext|>", "bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}
BUILDER_VERSION = 1  # bump when the vocabulary recipe changes (invalidates cached tokenizers)
MB = 1 << 20

WORD = re.compile(r"[^\W\d_]+|\d{1,3}|[^\w\s]{1,3}")
CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+")


# ---------------------------------------------------------------------------------------------
# The synthetic target tokenizer


def _byte_alphabet() -> dict[int, str]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return bytes_to_unicode()


def candidate_strings(corpus_bytes: int) -> list[str]:
    """Texts of candidate tokens (a leading space marks a word start), most frequent first."""
    counts: Counter[str] = Counter()
    for lang in SPACED:
        with open(CORPUS / f"{lang}.train.txt", encoding="utf-8", errors="ignore") as handle:
            words = Counter(WORD.findall(handle.read(corpus_bytes)))
        for word, n in words.items():
            counts[" " + word] += n
            if len(word) >= 4:  # word pieces: word-start prefixes and word-internal suffixes
                for cut in range(2, len(word) - 1):
                    counts[" " + word[:cut]] += n
                    counts[word[cut:]] += n
    for lang in UNSPACED:
        with open(CORPUS / f"{lang}.train.txt", encoding="utf-8", errors="ignore") as handle:
            text = handle.read(corpus_bytes)
        for run in CJK_RUN.findall(text):
            for size in (1, 2, 3, 4):
                for start in range(len(run) - size + 1):
                    counts[run[start : start + size]] += 1
        for word, n in Counter(WORD.findall(CJK_RUN.sub(" ", text))).items():
            counts[" " + word] += n
    return [text for text, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def synthetic_vocabulary(size: int, corpus_bytes: int, seed: int = 0) -> list[str]:
    """``size`` distinct token strings in the GPT-2 byte alphabet, SmolLM2's specials first."""
    alphabet = _byte_alphabet()

    def encode(text: str) -> str:
        return "".join(alphabet[b] for b in text.encode("utf-8"))

    tokens = list(SPECIALS) + [alphabet[b] for b in range(256)]
    seen = set(tokens)
    candidates = candidate_strings(corpus_bytes)
    for text in candidates:
        if len(tokens) >= size:
            break
        token = encode(text)
        if token not in seen:
            seen.add(token)
            tokens.append(token)
    # Not enough distinct text: concatenations of two frequent words ("Ġword" + "piece").
    rng = random.Random(seed)
    words = [text for text in candidates[:200_000] if text.startswith(" ")] or candidates
    pieces = [text.lstrip(" ") for text in candidates[:200_000]]
    while len(tokens) < size:
        token = encode(rng.choice(words) + rng.choice(pieces))
        if token not in seen:
            seen.add(token)
            tokens.append(token)
    return tokens[:size]


def build_target_tokenizer(size: int, corpus_bytes: int, out_dir: Path):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tokens = synthetic_vocabulary(size, corpus_bytes)
    model = models.WordLevel({token: index for index, token in enumerate(tokens)}, unk_token=ROLES["unk_token"])
    tokenizer = Tokenizer(model)
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, **ROLES)
    fast.save_pretrained(out_dir)
    return fast


def target_tokenizer_dir(size: int, corpus_bytes: int, work: Path, rebuild: bool) -> Path:
    """Build (or reuse) the target tokenizer; check it is read as byte-level with the right roles."""
    from transplant.loading import load_tokenizer
    from transplant.vocab.canonical import detect_style

    directory = work / f"target-{size}"
    stamp = directory / "bench_params.json"
    params = {"tokens": size, "corpus_bytes": corpus_bytes, "version": BUILDER_VERSION}
    if rebuild or not stamp.is_file() or json.loads(stamp.read_text()) != params:
        started = time.perf_counter()
        print(f"building a {size:,}-token byte-level tokenizer in {directory} ...", flush=True)
        build_target_tokenizer(size, corpus_bytes, directory)
        stamp.write_text(json.dumps(params))
        print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
    else:
        print(f"reusing the {size:,}-token tokenizer in {directory}", flush=True)
    tokenizer = load_tokenizer(directory)
    style = detect_style(tokenizer.backend_tokenizer)
    if not style.byte_level or len(tokenizer) != size:
        raise SystemExit(f"unexpected target tokenizer: {style.family}, {len(tokenizer)} tokens")
    roles = {role: str(getattr(tokenizer, role)) for role in ROLES}
    if roles != ROLES:
        raise SystemExit(f"target tokenizer roles {roles} != {ROLES}")
    print(f"  {len(tokenizer):,} tokens, style {style.family}; e.g. {tokenizer.convert_ids_to_tokens([300, 1000, size // 2, size - 1])}")
    return directory


# ---------------------------------------------------------------------------------------------
# One method, in a child process


CHILD = r"""
import collections, json, random, sys, time
payload = json.loads(sys.argv[1])

def status():
    out = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out

import torch
from transplant import init as initializers
from transplant.checkpoint import open_checkpoint, read_tensor, resolve_model_dir
from transplant.core import new_vocab_tensors, plan
from transplant.demo import smollm2_gguf
from transplant.loading import load_tokenizer
from transplant import neighbors
from transplant.neighbors import needs_approximate

if payload["search_depth"]:
    neighbors.HNSW_SEARCH_DEPTH = payload["search_depth"]  # --search-depth: HNSW efSearch
method, options = payload["method"], payload["options"]
result = {"method": method, "options": options, "threads": torch.get_num_threads()}
started = time.perf_counter()
model_dir = resolve_model_dir(smollm2_gguf())
checkpoint = open_checkpoint(model_dir)
source_tokenizer = load_tokenizer(model_dir)
target_tokenizer = load_tokenizer(payload["tokenizer"])
embeddings = read_tensor(checkpoint, checkpoint.input_key)
result["load_s"] = time.perf_counter() - started
result["embeddings"] = [list(embeddings.shape), str(embeddings.dtype)]
result["after_load"] = status()

started = time.perf_counter()
mapping, _, _ = plan(source_tokenizer, target_tokenizer, progress=False)
result["mapping_s"] = time.perf_counter() - started
result["after_mapping"] = status()
result["mapping"] = mapping.summary()

started = time.perf_counter()
tensors, rules = new_vocab_tensors(mapping, {"input": embeddings}, method, options, progress=False)
result["init_s"] = time.perf_counter() - started
result["after_init"] = status()
new = tensors["input"]
result["new_shape"] = list(new.shape)
# in row blocks: torch.isfinite on the whole 2.3 GB matrix would itself allocate ~3.8 GB
result["finite"] = all(bool(torch.isfinite(new[i : i + 65536]).all()) for i in range(0, len(new), 65536))
result["rules"] = dict(collections.Counter(rules["input"]))

# Which neighbour index the full run used, and what batching (or an HNSW search) changed: the
# same initialiser on a sample of the rows alone.
if method in ("topk", "tokenadapt"):
    ids = [t for t, rule in enumerate(rules["input"]) if rule not in ("exact", "special", "mean")]
    inputs = initializers.InitInputs(mapping, embeddings.float(), "input", torch.Generator().manual_seed(0), False)
    candidates = sum(1 for i, key in enumerate(mapping.source.canonical) if key is not None and i < len(embeddings))
    result["neighbour_search"] = {
        "queries": len(ids), "candidates": candidates,
        "approximate": needs_approximate(candidates),
        "hnsw_search_depth": neighbors.HNSW_SEARCH_DEPTH,
    }
    sample = sorted(random.Random(0).sample(ids, min(payload["sample"], len(ids))))
    if sample:
        started = time.perf_counter()
        exact, _ = initializers.get(method, **options).rows(inputs, sample)
        got = new[sample].float()
        scale = exact.abs().amax(1).clamp_min(1e-12)
        same = ((got - exact).abs().amax(1) <= 1e-4 * scale)
        cosine = torch.nn.functional.cosine_similarity(got, exact, dim=-1)
        result["sample_check"] = {
            "rows": len(sample), "same_as_exact": int(same.sum()),
            "mean_cosine_to_exact": float(cosine.mean()), "min_cosine_to_exact": float(cosine.min()),
            "seconds": time.perf_counter() - started,
        }
result["after_checks"] = status()
print(json.dumps(result))
"""


def run_method(method: str, options: dict, tokenizer_dir: Path, sample: int, search_depth: int | None, interval: float, work: Path) -> dict:
    payload = json.dumps({"method": method, "options": options, "tokenizer": str(tokenizer_dir), "sample": sample, "search_depth": search_depth})
    load_before = os.getloadavg()[0]
    run = run_measured([sys.executable, "-c", CHILD, payload], interval, work)
    if run["returncode"] != 0:
        print(run["stdout"][-2000:] + run["stderr"][-4000:], file=sys.stderr)
        raise SystemExit(f"{method} failed with exit code {run['returncode']}")
    child = json.loads(run["stdout"].strip().splitlines()[-1])
    child["peak_rss_polled"] = run["peak_rss_polled"]
    child["wall_s"] = run["wall_s"]
    child["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]  # 1-min, before/after: other users of the cores
    child["rss_samples"] = run["samples"]
    return child


def _search_name(search: dict) -> str:
    return f"HNSW ef {search['hnsw_search_depth']}" if search["approximate"] else "exact"


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=1_000_000, help="target vocabulary size")
    parser.add_argument("--methods", default="fvt,topk,tokenadapt")
    parser.add_argument("--corpus-mb", type=float, default=2.0, help="text read from each language's train file")
    parser.add_argument("--sample", type=int, default=2000, help="rows of topk/tokenadapt checked against an exact search")
    parser.add_argument("--search-depth", type=int, default=None, help="HNSW efSearch where the search is approximate (default: transplant.neighbors.HNSW_SEARCH_DEPTH)")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/transplant-large-vocab"), help="where the target tokenizer is cached")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the target tokenizer even if cached")
    parser.add_argument("--interval", type=float, default=0.05, help="RSS polling interval, seconds")
    parser.add_argument("--json", type=Path, default=OUT_JSON, help="where to write the results")
    args = parser.parse_args()
    if args.tokens < 1000:
        parser.error("--tokens must be at least 1000")

    started = time.perf_counter()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = target_tokenizer_dir(args.tokens, int(args.corpus_mb * MB), args.work_dir, args.rebuild)
    from transplant.checkpoint import resolve_model_dir
    from transplant.demo import smollm2_gguf

    resolve_model_dir(smollm2_gguf())  # converts the GGUF once into the cache (not in the children)
    setup_s = time.perf_counter() - started

    runs = []
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        print(f"{method}: mapping + initialisation of {args.tokens:,} tokens in a child process ...", flush=True)
        run = run_method(method, {}, tokenizer_dir, args.sample, args.search_depth, args.interval, args.work_dir)
        run["peak_rss"] = max(run["peak_rss_polled"], run["after_init"]["VmHWM"])
        runs.append(run)
        search = run.get("neighbour_search")
        check = run.get("sample_check")
        print(
            f"  mapping {run['mapping_s']:.1f} s, init {run['init_s']:.1f} s, peak RSS {run['peak_rss'] / MB:,.0f} MB"
            + (f"; {_search_name(search)} search, {search['queries']:,} queries x {search['candidates']:,} rows" if search else "")
            + (f"; sample: {check['same_as_exact']}/{check['rows']} rows as with exact search, mean cosine {check['mean_cosine_to_exact']:.4f}" if check else ""),
            flush=True,
        )

    rows, results = [], []
    for run in runs:
        source_rows, width = run["embeddings"][0]
        tokens = run["new_shape"][0]
        dense_bytes = tokens * source_rows * 4
        new_bytes = tokens * width * 4
        search, check = run.get("neighbour_search"), run.get("sample_check")
        rows.append([
            tokens, run["method"], f"{run['mapping_s']:.1f}", f"{run['init_s']:.1f}",
            round(run["peak_rss"] / MB), round(run["after_mapping"]["VmHWM"] / MB),
            f"{new_bytes / 1e9:.2f}", f"{dense_bytes / 1e9:.1f}",
            _search_name(search) if search else "none",
            f"{check['same_as_exact']}/{check['rows']} ({check['mean_cosine_to_exact']:.4f})" if check else "-",
        ])
        results.append({**{k: v for k, v in run.items() if k != "rss_samples"}, "dense_similarity_bytes": dense_bytes, "new_matrix_bytes": new_bytes,
                        "rss_samples": {"columns": ["t_s", "rss", "rss_anon", "rss_file"], "rows": run["rss_samples"]}})
    headers = ["tokens", "method", "mapping s", "init s", "peak RSS MB", "after mapping MB", "new matrix GB", "dense new x old GB avoided", "neighbours", "sample = exact (cos)"]
    print()
    print(format_table(headers, rows))
    print()
    if runs:
        summary = runs[0]["mapping"]
        print(
            f"source {runs[0]['embeddings'][0][0]:,} x {runs[0]['embeddings'][0][1]} ({runs[0]['embeddings'][1]}); target {summary['target_tokens']:,} tokens: "
            f"{summary['shared_tokens']:,} shared, {summary['decomposed_by_tokenizer']:,} decomposed by the source tokenizer, "
            f"{summary['decomposed_by_segmentation']:,} by segmentation, {summary['without_decomposition']:,} without; "
            f"{runs[0]['threads']} torch threads; 1-min load average before/after each method: "
            + ", ".join(f"{run['method']} {run['load_average'][0]:.1f}/{run['load_average'][1]:.1f}" for run in runs)
        )
        print(f"peak RSS = max(RSS polled every {args.interval * 1000:.0f} ms, the child's VmHWM right after new_vocab_tensors); 'after mapping' = VmHWM after plan()")
    total_s = time.perf_counter() - started
    print(f"(setup {setup_s:.0f} s, total {total_s:.0f} s)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "command": [Path(sys.executable).name, *sys.argv],
        "args": {k: str(v) for k, v in vars(args).items()},
        "headers": headers,
        "table": rows,
        "runs": results,
        "setup_s": setup_s,
        "total_s": total_s,
    }
    args.json.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0 if all(run["finite"] for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
