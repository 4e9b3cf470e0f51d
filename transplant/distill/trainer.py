"""The distillation loop: teacher (old tokenizer) → student (new tokenizer), read top to bottom.

Every step draws its examples from a per-epoch permutation fixed by the seed, so a resumed run
sees exactly the batches the uninterrupted one would have. Checkpoints (accelerate state: weights,
optimizer, scheduler, RNG) are written atomically every ``checkpoint_every`` steps into a run
directory beside the output; the output itself appears, complete, only at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate.utils import broadcast_object_list
from tqdm.auto import tqdm

from ..checkpoint import open_checkpoint
from ..errors import TransplantError
from ..evaluate import bits_per_byte, read_text
from ..files import OutputClaim, input_fingerprint, refuse_other_inputs, remember_inputs, text_fingerprint
from ..finite import require_finite
from ..loading import load_model, load_tokenizer, require_causal
from ..training import (
    JsonlLog, computes_bf16_natively, latest_checkpoint, load_checkpoint, make_accelerator, process_state, save_checkpoint, step_generator,
)
from ..vocab import Vocabulary, boundary_token_mask
from .data import Batch, Example, collate, make_examples
from .objectives import OBJECTIVES, AlmOptions, alm_objective, ce_objective, latent_objective, student_pass, teacher_pass
from .trainable import DEFAULT_LEARNING_RATES, finished_model, prepare_trainable, trainable_parameters

REPORT_FILE = "distill_report.json"
LOG_FILE = "log.jsonl"
TEACHER_DTYPES = ("float32", "bfloat16", "float16")
INPUTS_FILE = "inputs.json"  # fingerprints of teacher, student and text: a resume must match them
# settings a resumed run must share with the run it continues (budgets and eval may change)
_RESUMABLE_CHANGES = {"max_tokens", "max_steps", "target_bpb", "eval_every", "eval_bytes", "checkpoint_every"}


@dataclass
class DistillConfig:
    loss: str = "alm+ce"  # objectives joined by "+": alm, ce, latents
    # ALM's gradient shrinks as 1/T (T = 100): weight 100 puts it on cross-entropy's scale. Best
    # measured (bench/distill.py, SmolLM2 -> German, 30k tokens): alm+ce with alm=100 2.0632,
    # ce 2.0655, alm+ce with alm=1 2.0654, alm alone 2.1102 bits/byte. Unlisted objectives: 1.0.
    loss_weights: dict[str, float] = field(default_factory=lambda: {"alm": 100.0})
    train: str = "embeddings"  # embeddings | lora | full
    learning_rate: float | None = None  # default by `train`
    max_tokens: int = 200_000  # student tokens
    max_steps: int | None = None
    target_bpb: float | None = None  # stop once held-out bits/byte reach this
    batch_size: int = 4
    grad_accum: int = 1
    segment_bytes: int = 1024  # text per example, cut at lines
    max_length: int = 512  # tokens per side
    warmup_fraction: float = 0.05
    min_lr_fraction: float = 0.1
    max_grad_norm: float = 1.0
    eval_every: int = 50
    eval_bytes: int = 50_000
    checkpoint_every: int = 50
    seed: int = 0
    lora_rank: int = 16
    mixed_precision: str | None = None  # no | bf16 | fp16; default: bf16 on GPUs that have it, else no
    gradient_checkpointing: bool = False  # recompute the student's activations in backward: less memory
    # float32 | bfloat16 | float16: the teacher only runs forward. Default: bfloat16 where the
    # machine computes it natively (bench/distill.md: a step 1.95x -> 1.44x a plain student step,
    # the same held-out bits per byte to 0.001), else float32.
    teacher_dtype: str | None = None
    alm: AlmOptions = field(default_factory=AlmOptions)

    def check(self) -> None:
        """Raise one clear line for settings no run can use (before any model loads)."""
        positive = {"max_tokens": self.max_tokens, "batch_size": self.batch_size, "grad_accum": self.grad_accum,
                    "segment_bytes": self.segment_bytes, "max_length": self.max_length, "lora_rank": self.lora_rank}
        if self.max_steps is not None:
            positive["max_steps"] = self.max_steps
        if self.learning_rate is not None:
            positive["learning_rate"] = self.learning_rate
        for name, value in positive.items():
            if not value > 0:
                raise TransplantError(f"{name} must be positive, not {value}")
        for name, value in {"eval_every": self.eval_every, "checkpoint_every": self.checkpoint_every, "eval_bytes": self.eval_bytes}.items():
            if value < 0:
                raise TransplantError(f"{name} must be 0 or more, not {value}")
        for name, weight in self.loss_weights.items():
            if not math.isfinite(weight) or weight < 0:
                raise TransplantError(f"the weight of {name} must be a finite number >= 0, not {weight}")
        if self.mixed_precision not in (None, "no", "bf16", "fp16"):
            raise TransplantError(f"mixed precision must be no, bf16 or fp16, not '{self.mixed_precision}'")
        if self.teacher_dtype is not None and self.teacher_dtype not in TEACHER_DTYPES:
            raise TransplantError(f"the teacher's dtype must be one of {', '.join(TEACHER_DTYPES)}, not '{self.teacher_dtype}'")
        if not self.alm.temperature > 0:
            raise TransplantError(f"the ALM temperature must be positive, not {self.alm.temperature}")
        self.objectives()

    def objectives(self) -> dict[str, float]:
        names = [n.strip() for n in self.loss.split("+") if n.strip()]
        unknown = [n for n in names if n not in OBJECTIVES]
        if unknown or not names:
            raise TransplantError(f"--loss must join {', '.join(OBJECTIVES)} with '+', not '{self.loss}'")
        return {name: float(self.loss_weights.get(name, 1.0)) for name in names}

    def lr(self) -> float:
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATES[self.train]


@dataclass
class DistillResult:
    out: Path
    steps: int
    student_tokens: int
    seconds: float
    bits_per_byte_before: float | None
    bits_per_byte_after: float | None
    curve: list[dict]


def run_directory(out: Path) -> Path:
    return out.parent / f".{out.name}.distill-run"


def distill(
    teacher: str | Path,
    student: str | Path,
    texts: list[str | Path],
    out: str | Path,
    config: DistillConfig | None = None,
    *,
    eval_text: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> DistillResult:
    config = config or DistillConfig()
    config.check()
    if config.teacher_dtype is None:
        config = dataclasses.replace(config, teacher_dtype="bfloat16" if computes_bf16_natively() else "float32")
    out = Path(out)
    if not texts:
        raise TransplantError("no training text: pass --text FILE")
    processes = process_state()
    if processes.num_processes > 1 and config.grad_accum % processes.num_processes:
        raise TransplantError(
            f"--grad-accum ({config.grad_accum}) must be a multiple of the {processes.num_processes} processes: "
            "each process takes whole micro-batches of the same global batch"
        )
    if not processes.is_main_process:  # under `accelerate launch`: only the main process writes
        return _distill(teacher, student, texts, out, None, config, eval_text, resume, overwrite, progress=False)
    inputs = [teacher, student, *texts, eval_text]
    with OutputClaim(out, inputs=inputs, overwrite=overwrite) as output:
        return _distill(teacher, student, texts, out, output, config, eval_text, resume, overwrite, progress)


def _distill(teacher, student, texts, out: Path, output: OutputClaim | None, config: DistillConfig, eval_text, resume: bool, overwrite: bool, progress: bool) -> DistillResult:
    """The run; ``output`` is None on every process but the main one, which alone writes."""
    objectives = config.objectives()
    processes = process_state()
    main = output is not None
    run_dir = run_directory(out)
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is not None and not resume and not overwrite:
        raise TransplantError(f"an interrupted run is in {run_dir}: pass --resume to continue it or --overwrite to start over")
    if overwrite and not resume:
        if main:
            shutil.rmtree(run_dir, ignore_errors=True)
        checkpoint = None
    processes.wait_for_everyone()
    text = "".join(read_text(path) for path in texts)
    held_out = read_text(eval_text, max_bytes=config.eval_bytes) if eval_text else None
    fingerprints = {"teacher": input_fingerprint(teacher), "student": input_fingerprint(student), "text": text_fingerprint(text)}
    if checkpoint is not None:
        refuse_other_inputs(run_dir / INPUTS_FILE, fingerprints)

    # models, tokenizers and the vocabulary facts the objectives need
    for spec in (teacher, student):
        require_causal(open_checkpoint(spec), spec, "distillation")
    teacher_tokenizer, student_tokenizer = load_tokenizer(teacher), load_tokenizer(student)
    teacher_vocab, student_vocab = Vocabulary.from_tokenizer(teacher_tokenizer), Vocabulary.from_tokenizer(student_tokenizer)
    examples = make_examples(text, teacher_vocab, student_vocab, config.segment_bytes, config.max_length)
    if not examples:
        raise TransplantError("the training text gives no aligned example (is it empty?)")
    uses_teacher = any(name in objectives for name in ("alm", "latents"))
    teacher_model = load_model(teacher, dtype=getattr(torch, config.teacher_dtype)) if uses_teacher else None
    student_model = load_model(student)
    if student_model.get_input_embeddings().weight.shape[0] < len(student_vocab):
        raise TransplantError(f"student {student} has fewer embedding rows than its tokenizer has ids; was it converted to this tokenizer?")

    accelerator = make_accelerator(config.seed, config.mixed_precision)
    if config.gradient_checkpointing:
        student_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    student_model = prepare_trainable(student_model, config.train, config.lora_rank)
    optimizer = torch.optim.AdamW(trainable_parameters(student_model), lr=config.lr(), weight_decay=0.0)
    planned_steps = _planned_steps(examples, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(planned_steps, config))
    student_model, optimizer, scheduler = accelerator.prepare(student_model, optimizer, scheduler)
    device = accelerator.device
    if teacher_model is not None:
        teacher_model.requires_grad_(False).eval().to(device)
    teacher_boundary = boundary_token_mask(teacher_vocab).to(device)
    student_boundary = boundary_token_mask(student_vocab).to(device)

    def evaluate() -> float | None:
        if held_out is None:
            return None
        model = accelerator.unwrap_model(student_model)
        model.eval()
        result = bits_per_byte(model, student_tokenizer, held_out, progress=False)
        model.train()
        return result.bits_per_byte

    # fresh start or resume
    log = JsonlLog(run_dir / LOG_FILE) if main else None
    step, tokens = 0, 0
    if checkpoint is not None:
        state = load_checkpoint(accelerator, checkpoint)  # a truncated or foreign one: one Error line
        _check_same_run(state["config"], config)
        if state.get("processes", 1) != processes.num_processes:
            raise TransplantError(
                f"the run was started on {state.get('processes', 1)} process(es), not {processes.num_processes}: "
                "resume it with as many, or pass --overwrite to start over"
            )
        step, tokens = state["step"], state["tokens"]
        if main:
            log.truncate_after(step)
    elif main:
        run_dir.mkdir(parents=True, exist_ok=True)
        remember_inputs(run_dir / INPUTS_FILE, fingerprints)
        log.truncate_after(-1)
        log.write(step=0, tokens=0, eval_bpb=evaluate())
    order = _ExampleOrder(len(examples), config.seed)
    # this process's micro-batches of each step: the same global batch however many processes share it
    my_micro_batches = range(processes.process_index, config.grad_accum, processes.num_processes)

    student_model.train()
    started = time.perf_counter()
    bar = tqdm(total=config.max_tokens, initial=min(tokens, config.max_tokens), unit="tok", desc="distilling", disable=not progress)
    done = _budget_spent(step, tokens, config)
    while not done:
        step_started, step_cpu_started = time.perf_counter(), time.process_time()
        losses = torch.zeros(len(objectives), dtype=torch.float64)
        step_tokens = 0
        for position, micro in enumerate(my_micro_batches):
            first = (step * config.grad_accum + micro) * config.batch_size
            batch = collate([examples[order[first + i]] for i in range(config.batch_size)]).to(device)
            # gradients are averaged across processes once, after this process's last micro-batch
            syncing = position == len(my_micro_batches) - 1
            with contextlib.nullcontext() if syncing else accelerator.no_sync(student_model):
                with accelerator.autocast():
                    parts = objective_values(batch, teacher_model, student_model, objectives, teacher_boundary, student_boundary, config.alm)
                # x processes: their average is then the mean over all grad_accum micro-batches
                loss = sum(objectives[name] * value for name, value in parts.items()) * processes.num_processes / config.grad_accum
                accelerator.backward(loss)
            losses += torch.tensor([parts[name].item() / config.grad_accum for name in objectives], dtype=torch.float64)
            step_tokens += batch.student_tokens
        if processes.num_processes > 1:  # every process logs and budgets the whole step
            totals = accelerator.reduce(torch.cat([losses, torch.tensor([float(step_tokens)], dtype=torch.float64)]).to(device), "sum").cpu()
            losses, step_tokens = totals[:-1], int(totals[-1])
        losses = dict(zip(objectives, losses.tolist()))
        if config.max_grad_norm:
            accelerator.clip_grad_norm_(trainable_parameters(student_model), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens += step_tokens
        seconds = time.perf_counter() - step_started
        # CPU seconds too: on shared cores they measure the step's own work, wall time does not
        record = {"step": step, "tokens": tokens, "lr": scheduler.get_last_lr()[0], "tokens_per_s": step_tokens / seconds,
                  "step_tokens": step_tokens, "cpu_s": time.process_time() - step_cpu_started, **losses}
        done = _budget_spent(step, tokens, config)
        if main and held_out is not None and (done or (config.eval_every and step % config.eval_every == 0)):
            record["eval_bpb"] = evaluate()
            if config.target_bpb is not None and record["eval_bpb"] <= config.target_bpb:
                done = True
        if config.target_bpb is not None and processes.num_processes > 1:
            done = bool(broadcast_object_list([done], from_process=0)[0])  # the main process evaluated
        if main:
            log.write(**record)
        bar.update(min(tokens, config.max_tokens) - bar.n)
        bar.set_postfix({name: f"{value:.4f}" for name, value in losses.items()} | {"tok/s": f"{record['tokens_per_s']:.0f}"})
        if not done and config.checkpoint_every and step % config.checkpoint_every == 0:
            save_checkpoint(accelerator, run_dir, step, {"tokens": tokens, "config": _config_json(config), "processes": processes.num_processes})
    bar.close()
    model = finished_model(accelerator.unwrap_model(student_model))
    if not main:
        processes.wait_for_everyone()  # the main process writes the output
        return DistillResult(out, step, tokens, time.perf_counter() - started, None, None, [])

    # the finished student, as a plain checkpoint with its tokenizer
    curve = log.read()
    evals = [r["eval_bpb"] for r in curve if r.get("eval_bpb") is not None]
    result = DistillResult(
        out=out,
        steps=step,
        student_tokens=tokens,
        seconds=time.perf_counter() - started,
        bits_per_byte_before=curve[0].get("eval_bpb") if curve else None,
        bits_per_byte_after=evals[-1] if len(evals) > 1 else None,
        curve=curve,
    )
    for name, parameter in model.named_parameters():
        require_finite(parameter, f"the distilled student's {name}", "lower --lr, or check the teacher and the text")
    with output.partial() as tmp:
        model.save_pretrained(tmp)
        student_tokenizer.save_pretrained(tmp)
        shutil.copy(run_dir / LOG_FILE, tmp / LOG_FILE)
        report = {"teacher": str(teacher), "student": str(student), "texts": [str(t) for t in texts], "eval_text": str(eval_text) if eval_text else None}
        report |= {"config": _config_json(config), "steps": step, "student_tokens": tokens}
        report |= {"bits_per_byte_before": result.bits_per_byte_before, "bits_per_byte_after": result.bits_per_byte_after}
        (tmp / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(run_dir, ignore_errors=True)
    processes.wait_for_everyone()
    return result


def objective_values(batch: Batch, teacher, student, objectives, teacher_boundary, student_boundary, alm: AlmOptions) -> dict:
    """Each objective's value on one batch ({name: loss}): the teacher's pass (when an objective
    needs it) and the student's, then the objectives of :mod:`transplant.distill.objectives`."""
    wants_alm, wants_latents = "alm" in objectives, "latents" in objectives
    teacher_side = None
    if teacher is not None:
        boundary = teacher_boundary if wants_alm and (alm.append_boundary or alm.merge_threshold > 0) else None
        teacher_side = teacher_pass(teacher, batch, boundary, wants_latents, logprobs=wants_alm)
    # use_cache=False: nothing is decoded, so no key/value cache is worth building (here or for the teacher)
    student_out = student(input_ids=batch.student_ids, attention_mask=batch.student_mask, output_hidden_states=wants_latents, use_cache=False)
    boundary = student_boundary if wants_alm and alm.append_boundary else None
    student_side = student_pass(student_out, batch.student_ids, boundary, wants_latents, logprobs=wants_alm or "ce" in objectives)
    parts = {}
    if wants_alm:
        parts["alm"] = alm_objective(batch, teacher_side, student_side, alm)
    if "ce" in objectives:
        parts["ce"] = ce_objective(batch, student_side)
    if wants_latents:
        parts["latents"] = latent_objective(batch, teacher_side.hidden, student_side.hidden)
    return parts


