"""Peak memory of `transplant convert` on a multi-GB sharded checkpoint.

`convert` loads only the vocabulary tensors whole and streams every other tensor into output
shards of bounded size, so its peak RSS should stay near

    interpreter baseline + source embed/head + new embed/head + one output shard

and not grow with the model. This script checks that on a synthetic Llama checkpoint:

1. writes a ~3 GB fp32 sharded safetensors LlamaForCausalLM checkpoint (never building the
   model: tensors are generated one at a time and written into ~500 MB shards), a byte-level
   BPE source tokenizer (32000 tokens) and a different target tokenizer (20000 tokens);
2. runs ``transplant convert SRC TGT -o OUT --method fvt --max-shard-size 500MB --quiet`` in a
   subprocess, polling its RSS every 50 ms (and its kernel high-water mark / ru_maxrss);
3. checks the output: every non-vocabulary tensor bit-identical to the source, the new
   embedding and head have the new vocabulary's rows (shared tokens copied exactly);
4. prints a table and writes bench/out/checkpoint_memory.json.

    python bench/checkpoint_memory.py                 # ~3 GB, a few minutes on 2 cores
    python bench/checkpoint_memory.py --gigabytes 8 --keep --work-dir /tmp/ckmem
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from transplant.table import format_table  # noqa: E402

TEXT = ROOT / "transplant" / "data" / "de_sample.txt"
OUT_JSON = ROOT / "bench" / "out" / "checkpoint_memory.json"
INDEX = "model.safetensors.index.json"
SPECIALS = ["<s>", "</s>"]  # ids 0 and 1 in both tokenizers
MB = 1 << 20
DTYPE = torch.float32


# ---------------------------------------------------------------------------------------------
# Tokenizers


def train_tokenizer(lines: list[str], vocab_size: int, out_dir: Path | None, use_regex: bool = True):
    """A byte-level BPE with <s>/</s>, saved (when ``out_dir`` is given) as a tokenizer directory.

    ``use_regex=False`` lets merges cross word boundaries ("UndĠGott"): the sample text (a Bible
    translation, ~15.7k distinct words) cannot fill 32000 tokens with word-internal merges only.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=use_regex)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=1,
        show_progress=False,
    )
    tokenizer.train_from_iterator((lines[i : i + 1000] for i in range(0, len(lines), 1000)), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=SPECIALS[0], eos_token=SPECIALS[1])
    if out_dir is not None:
        fast.save_pretrained(out_dir)
    return fast


def train_tokenizers(lines: list[str], source_vocab: int, target_vocab: int, src: Path, tgt: Path):
    """Source on all lines, target on the second half; word-crossing merges if words run out."""
    half = len(lines) // 2
    use_regex = True
    source = train_tokenizer(lines, source_vocab, None, use_regex)
    if len(source) < source_vocab:
        print(f"  word-level BPE stops at {len(source)} tokens on this text; allowing merges across words")
        use_regex = False
        source = train_tokenizer(lines, source_vocab, None, use_regex)
    source.save_pretrained(src)
    target = train_tokenizer(lines[half:], target_vocab, tgt, use_regex)
    return source, target


# ---------------------------------------------------------------------------------------------
# The synthetic checkpoint


def llama_config(vocab: int, layers: int, hidden: int, intermediate: int, heads: int, kv_heads: int) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": hidden // heads,
        "vocab_size": vocab,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "torch_dtype": "float32",
        "initializer_range": 0.02,
    }


