"""Training the hypernetwork: one loop, readable top to bottom (nanoGPT style).

Each step draws text and a tokenizer (from ``step_generator(seed, step)`` only, so a resumed run
draws exactly what an uninterrupted one would), predicts embeddings for that tokenizer's tokens,
and runs the frozen base model on the text tokenized with it. Two losses:

- the LM loss of the base model with the predicted embeddings (input and, tied or not, output);
- a reconstruction loss on tokens the base vocabulary already has: predict each from a spelling
  with *smaller* base tokens (``segment(..., exclude=itself)``) and pull the prediction toward the
  token's true embedding. (Spelled with itself the token would be trivial: the residual sits on
  fvt, which already returns its own row.) The first ``identity_steps`` steps use only this loss,
  on random base tokens, and need no LM forward pass: a cheap warm start.

As at conversion time, tokens that exist in the base vocabulary (same bytes, or a special token's
role) keep their true rows in the LM pass; the hypernetwork only sets the others. The softmax runs
over the batch's tokens plus ``vocab_subsample`` other tokens of the sampled vocabulary (the whole
vocabulary when None): on a CPU predicting all of it every step would dominate the step.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from transplant.errors import TransplantError
from transplant.files import OutputClaim, input_fingerprint, refuse_other_inputs, refuse_overlap, remember_inputs
from transplant.training import JsonlLog, latest_checkpoint, load_checkpoint, make_accelerator, process_state, save_checkpoint, step_generator
from transplant.vocab import Vocabulary, build_mapping, segment
from .model import Hypernet, HypernetConfig, fingerprint, fvt_base, piece_matrix
from .corpora import Corpora
from .sampler import FixedTokenizers, MixedTokenizers, UnigramSampler

LOG_FILE = "log.jsonl"
TRAINING_FILE = "training.json"
INPUTS_FILE = "inputs.json"  # fingerprints of model, corpora and tokenizers: a resume must match them
HELD_OUT_SEED = 2**40  # no training step (seed * 1_000_003 + step) reaches it


@dataclass
class TrainConfig:
    """Defaults sized for a SmolLM2-class model (~100M parameters); see README for CPU numbers."""

    max_steps: int = 2000
    batch_size: int = 8
    block_size: int = 128  # tokens per text row, in the sampled tokenizer
    # the hypernetwork
    width: int = 256
    layers: int = 2
    heads: int = 4
    max_pieces: int = 8
    # tokenizers
    sampled_vocab_size: int = 16384
    tokenizer_text_bytes: int = 65536  # text whose substrings make each sampled vocabulary
    noise_mean: float = 0.5  # noise on the sampled pieces' log scores (see sampler.py)
    noise_log_std: float = 0.5
    vocab_subsample: int | None = 4096  # softmax over the batch's tokens + this many others
    families: list[str] | None = None  # sampled tokenizer families (sampler.py); None: the base's pipeline
    real_tokenizer_share: float = 0.25  # with families and real tokenizers: how often a step takes a real one
    corpus_alpha: float = 0.3  # several corpora: drawn with p ~ bytes ** alpha (corpora.py)
    corpus_mixing: str = "step"  # "step": one corpus per step; "row": one per text row (corpora.py)
    # losses and schedule
    identity_steps: int = 100
    reconstruction_tokens: int = 2048  # base tokens rebuilt from smaller pieces per step
    reconstruction_weight: float = 0.5
    learning_rate: float = 1e-3  # the value measured on SmolLM2 (README)
    warmup_steps: int = 50
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    # bookkeeping
    eval_every: int = 250
    eval_bytes: int = 8000
    checkpoint_every: int = 100
    seed: int = 0
    mixed_precision: str | None = None  # no | bf16 | fp16; default: bf16 on GPUs that have it, else no


def train(
    model: str | Path,
    corpora: list[str | Path],
    out: str | Path,
    *,
    tokenizers: list | None = None,
    head_part: str | Path | Hypernet | None = None,
    eval_text: str | Path | None = None,
    eval_tokenizer=None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    callback: Callable[[int, dict], None] | None = None,
    **options,
) -> Path:
    """Train a hypernetwork for ``model`` on ``corpora`` and write it to ``out``.

    ``corpora``: one file per language; each step draws one of them (see corpora.py).
    ``tokenizers``: real tokenizers to train on instead of sampled Unigram ones (with
    ``families``, as well as sampled ones of those families: a share ``real_tokenizer_share`` of
    the steps). Held-out evaluation uses ``eval_text`` (default: the first corpus's last lines,
    never trained on) tokenized by
    ``eval_tokenizer`` (default: a sampled tokenizer from a seed no training step uses).
    ``head_part``: for a tied model, a hypernetwork with a head predictor (``train_head``) whose
    head part the LM loss uses for the new tokens' head rows, fixed, so that the input part
    learns input rows only; the result carries both parts.
    Checkpoints and the log live in ``OUT.run/``; ``resume`` continues from its last checkpoint.
    ``callback(step, record)`` is called after every step (timing, tests).
    """
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TransplantError(f"unknown training option {', '.join(unknown)} (options: {', '.join(sorted(known))})")
    config = TrainConfig(**options)
    if config.corpus_mixing not in ("step", "row"):
        raise TransplantError(f"corpus mixing must be 'step' or 'row', not '{config.corpus_mixing}'")
    if config.max_steps < 1 or config.batch_size < 1 or config.block_size < 2:
        raise TransplantError("max_steps and batch_size must be at least 1, block_size at least 2")
    processes = process_state()
    if config.batch_size < processes.num_processes:
        raise TransplantError(f"--batch-size ({config.batch_size}) must be at least the {processes.num_processes} processes that share its rows")
    if not processes.is_main_process:  # under a distributed launcher: only the main process writes
        return _train(model, corpora, Path(out), None, config, tokenizers, eval_text, eval_tokenizer, resume, overwrite, False, callback, head_part)
    inputs = [model, *corpora, eval_text, eval_tokenizer, *(tokenizers or [])] + ([head_part] if isinstance(head_part, (str, Path)) else [])
    refuse_overlap(Path(out).with_name(Path(out).name + ".run"), inputs)  # the run directory is deleted on a fresh start
    with OutputClaim(out, inputs=inputs, overwrite=overwrite) as output:
        return _train(model, corpora, Path(out), output, config, tokenizers, eval_text, eval_tokenizer, resume, overwrite, progress, callback, head_part)


def _train(model, corpora, out: Path, output: OutputClaim | None, config: TrainConfig, tokenizers, eval_text, eval_tokenizer, resume, overwrite, progress, callback, head_part=None) -> Path:
    """The run; ``output`` is None on every process but the main one, which alone writes."""
    from transplant.loading import load_model, load_tokenizer

    processes = process_state()
    main = output is not None
    run_dir = out.with_name(out.name + ".run")
    if run_dir.exists() and not resume and not overwrite:
        raise TransplantError(f"{run_dir} holds an earlier run; pass --resume to continue it or --overwrite to start over")

    # --- data: training lines per corpus, and held-out text the loop never draws from
    texts_by_corpus = Corpora(list(corpora), config.corpus_alpha)
    if eval_text is None:
        eval_text = texts_by_corpus.hold_out_tail(config.eval_bytes)
    else:
        from transplant.evaluate import read_text

        eval_text = read_text(eval_text, config.eval_bytes)

    # --- the frozen base model and its vocabulary
    base_tokenizer = load_tokenizer(model)
    base_model = load_model(model, causal_for="the hypernetwork")
    base_vocab = Vocabulary.from_tokenizer(base_tokenizer)
    embeddings = base_model.get_input_embeddings().weight.detach().float()
    head = base_model.get_output_embeddings()
    tied = head is None or head.weight is base_model.get_input_embeddings().weight
    sources = {"input": embeddings} if tied else {"input": embeddings, "output": head.weight.detach().float()}
    _check_supported(base_model, str(model))
    for parameter in base_model.parameters():
        parameter.requires_grad_(False)

    # --- tokenizers to train on, and the held-out one to evaluate with
    families = tuple(config.families or ())
    sampled = UnigramSampler(base_tokenizer, config.sampled_vocab_size, noise_mean=config.noise_mean, noise_log_std=config.noise_log_std, families=families)
    if tokenizers:
        real = FixedTokenizers([load_tokenizer(t) if isinstance(t, (str, Path)) else t for t in tokenizers])
        sampler = MixedTokenizers(sampled, real, config.real_tokenizer_share) if families else real
    else:
        sampler = sampled
    if eval_tokenizer is None:
        eval_sampler = UnigramSampler(base_tokenizer, config.sampled_vocab_size, noise_mean=config.noise_mean, noise_log_std=0.0)
        eval_tokenizer = eval_sampler.sample(texts_by_corpus.text(0, config.tokenizer_text_bytes, torch.Generator().manual_seed(HELD_OUT_SEED + config.seed)), torch.Generator().manual_seed(HELD_OUT_SEED))
    elif isinstance(eval_tokenizer, (str, Path)):
        eval_tokenizer = load_tokenizer(eval_tokenizer)
    eval_mapping = build_mapping(base_vocab, Vocabulary.from_tokenizer(eval_tokenizer), progress=False)

    # --- the hypernetwork, optimiser and schedule, on accelerate
    hypernet = _new_hypernet(str(model), sources, config)
    if head_part is not None:
        hypernet = _with_fixed_head_part(hypernet, head_part, embeddings, tied, str(model))
    trainable = [parameter for parameter in hypernet.parameters() if parameter.requires_grad]
    accelerator = make_accelerator(config.seed, config.mixed_precision)
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, betas=(0.9, 0.95), weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _learning_rate_factor(step, config))
    hypernet, optimizer, schedule = accelerator.prepare(hypernet, optimizer, schedule)
    hypernet_module = accelerator.unwrap_model(hypernet)  # for its config and for evaluation
    device = accelerator.device
    base_model.to(device)
    sources = {kind: rows.to(device) for kind, rows in sources.items()}

    # Each base token spelled without itself: what the reconstruction loss rebuilds it from.
    spellings = _self_spellings(base_vocab, len(embeddings))
    rebuildable = torch.tensor([i for i, s in enumerate(spellings) if len(s) > 1])

    log = JsonlLog(run_dir / LOG_FILE) if main else None
    step = 0
    checkpoint = latest_checkpoint(run_dir) if resume else None
    fingerprints = {
        "model": input_fingerprint(model),
        "corpora": [input_fingerprint(c) for c in corpora],
        "tokenizers": [input_fingerprint(t) if isinstance(t, (str, Path)) else "in memory" for t in tokenizers or []],
        **({"head_part": input_fingerprint(head_part) if isinstance(head_part, (str, Path)) else "in memory"} if head_part is not None else {}),
    }
    if checkpoint is not None:
        refuse_other_inputs(run_dir / INPUTS_FILE, fingerprints)
        state = load_checkpoint(accelerator, checkpoint)
        if state.get("processes", 1) != processes.num_processes:
            raise TransplantError(
                f"the run was started on {state.get('processes', 1)} process(es), not {processes.num_processes}: "
                "resume it with as many, or pass --overwrite to start over"
            )
        step = state["step"]
        if main:
            log.truncate_after(step)
    elif main and run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if checkpoint is None:
            remember_inputs(run_dir / INPUTS_FILE, fingerprints)
        head_label = {"head_part": str(head_part) if isinstance(head_part, (str, Path)) else "in memory"} if head_part is not None else {}
        (run_dir / TRAINING_FILE).write_text(json.dumps({"model": str(model), "corpora": [str(c) for c in corpora], **head_label, **asdict(config)}, indent=1) + "\n")
    processes.wait_for_everyone()
    mine = slice(processes.process_index, None, processes.num_processes)  # this process's text rows

    def reconstruction_loss(source_ids: torch.Tensor) -> torch.Tensor:
        """Relative squared error of base tokens rebuilt from smaller pieces (all kinds)."""
        decompositions = [spellings[i] for i in source_ids.tolist()]
        pieces = piece_matrix(decompositions, config.max_pieces, len(embeddings)).to(device)
        total = 0.0
        for kind, rows in sources.items():
            base = fvt_base(hypernet_module, base_vocab, decompositions, rows.cpu()).to(device)
            predicted = hypernet(pieces, rows, base, kind)
            truth = rows[source_ids.to(device)]
            total = total + ((predicted - truth) ** 2).sum(-1).mean() / (truth**2).sum(-1).mean()
        return total

    if main and step == 0 and config.eval_every <= config.max_steps:  # the untrained hypernetwork is fvt: the curve's baseline
        log.write(step=0, eval_bits_per_byte=evaluate(base_model, hypernet_module, eval_mapping, eval_tokenizer, eval_text, sources))
    bar = tqdm(total=config.max_steps, initial=step, desc="training hypernet", disable=not progress)
    started = time.perf_counter()
    try:
        while step < config.max_steps:
            step_started = time.perf_counter()
            generator = step_generator(config.seed, step)
            record: dict = {"step": step + 1, "lr": schedule.get_last_lr()[0]}
            hypernet.train()
            if step < config.identity_steps:
                # phase 1: rebuild random base tokens from smaller pieces; no LM pass
                chosen = rebuildable[torch.randperm(len(rebuildable), generator=generator)[: config.reconstruction_tokens]]
                with accelerator.autocast():
                    loss = reconstruction_loss(chosen)
                record.update(loss=loss.item(), reconstruction=loss.item(), tokens=0)
            else:
                # phase 2: a sampled tokenizer, the base model's LM loss with predicted rows
                rows_corpora, texts, tokenizer_text = texts_by_corpus.draw_batch(config.corpus_mixing, config.batch_size, 8 * config.block_size, config.tokenizer_text_bytes, generator)
                corpus = rows_corpora[0] if config.corpus_mixing == "step" else rows_corpora
                tokenizer = sampler.sample(tokenizer_text + "".join(texts), generator)
                mapping = build_mapping(base_vocab, Vocabulary.from_tokenizer(tokenizer), progress=False)
                ids, labels, mask = _encode(tokenizer, texts, config.block_size)
                active, local = _active_tokens(ids, len(mapping.target), config.vocab_subsample, generator)
                with accelerator.autocast():
                    rows = _vocabulary_rows(hypernet, hypernet_module, mapping, active, sources, base_vocab, config.max_pieces, device)
                    if head_part is not None:  # the fixed head part's rows: a tied model's head of its own
                        with torch.no_grad():
                            rows |= _vocabulary_rows(hypernet, hypernet_module, mapping, active, {"output": sources["input"]}, base_vocab, config.max_pieces, device)
                    # every process predicts the same rows; each runs the model on its share of
                    # the text and takes its share of the whole batch's mean loss
                    logits = lm_logits(base_model, rows, local[mine].to(device), mask[mine].to(device))
                    targets = _local_labels(labels, active)[:, 1:]
                    lm_sum = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), targets[mine].reshape(-1).to(device), ignore_index=-100, reduction="sum")
                    lm_loss = lm_sum / (targets != -100).sum().clamp_min(1).to(device)
                    shared = torch.tensor([mapping.matches[t] for t in range(len(mapping.target)) if mapping.match_kind[t] == "exact" and len(spellings[mapping.matches[t]]) > 1], dtype=torch.long)
                    shared = shared[torch.randperm(len(shared), generator=generator)[: config.reconstruction_tokens]]
                    rebuilt = reconstruction_loss(shared) if len(shared) else torch.zeros((), device=device)
                    # x processes: their average is the whole batch's loss (rebuilt is the same on each)
                    loss = lm_loss * processes.num_processes + config.reconstruction_weight * rebuilt
                tokens = int(mask.sum())
                if processes.num_processes > 1:
                    lm_loss = accelerator.reduce(lm_loss.detach(), "sum")
                whole = lm_loss.item() + config.reconstruction_weight * rebuilt.item()
                record.update(corpus=corpus, family=mapping.target.style.family, loss=whole, lm_loss=lm_loss.item(), reconstruction=rebuilt.item(), tokens=tokens, vocabulary=len(mapping.target), softmax=len(active))
            accelerator.backward(loss)
            record["grad_norm"] = float(accelerator.clip_grad_norm_(trainable, config.max_grad_norm))
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            record["seconds"] = time.perf_counter() - step_started
            if main and (step % config.eval_every == 0 or step == config.max_steps):
                record["eval_bits_per_byte"] = evaluate(base_model, hypernet_module, eval_mapping, eval_tokenizer, eval_text, sources)
            if main:
                log.write(**record)
            if step % config.checkpoint_every == 0 or step == config.max_steps:
                save_checkpoint(accelerator, run_dir, step, {"elapsed": time.perf_counter() - started, "processes": processes.num_processes})
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k in ("loss", "lm_loss", "eval_bits_per_byte")})
            if callback is not None:
                callback(step, record)
    except KeyboardInterrupt:
        bar.close()
        raise TransplantError(f"interrupted at step {step}; run again with --resume to continue from {latest_checkpoint(run_dir) or 'the start'}") from None
    bar.close()

    from .io import save

    hypernet_module.eval()
    if not main:
        processes.wait_for_everyone()  # the main process writes the output
        return out
    written = save(hypernet_module, output, extra_files={LOG_FILE: (run_dir / LOG_FILE).read_text(), TRAINING_FILE: (run_dir / TRAINING_FILE).read_text()})
    processes.wait_for_everyone()
    return written


def create(model: str | Path, **options) -> Hypernet:
    """An untrained hypernetwork for ``model`` (it reproduces fvt exactly); ``options`` as for train."""
    from transplant.loading import load_model

    config = TrainConfig(**options)
    base_model = load_model(model)
    head = base_model.get_output_embeddings()
    sources = {"input": base_model.get_input_embeddings().weight.detach().float()}
    if head is not None and head.weight is not base_model.get_input_embeddings().weight:
        sources["output"] = head.weight.detach().float()
    return _new_hypernet(str(model), sources, config).eval()


def _new_hypernet(label: str, sources: dict[str, torch.Tensor], config: TrainConfig) -> Hypernet:
    """A hypernetwork that records which base model it belongs to (a hash of its rows)."""
    embeddings = sources["input"]
    hypernet_config = HypernetConfig(
        base_model=label,
        fingerprints={kind: fingerprint(rows) for kind, rows in sources.items()},
        embedding_dim=embeddings.shape[1],
        source_rows=embeddings.shape[0],
        kinds=list(sources),
        max_pieces=config.max_pieces,
        width=config.width,
        layers=config.layers,
        heads=config.heads,
    )
    with torch.random.fork_rng(devices=[]):  # seeded, without touching the caller's RNG
        torch.manual_seed(config.seed)
        hypernet = Hypernet(hypernet_config)
    for kind, rows in sources.items():
        hypernet.set_scale(kind, rows)
    return hypernet


def _with_fixed_head_part(hypernet: Hypernet, head_part, embeddings: torch.Tensor, tied: bool, label: str) -> Hypernet:
    """``hypernet`` with the head part of ``head_part`` (a directory or a loaded hypernetwork),
    frozen: only the input part trains."""
    from .head_training import is_head_part, with_head_of
    from .io import check_base, load

    if not tied:
        raise TransplantError(f"{label} has an untied head, which the hypernetwork predicts itself: --head-from is for tied models")
    donor = load(head_part) if isinstance(head_part, (str, Path)) else head_part
    check_base(donor, embeddings, "input")
    combined = with_head_of(hypernet, donor)
    for name, parameter in combined.named_parameters():
        parameter.requires_grad_(not is_head_part(name))
    return combined


def _check_supported(model, label: str) -> None:
    """The hypernetwork predicts embedding and head rows; a model with other vocabulary-sized
    weights (a head bias, BART's final_logits_bias) or no head is refused in one line."""
    from transplant.core import other_vocab_tensors

    head = model.get_output_embeddings()
    if head is None:
        raise TransplantError(f"{label} has no language-model head; the hypernetwork trains on causal language models")
    others = ([f"{type(head).__name__}.bias"] if getattr(head, "bias", None) is not None else []) + list(other_vocab_tensors(model))
    if others:
        raise TransplantError(f"the hypernetwork predicts embedding and head rows only, not vocabulary-sized {', '.join(others)}; {label} has them")


def lm_logits(model, rows: dict[str, torch.Tensor], ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The model's own forward pass with ``rows`` ("input", and "output" when untied) standing in
    for its embedding and head weights, ``ids`` indexing those rows. Running the whole model (not
    its body plus a matrix product) keeps what it does around the vocabulary: Gemma's embedding
    scale, OPT's projections, logit soft-capping."""
    embeddings, head = model.get_input_embeddings(), model.get_output_embeddings()
    modules = {id(module): name for name, module in model.named_modules()}
    replacement = {f"{modules[id(embeddings)]}.weight": rows["input"]}  # a tied head follows its embedding...
    if "output" in rows:
        replacement[f"{modules[id(head)]}.weight"] = rows["output"]
    # ... unless it gets rows of its own (an untied head, or a tied model's head part): untie for this call
    tie_weights = "output" not in rows
    # the pad id names a row of the full vocabulary, not of these rows; it only masks gradients
    padding, embeddings.padding_idx = getattr(embeddings, "padding_idx", None), None
    try:
        output = torch.func.functional_call(model, replacement, args=(), kwargs={"input_ids": ids, "attention_mask": attention_mask}, tie_weights=tie_weights)
    finally:
        if padding is not None:
            embeddings.padding_idx = padding
    return output.logits


def _learning_rate_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10% at ``max_steps``."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(config.max_steps - config.warmup_steps, 1)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def _encode(tokenizer, texts: list[str], block_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[batch, block] ids (a start token first where the tokenizer has one), labels and mask."""
    from transplant.evaluate import start_token

    start = start_token(tokenizer)
    ids = torch.zeros(len(texts), block_size, dtype=torch.long)
    labels = torch.full((len(texts), block_size), -100, dtype=torch.long)
    mask = torch.zeros(len(texts), block_size, dtype=torch.long)
    for row, encoded in enumerate(tokenizer(texts, add_special_tokens=False)["input_ids"]):
        encoded = (([start] if start is not None else []) + encoded)[:block_size]
        ids[row, : len(encoded)] = torch.tensor(encoded)
        labels[row, : len(encoded)] = torch.tensor(encoded)
        mask[row, : len(encoded)] = 1
    return ids, labels, mask


def _active_tokens(ids: torch.Tensor, vocab_size: int, subsample: int | None, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The vocabulary rows this step predicts (the batch's tokens + random others) and the
    batch rewritten as positions in that list."""
    present = torch.unique(ids)
    if subsample is None:
        active = torch.arange(vocab_size)
    else:
        others = torch.ones(vocab_size, dtype=torch.bool)
        others[present] = False
        candidates = others.nonzero().squeeze(1)
        extra = candidates[torch.randperm(len(candidates), generator=generator)[:subsample]]
        active = torch.sort(torch.cat([present, extra])).values
    position = torch.full((vocab_size,), -1, dtype=torch.long)
    position[active] = torch.arange(len(active))
    return active, position[ids]


def _local_labels(labels: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    position = torch.full((int(active.max()) + 1,), -1, dtype=torch.long)
    position[active] = torch.arange(len(active))
    return torch.where(labels >= 0, position[labels.clamp(min=0)], labels)


def _vocabulary_rows(hypernet, module: Hypernet, mapping, active: torch.Tensor, sources: dict, base_vocab, max_pieces: int, device) -> dict[str, torch.Tensor]:
    """Rows of ``active`` target tokens per kind: true rows where the base vocabulary has the
    token (as conversion copies them), hypernetwork predictions elsewhere."""
    targets = active.tolist()
    decompositions = [mapping.pieces[t] for t in targets]
    matched = torch.tensor([mapping.matches[t] for t in targets], dtype=torch.long)
    copy = (matched >= 0).to(device)
    pieces = piece_matrix(decompositions, max_pieces, module.config.source_rows).to(device)
    out = {}
    for kind, rows in sources.items():
        token_rows = [i for i, key in enumerate(base_vocab.canonical) if key is not None and i < len(rows)]
        fallback = rows[token_rows].mean(0).cpu()
        base = fvt_base(module, base_vocab, decompositions, rows.cpu(), fallback).to(device)
        predicted = hypernet(pieces, rows, base, kind)
        out[kind] = torch.where(copy.unsqueeze(1), rows[matched.clamp(min=0).to(device)], predicted)
    return out


def _self_spellings(base_vocab: Vocabulary, rows: int) -> list[list[int]]:
    """For every base token, the fewest *other* base tokens that spell it ([] for single bytes)."""
    out = []
    for index in range(rows):
        key = base_vocab.canonical[index] if index < len(base_vocab) else None
        out.append(segment(base_vocab, key, exclude=index) if key is not None and len(key[0]) + key[1] > 1 else [])
    return out


@torch.no_grad()
def evaluate(base_model, hypernet: Hypernet, mapping, tokenizer, text: str, sources: dict) -> float:
    """Bits per byte of the base model moved onto ``tokenizer`` by the hypernetwork, as
    ``convert --method hypernet`` would move it (exact matches copied, the rest predicted)."""
    hypernet.eval()
    result = transplanted_bits_per_byte(base_model, mapping, tokenizer, text, sources, "hypernet", {"hypernet": hypernet})
    hypernet.train()
    return result.bits_per_byte


@torch.no_grad()
def transplanted_bits_per_byte(base_model, mapping, tokenizer, text: str, sources: dict, method: str, options: dict):
    """Bits per byte (the full result) of ``base_model`` with the vocabulary rows ``method`` gives
    ``tokenizer``, in memory: the model is left as it was."""
    from transplant.core import new_vocab_tensors
    from transplant.evaluate import bits_per_byte

    from . import method as _registers_hypernet  # noqa: F401  (also where the package is not installed: no entry point)

    head = base_model.get_output_embeddings()
    tied = head is not None and head.weight is base_model.get_input_embeddings().weight
    # tied: a method may untie the head (a hypernetwork with a head predictor)
    tensors, _ = new_vocab_tensors(mapping, {kind: rows.cpu() for kind, rows in sources.items()}, method, options, progress=False, tied=tied)
    with _swapped_vocabulary(base_model, tensors):
        return bits_per_byte(base_model, tokenizer, text, progress=False)


@contextlib.contextmanager
def _swapped_vocabulary(model, tensors: dict[str, torch.Tensor]):
    """Install new vocabulary rows for the duration of the block, then put the old ones back."""
    from transplant.core import install_vocab_tensors

    embeddings, head = model.get_input_embeddings(), model.get_output_embeddings()
    tied = head is not None and head.weight is embeddings.weight
    saved = (embeddings.weight, embeddings.num_embeddings, getattr(embeddings, "padding_idx", None))
    saved_head = (head.weight, head.out_features) if head is not None else None
    device = embeddings.weight.device
    install_vocab_tensors(model, {kind: t.to(device) for kind, t in tensors.items()}, tied and "output" not in tensors)
    try:
        yield
    finally:
        embeddings.weight, embeddings.num_embeddings = saved[0], saved[1]
        if saved[2] is not None:
            embeddings.padding_idx = saved[2]
        if head is not None:
            head.weight, head.out_features = saved_head