class _ExampleOrder:
    """Example index for the k-th draw: a fresh permutation per epoch, fixed by the seed."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed = size, seed
        self._epoch, self._permutation = -1, []

    def __getitem__(self, k: int) -> int:
        epoch, offset = divmod(k, self.size)
        if epoch != self._epoch:  # draws only move forward, so one epoch is kept at a time
            self._epoch = epoch
            self._permutation = torch.randperm(self.size, generator=step_generator(self.seed, epoch)).tolist()
        return self._permutation[offset]


def _planned_steps(examples: list[Example], config: DistillConfig) -> int:
    """Steps the token budget should take, from the mean example length (sets the LR schedule)."""
    mean_tokens = sum(len(e.student_ids) - 1 for e in examples) / len(examples)
    steps = math.ceil(config.max_tokens / max(mean_tokens * config.batch_size * config.grad_accum, 1))
    return max(1, min(steps, config.max_steps) if config.max_steps else steps)


def _schedule(total: int, config: DistillConfig):
    warmup = max(1, int(total * config.warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 1.0 - (1.0 - config.min_lr_fraction) * progress

    return factor


def _budget_spent(step: int, tokens: int, config: DistillConfig) -> bool:
    return tokens >= config.max_tokens or (config.max_steps is not None and step >= config.max_steps)


def _config_json(config: DistillConfig) -> dict:
    return dataclasses.asdict(config)


def _check_same_run(saved: dict, config: DistillConfig) -> None:
    current = _config_json(config)
    changed = sorted(k for k in current if k not in _RESUMABLE_CHANGES and saved.get(k) != current[k])
    if changed:
        raise TransplantError(f"--resume with different settings ({', '.join(changed)}); use the original ones or --overwrite")