def layer_shapes(config: dict) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every layer tensor, with the names LlamaForCausalLM uses."""
    h, i = config["hidden_size"], config["intermediate_size"]
    head_dim = config["head_dim"]
    q, kv = config["num_attention_heads"] * head_dim, config["num_key_value_heads"] * head_dim
    shapes = []
    for n in range(config["num_hidden_layers"]):
        p = f"model.layers.{n}."
        shapes += [
            (p + "self_attn.q_proj.weight", (q, h)),
            (p + "self_attn.k_proj.weight", (kv, h)),
            (p + "self_attn.v_proj.weight", (kv, h)),
            (p + "self_attn.o_proj.weight", (h, q)),
            (p + "mlp.gate_proj.weight", (i, h)),
            (p + "mlp.up_proj.weight", (i, h)),
            (p + "mlp.down_proj.weight", (h, i)),
            (p + "input_layernorm.weight", (h,)),
            (p + "post_attention_layernorm.weight", (h,)),
        ]
    return shapes


def all_shapes(config: dict) -> list[tuple[str, tuple[int, ...]]]:
    v, h = config["vocab_size"], config["hidden_size"]
    return [("model.embed_tokens.weight", (v, h)), *layer_shapes(config), ("model.norm.weight", (h,)), ("lm_head.weight", (v, h))]


def mib(value: float) -> int:
    return round(value / MB)


def nbytes(shape: tuple[int, ...]) -> int:
    return math.prod(shape) * torch.finfo(DTYPE).bits // 8


def layers_for(gigabytes: float, vocab: int, hidden: int, intermediate: int, heads: int, kv_heads: int) -> int:
    one = layer_shapes(llama_config(vocab, 1, hidden, intermediate, heads, kv_heads))
    per_layer = sum(nbytes(s) for _, s in one)
    vocab_bytes = 2 * nbytes((vocab, hidden))
    return max(1, round((gigabytes * 1e9 - vocab_bytes) / per_layer))


def write_checkpoint(directory: Path, config: dict, shard_bytes: int, seed: int = 0) -> None:
    """Sharded safetensors, one tensor generated at a time; only one shard is ever in memory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    groups: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    size = 0
    for name, shape in all_shapes(config):
        if groups[-1] and size + nbytes(shape) > shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append((name, shape))
        size += nbytes(shape)
    generator = torch.Generator().manual_seed(seed)
    weight_map, total = {}, 0
    for index, group in enumerate(groups):
        file = f"model-{index + 1:05d}-of-{len(groups):05d}.safetensors"
        shard = {}
        for name, shape in group:
            if name.endswith("norm.weight"):
                shard[name] = torch.ones(shape, dtype=DTYPE) + 0.01 * torch.randn(shape, generator=generator, dtype=DTYPE)
            else:
                shard[name] = torch.empty(shape, dtype=DTYPE).normal_(0.0, 0.02, generator=generator)
            weight_map[name] = file
            total += nbytes(shape)
        save_file(shard, directory / file, metadata={"format": "pt"})
        del shard
    index_doc = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (directory / INDEX).write_text(json.dumps(index_doc, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------
# Measuring a subprocess


def _proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile of ``pid`` in bytes (empty once it has exited)."""
    wanted = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")
    out = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in wanted:
                    out[key] = int(value.split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def _rss(pid: int) -> int | None:
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss
    except ImportError:
        return _proc_status(pid).get("VmRSS")
    except Exception:  # noqa: BLE001 - psutil.NoSuchProcess and friends: it has exited
        return None


def run_measured(command: list[str], interval: float = 0.05, log_dir: Path | None = None) -> dict:
    """Run ``command``; poll its RSS every ``interval`` s; its own ru_maxrss from wait4."""
    log_dir = log_dir or Path(tempfile.gettempdir())
    stdout = open(log_dir / "convert.stdout", "w+")
    stderr = open(log_dir / "convert.stderr", "w+")
    parent_rss = _proc_status(os.getpid()).get("VmRSS", 0)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=stdout, stderr=stderr)
    peaks = {"rss": 0, "VmHWM": 0, "RssAnon": 0, "RssFile": 0}
    samples = []
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
            break
        rss = _rss(process.pid)
        fields = _proc_status(process.pid)
        elapsed = time.perf_counter() - started
        if rss is not None:
            peaks["rss"] = max(peaks["rss"], rss)
            samples.append([round(elapsed, 3), rss, fields.get("RssAnon", 0), fields.get("RssFile", 0)])
        for key in ("VmHWM", "RssAnon", "RssFile"):
            peaks[key] = max(peaks[key], fields.get(key, 0))
        time.sleep(interval)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4; keep Popen consistent
    stdout.seek(0)
    stderr.seek(0)
    result = {
        "returncode": process.returncode,
        "wall_s": wall,
        "peak_rss_polled": peaks["rss"],
        "peak_rss_anon_polled": peaks["RssAnon"],
        "peak_rss_file_polled": peaks["RssFile"],
        "vm_hwm_last_seen": peaks["VmHWM"],
        "parent_rss_at_spawn": parent_rss,
        "ru_maxrss_self": usage.ru_maxrss * 1024,  # Linux reports kB
        "samples": samples,
        "stdout": stdout.read(),
        "stderr": stderr.read(),
    }
    stdout.close()
    stderr.close()
    return result


def baseline_rss() -> dict[str, int]:
    """Peak RSS of a Python process that only imports transplant.core and exits (and its split)."""
    code = "import json, transplant.core; print(json.dumps(open('/proc/self/status').read()))"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit("baseline subprocess failed")
    fields = {}
    for line in json.loads(output).splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) * 1024
    # ru_maxrss of a child is useless here: Linux carries the parent's high-water mark across
    # (v)fork + exec, so it is at least this (torch-importing) script's RSS. VmHWM is the child's own.
    return {"ru_maxrss": usage.ru_maxrss * 1024, **fields}


def transplant_command() -> list[str]:
    exe = shutil.which("transplant")
    if exe:
        return [exe]
    return [sys.executable, "-c", "import sys; from transplant.cli import main; sys.argv[0] = 'transplant'; main()"]


# ---------------------------------------------------------------------------------------------
# Checking the output


def verify(src: Path, out: Path, source_tok, target_tok, max_shard_bytes: int) -> dict:
    """Every non-vocab tensor bit-identical; new vocab tensors with the new rows; shards bounded."""
    vocab_keys = {"model.embed_tokens.weight", "lm_head.weight"}
    src_map = json.loads((src / INDEX).read_text())["weight_map"]
    index_file = out / INDEX
    out_map = json.loads(index_file.read_text())["weight_map"] if index_file.is_file() else None
    if out_map is None:
        with safe_open(out / "model.safetensors", framework="pt") as handle:
            out_map = {name: "model.safetensors" for name in handle.keys()}
    problems = []
    if set(src_map) != set(out_map):
        problems.append(f"tensor names differ: missing {sorted(set(src_map) - set(out_map))[:5]}, extra {sorted(set(out_map) - set(src_map))[:5]}")
    checked = 0
    by_out_file: dict[str, list[str]] = {}
    for name, file in out_map.items():
        if name not in vocab_keys and name in src_map:
            by_out_file.setdefault(file, []).append(name)
    for file, names in by_out_file.items():
        with safe_open(out / file, framework="pt") as handle:
            for name in names:
                with safe_open(src / src_map[name], framework="pt") as source:
                    a, b = handle.get_tensor(name), source.get_tensor(name)
                    same = a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.view(torch.uint8), b.view(torch.uint8))
                    del a, b
                if not same:
                    problems.append(f"{name} differs from the source")
                checked += 1
    new_rows = len(target_tok)
    config = json.loads((out / "config.json").read_text())
    if config.get("vocab_size") != new_rows:
        problems.append(f"config vocab_size {config.get('vocab_size')} != {new_rows}")
    src_vocab, tgt_vocab = source_tok.get_vocab(), target_tok.get_vocab()
    shared = [(tgt_vocab[t], src_vocab[t]) for t in tgt_vocab if t in src_vocab]
    copied = {}
    for key in sorted(vocab_keys):
        with safe_open(out / out_map[key], framework="pt") as handle, safe_open(src / src_map[key], framework="pt") as source:
            new, old = handle.get_tensor(key), source.get_tensor(key)
            if tuple(new.shape) != (new_rows, old.shape[1]):
                problems.append(f"{key} has shape {tuple(new.shape)}, expected ({new_rows}, {old.shape[1]})")
                continue
            if not torch.isfinite(new).all():
                problems.append(f"{key} has non-finite values")
            t_ids = torch.tensor([t for t, _ in shared])
            s_ids = torch.tensor([s for _, s in shared])
            equal = (new[t_ids] == old[s_ids]).all(dim=1)
            copied[key] = int(equal.sum())
            if not bool(equal.all()):
                problems.append(f"{key}: {int((~equal).sum())} of {len(shared)} tokens shared by string were not copied exactly")
            del new, old
    shard_files = sorted(set(out_map.values()))
    shard_sizes = {f: (out / f).stat().st_size for f in shard_files}
    largest_tensor = max(nbytes_of(out / f) for f in shard_files)
    for f, size in shard_sizes.items():
        # a shard may exceed the limit only by its header, or when it holds one oversized tensor
        if size > max_shard_bytes + (1 << 20) and size > largest_tensor + (1 << 20):
            problems.append(f"{f} is {size} bytes, over the {max_shard_bytes} limit")
    return {
        "ok": not problems,
        "problems": problems,
        "non_vocab_tensors_identical": checked - sum(1 for p in problems if p.endswith("differs from the source")),
        "non_vocab_tensors_checked": checked,
        "new_vocab_rows": new_rows,
        "tokens_shared_by_string": len(shared),
        "shared_rows_copied_exactly": copied,
        "output_shards": shard_sizes,
    }


def nbytes_of(path: Path) -> int:
    """The largest tensor in a safetensors file, in bytes (from the header only)."""
    largest = 0
    with safe_open(path, framework="pt") as handle:
        for name in handle.keys():
            sl = handle.get_slice(name)
            largest = max(largest, math.prod(sl.get_shape()) * _dtype_size(sl.get_dtype()))
    return largest


def _dtype_size(name: str) -> int:
    return {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}.get(name, 4)


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=3.0, help="checkpoint size in GB (1e9 bytes), fp32; sets the layer count")
    parser.add_argument("--work-dir", type=Path, default=None, help="where to write the checkpoints (default: a temp dir in /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (a later run with the same --work-dir reuses the source)")
    parser.add_argument("--max-shard-size", default="500MB", help="output shard limit passed to convert")
    parser.add_argument("--source-shard-mb", type=int, default=500, help="size of the generated source shards")
    parser.add_argument("--source-vocab", type=int, default=32000)
    parser.add_argument("--target-vocab", type=int, default=20000)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--interval", type=float, default=0.05, help="RSS polling interval, seconds")
    parser.add_argument("--json", type=Path, default=OUT_JSON, help="where to write the results")
    args = parser.parse_args()

    from transplant.cli import _parse_size

    max_shard_bytes = _parse_size(args.max_shard_size)
    created = args.work_dir is None or not args.work_dir.exists()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="transplant-ckmem-", dir="/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    src, tgt, out = work / "source", work / "target-tokenizer", work / "converted"
    try:
        # -- tokenizers
        t0 = time.perf_counter()
        lines = [line for line in TEXT.read_text(encoding="utf-8").splitlines() if line.strip()]
        from transformers import AutoTokenizer

        params = dict(vars(args), work_dir=None, json=None, keep=None, interval=None)
        stamp = work / "params.json"
        reuse = stamp.is_file() and json.loads(stamp.read_text()) == params and (src / INDEX).is_file() and (tgt / "tokenizer.json").is_file()
        if reuse:
            print(f"reusing the checkpoint in {src}", flush=True)
            source_tok, target_tok = AutoTokenizer.from_pretrained(src), AutoTokenizer.from_pretrained(tgt)
        else:
            shutil.rmtree(src, ignore_errors=True)
            shutil.rmtree(tgt, ignore_errors=True)
            src.mkdir(parents=True)
            print(f"training tokenizers ({args.source_vocab} on all of {TEXT.name}, {args.target_vocab} on its second half) ...", flush=True)
            source_tok, target_tok = train_tokenizers(lines, args.source_vocab, args.target_vocab, src, tgt)
        vocab = len(source_tok)
        if vocab != args.source_vocab:
            print(f"note: BPE reached {vocab} tokens on this text, not {args.source_vocab}; the config uses {vocab}")
        if len(target_tok) != args.target_vocab:
            print(f"note: the target tokenizer has {len(target_tok)} tokens, not {args.target_vocab}")
        layers = layers_for(args.gigabytes, vocab, args.hidden, args.intermediate, args.heads, args.kv_heads)
        config = llama_config(vocab, layers, args.hidden, args.intermediate, args.heads, args.kv_heads)
        tokenizer_s = time.perf_counter() - t0

        # -- checkpoint
        t0 = time.perf_counter()
        if not reuse:
            print(f"writing a {layers}-layer Llama checkpoint (hidden {args.hidden}, vocab {vocab}) into {src} ...", flush=True)
            write_checkpoint(src, config, args.source_shard_mb * MB)
            stamp.write_text(json.dumps(params))
        generate_s = time.perf_counter() - t0
        source_files = sorted(src.glob("*.safetensors"))
        checkpoint_bytes = sum(f.stat().st_size for f in source_files)
        tensor_bytes = json.loads((src / INDEX).read_text())["metadata"]["total_size"]
        src_vocab_bytes = 2 * nbytes((vocab, args.hidden))
        new_vocab_bytes = 2 * nbytes((len(target_tok), args.hidden))

        # -- baseline and the measured conversion
        print("measuring the import baseline ...", flush=True)
        base = baseline_rss()
        baseline = base["VmHWM"]
        shutil.rmtree(out, ignore_errors=True)
        command = [*transplant_command(), "convert", str(src), str(tgt), "-o", str(out), "--method", "fvt", "--max-shard-size", args.max_shard_size, "--quiet"]
        print("running: " + " ".join(command), flush=True)
        run = run_measured(command, args.interval, work)
        children_maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        if run["returncode"] != 0:
            print(run["stdout"] + run["stderr"], file=sys.stderr)
            raise SystemExit(f"convert failed with exit code {run['returncode']}")
        print(run["stdout"].rstrip())

        # -- verification
        print("verifying the output ...", flush=True)
        t0 = time.perf_counter()
        check = verify(src, out, source_tok, target_tok, max_shard_bytes)
        verify_s = time.perf_counter() - t0
        max_out_shard = max(check["output_shards"].values())

        # the kernel's own high-water mark (last read <= one interval before exit) and the samples;
        # ru_maxrss only where it exceeds what it inherits from this process (see baseline_rss)
        peak = max(run["peak_rss_polled"], run["vm_hwm_last_seen"])
        ru_valid = run["ru_maxrss_self"] > run["parent_rss_at_spawn"] * 1.05
        if ru_valid:
            peak = max(peak, run["ru_maxrss_self"])
        bound = baseline + src_vocab_bytes + new_vocab_bytes + max_out_shard
        rows = [
            ["checkpoint size on disk", mib(checkpoint_bytes), "MiB", f"{len(source_files)} shards, {layers} layers, fp32"],
            ["source embed + head tensors", mib(src_vocab_bytes), "MiB", f"2 x {vocab} x {args.hidden}"],
            ["new embed + head tensors", mib(new_vocab_bytes), "MiB", f"2 x {len(target_tok)} x {args.hidden}"],
            ["max output shard", mib(max_out_shard), "MiB", f"--max-shard-size {args.max_shard_size}, {len(check['output_shards'])} shards"],
            ["baseline RSS (import transplant.core)", mib(baseline), "MiB", "VmHWM of a bare import"],
            ["  anonymous at exit", mib(base.get("RssAnon", 0)), "MiB", "RssAnon"],
            ["  file-backed at exit", mib(base.get("RssFile", 0)), "MiB", "RssFile: shared libraries"],
            ["peak RSS of convert (polled)", mib(run["peak_rss_polled"]), "MiB", f"VmRSS every {args.interval * 1000:.0f} ms"],
            ["peak RSS of convert (VmHWM)", mib(run["vm_hwm_last_seen"]), "MiB", "kernel high-water mark, last read before exit"],
            ["  anonymous (its own peak)", mib(run["peak_rss_anon_polled"]), "MiB", "RssAnon: baseline, new vocab tensors, FVT work"],
            ["  file-backed (its own peak)", mib(run["peak_rss_file_polled"]), "MiB", "RssFile: libraries, mmapped safetensors pages"],
            ["peak RSS of convert (ru_maxrss)", mib(run["ru_maxrss_self"]), "MiB",
             "wait4 rusage" + ("" if ru_valid else f"; NOT its own: <= this script's RSS at spawn ({mib(run['parent_rss_at_spawn'])} MiB)")],
            ["RUSAGE_CHILDREN ru_maxrss", mib(children_maxrss), "MiB", "max over all children (same caveat)"],
            ["peak RSS - baseline", mib(peak - baseline), "MiB", "peak = max of the valid measures above"],
            ["baseline + src/new vocab + 1 shard", mib(bound), "MiB", "expected order of the peak"],
            ["convert wall time", round(run["wall_s"], 1), "s", ""],
            ["peak RSS / checkpoint size", round(peak / checkpoint_bytes, 3), "ratio", ""],
            ["(peak RSS - baseline) / checkpoint size", round((peak - baseline) / checkpoint_bytes, 3), "ratio", ""],
            ["peak RSS / expected bound", round(peak / bound, 3), "ratio", ""],
        ]
        print()
        print(format_table(["measure", "value", "unit", "note"], rows))
        print()
        status = "OK" if check["ok"] else "FAILED"
        print(
            f"verification {status}: {check['non_vocab_tensors_identical']}/{check['non_vocab_tensors_checked']} non-vocab tensors bit-identical; "
            f"new vocab {check['new_vocab_rows']} rows; {check['tokens_shared_by_string']} tokens shared by string, "
            f"rows copied exactly: {check['shared_rows_copied_exactly']}"
        )
        for problem in check["problems"]:
            print("  problem: " + problem)
        print(f"(tokenizers {tokenizer_s:.0f} s, checkpoint generation {generate_s:.0f} s, verification {verify_s:.0f} s)")

        result = {
            "command": command,
            "config": {k: config[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size")},
            "target_vocab": len(target_tok),
            "max_shard_bytes": max_shard_bytes,
            "checkpoint_bytes": checkpoint_bytes,
            "checkpoint_tensor_bytes": tensor_bytes,
            "source_vocab_tensor_bytes": src_vocab_bytes,
            "new_vocab_tensor_bytes": new_vocab_bytes,
            "max_output_shard_bytes": max_out_shard,
            "baseline_rss_bytes": baseline,
            "baseline_rss_anon_bytes": base.get("RssAnon"),
            "baseline_rss_file_bytes": base.get("RssFile"),
            "peak_rss_polled_bytes": run["peak_rss_polled"],
            "peak_rss_anon_bytes": run["peak_rss_anon_polled"],
            "peak_rss_file_bytes": run["peak_rss_file_polled"],
            "ru_maxrss_convert_bytes": run["ru_maxrss_self"],
            "ru_maxrss_convert_is_own": ru_valid,
            "vm_hwm_convert_bytes": run["vm_hwm_last_seen"],
            "parent_rss_at_spawn_bytes": run["parent_rss_at_spawn"],
            "peak_rss_bytes": peak,
            "ru_maxrss_children_bytes": children_maxrss,
            "peak_minus_baseline_bytes": peak - baseline,
            "expected_bound_bytes": bound,
            "peak_over_checkpoint": peak / checkpoint_bytes,
            "peak_minus_baseline_over_checkpoint": (peak - baseline) / checkpoint_bytes,
            "convert_wall_s": run["wall_s"],
            "generate_s": generate_s,
            "tokenizer_s": tokenizer_s,
            "verify_s": verify_s,
            "verification": check,
            "rss_samples": {"columns": ["t_s", "rss", "rss_anon", "rss_file"], "rows": run["samples"]},
            "convert_output": run["stdout"],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
        return 0 if check["ok"] else 1
    finally:
        if not args.keep:
            if created:
                shutil.rmtree(work, ignore_errors=True)
            else:
                for path in (src, tgt, out, work / "params.json", work / "convert.stdout", work / "convert.stderr"):
                    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
