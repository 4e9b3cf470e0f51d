"""Where a distillation step's time goes: SmolLM2-135M teacher, the bench/distill.py student.

On the first --batches batches of bench/distill.py (German text, 4 segments of ~1 KB), each part
of a step is timed in CPU seconds on one thread (steadier than wall time on shared cores), every
part once per batch, interleaved, best of --repeats:

- plain step: the student's forward + backward with cross-entropy (what ``--loss ce`` runs);
- teacher: the teacher's forward and its per-position log-probabilities (``teacher_pass``),
  in float32 and in bfloat16, one row at a time (the CPU default) and as one padded batch;
- ALM step without the teacher: the student's forward + backward with the ALM objective on
  precomputed teacher log-probabilities;
- "before:" the same parts as they ran before issue #15's changes: cross-entropy by
  F.cross_entropy, the teacher as one padded batch, log-probabilities by the direct formulas
  (tests/test_alm_loss.py: a logsumexp per use), key/value caches built.

    python bench/distill_step.py      # needs bench/out/distill/student-fvt (python bench/distill.py makes it)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
WORK = ROOT / "bench" / "out" / "distill"


def cpu_seconds(repeats: int, function, *args, **kwargs) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        function(*args, **kwargs)
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import torch
    from test_alm_loss import reference_boundary_logprobs, reference_token_logprobs  # the direct formulas

    torch.set_num_threads(1)
    from transplant.checkpoint import resolve_model_dir
    from transplant.demo import smollm2_gguf
    from transplant.distill.data import collate, make_examples
    from transplant.distill.objectives import AlmOptions, SidePass, alm_objective, ce_objective, student_pass, teacher_pass
    from transplant.distill.trainable import prepare_trainable
    from transplant.evaluate import read_text
    from transplant.loading import load_model, load_tokenizer
    from transplant.vocab import Vocabulary, boundary_token_mask

    teacher_dir, student_dir = resolve_model_dir(smollm2_gguf()), WORK / "student-fvt"
    teacher_vocab, student_vocab = (Vocabulary.from_tokenizer(load_tokenizer(d)) for d in (teacher_dir, student_dir))
    text = read_text(ROOT.parent / "shared" / "corpus" / "de.train.txt", max_bytes=args.batches * 4 * 1100)
    examples = make_examples(text, teacher_vocab, student_vocab, 1024, 512)
    batches = [collate(examples[i : i + 4]) for i in range(0, 4 * args.batches, 4)]
    teachers = {dtype: load_model(teacher_dir, dtype=getattr(torch, dtype)).requires_grad_(False).eval() for dtype in ("float32", "bfloat16")}
    student = prepare_trainable(load_model(student_dir), "embeddings", 16).train()
    teacher_boundary, student_boundary = boundary_token_mask(teacher_vocab), boundary_token_mask(student_vocab)
    options = AlmOptions()

    def plain(batch):
        out = student(input_ids=batch.student_ids, attention_mask=batch.student_mask, use_cache=False)
        ce_objective(batch, student_pass(out, batch.student_ids, None, False)).backward()
        student.zero_grad(set_to_none=True)

    def alm_without_teacher(batch, teacher_side):
        out = student(input_ids=batch.student_ids, attention_mask=batch.student_mask, use_cache=False)
        alm_objective(batch, teacher_side, student_pass(out, batch.student_ids, student_boundary, False), options).backward()
        student.zero_grad(set_to_none=True)

    # before issue #15: cross-entropy and the ALM log-probabilities by the direct formulas
    def plain_direct(batch):
        logits = student(input_ids=batch.student_ids, attention_mask=batch.student_mask).logits[:, :-1].float()
        targets = batch.student_ids[:, 1:].masked_fill(batch.student_mask[:, 1:] == 0, -100)
        torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100).backward()
        student.zero_grad(set_to_none=True)

    def alm_without_teacher_direct(batch, teacher_side):
        logits = student(input_ids=batch.student_ids, attention_mask=batch.student_mask).logits
        side = SidePass(reference_token_logprobs(logits, batch.student_ids), reference_boundary_logprobs(logits, student_boundary))
        alm_objective(batch, teacher_side, side, options).backward()
        student.zero_grad(set_to_none=True)

    def teacher_direct(batch):
        with torch.no_grad():
            logits = teachers["float32"](input_ids=batch.teacher_ids, attention_mask=batch.teacher_mask).logits
            return reference_token_logprobs(logits, batch.teacher_ids), reference_boundary_logprobs(logits, teacher_boundary)

    parts: dict[str, list[float]] = {}
    tokens = {"student": 0, "teacher": 0, "teacher padded": 0}
    for batch in batches:
        tokens["student"] += int(batch.student_mask.sum())
        tokens["teacher"] += int(batch.teacher_mask.sum())
        tokens["teacher padded"] += batch.teacher_mask.numel()
        teacher_side = teacher_pass(teachers["float32"], batch, teacher_boundary, False)
        timings = {"plain step (student forward+backward, ce)": cpu_seconds(args.repeats, plain, batch),
                   "before: plain step, F.cross_entropy": cpu_seconds(args.repeats, plain_direct, batch),
                   "before: teacher forward, float32, padded, direct log-probabilities": cpu_seconds(args.repeats, teacher_direct, batch)}
        for dtype, model in teachers.items():
            for rows in (True, False):
                name = f"teacher forward, {dtype}, {'row by row' if rows else 'padded batch'}"
                timings[name] = cpu_seconds(args.repeats, teacher_pass, model, batch, teacher_boundary, False, row_by_row=rows)
        timings["ALM step without the teacher (student forward+backward, alm)"] = cpu_seconds(args.repeats, alm_without_teacher, batch, teacher_side)
        timings["before: ALM step without the teacher, direct log-probabilities"] = cpu_seconds(args.repeats, alm_without_teacher_direct, batch, teacher_side)
        for name, seconds in timings.items():
            parts.setdefault(name, []).append(seconds)
    plain_s = sum(parts["plain step (student forward+backward, ce)"])
    print(f"{args.batches} batches of bench/distill.py: {tokens['student']:,} student tokens, {tokens['teacher']:,} teacher tokens "
          f"({tokens['teacher padded']:,} padded); CPU seconds, 1 thread, best of {args.repeats}\n")
    print("| part | CPU s | vs plain step |\n|---|---|---|")
    for name, seconds in parts.items():
        print(f"| {name} | {sum(seconds):.2f} | {sum(seconds) / plain_s:.2f}x |")


if __name__ == "__main__":
    main()
