"""Distillation end to end on tiny models: minimum at the teacher, gradients, exact resume, CLI."""

from __future__ import annotations

import json

import pytest
import tiny
from interruptions import interrupted_after, killed_after
import torch
from click.testing import CliRunner

from transplant import convert
from transplant.cli import main
from transplant.distill import AlmOptions, DistillConfig, distill
from transplant.distill import trainer as trainer_module
from transplant.distill.data import collate, make_examples
from transplant.distill.objectives import merge_chunks
from transplant.distill.trainer import objective_values, run_directory
from transplant.loading import load_model, load_tokenizer
from transplant.vocab import Vocabulary, boundary_token_mask

TRAIN_LINES = tiny.lines(0, 200)
EVAL_LINES = tiny.lines(300, 60)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, source_tokenizer, target_tokenizer, llama):
    root = tmp_path_factory.mktemp("distill")
    target_tokenizer.save_pretrained(root / "tok")
    convert(llama, root / "tok", root / "student", method="fvt", progress=False)
    (root / "train.txt").write_text("\n".join(TRAIN_LINES) + "\n")
    (root / "eval.txt").write_text("\n".join(EVAL_LINES) + "\n")
    return root


def _weights(directory):
    return {k: v.clone() for k, v in load_model(directory).state_dict().items()}


def test_merge_chunks_ends_merged_chunks_only_where_closed():
    closed = torch.tensor([[False, True, False, False, True, False]])
    token_chunk = torch.tensor([[-1, 0, 0, 1, 2, 3, 3, 4, 5, 5]])
    merged, mask, ends = merge_chunks(closed, torch.ones(1, 6, dtype=torch.bool), token_chunk)
    assert merged.tolist() == [[-1, 0, 0, 0, 1, 1, 1, 1, -1, -1]]  # chunk 5 never closes: dropped
    assert mask.tolist() == [[True, True, False, False, False, False]]
    assert ends[0, :2].tolist() == [1, 4]


@pytest.mark.parametrize("merge_threshold", [0.0, 0.1])
def test_alm_is_zero_with_zero_gradient_when_student_is_teacher(llama, source_tokenizer, merge_threshold):
    vocab = Vocabulary.from_tokenizer(source_tokenizer)
    batch = collate(make_examples("\n".join(TRAIN_LINES[:40]), vocab, vocab, segment_bytes=300, max_length=64)[:3])
    teacher, student = load_model(llama), load_model(llama)
    student.train()
    boundary = boundary_token_mask(vocab)
    options = AlmOptions(divergence="binary_kl", merge_threshold=merge_threshold)
    parts = objective_values(batch, teacher, student, {"alm": 1.0}, boundary, boundary, options)
    parts["alm"].backward()
    assert abs(parts["alm"].item()) < 1e-6
    gradient = max(p.grad.abs().max().item() for p in student.parameters() if p.grad is not None)
    assert gradient < 1e-6
    assert batch.chunk_mask.sum() > 20  # the batch really had chunks to compare


def test_alm_gradient_reaches_the_new_embeddings(setup, llama, source_tokenizer, target_tokenizer):
    teacher_vocab, student_vocab = Vocabulary.from_tokenizer(source_tokenizer), Vocabulary.from_tokenizer(target_tokenizer)
    batch = collate(make_examples("\n".join(TRAIN_LINES[:40]), teacher_vocab, student_vocab, segment_bytes=300, max_length=64)[:3])
    teacher, student = load_model(llama), load_model(setup / "student")
    parts = objective_values(batch, teacher, student, {"alm": 1.0}, boundary_token_mask(teacher_vocab), boundary_token_mask(student_vocab), AlmOptions())
    assert parts["alm"].item() > 0
    parts["alm"].backward()
    grad = student.get_input_embeddings().weight.grad
    used = batch.student_ids.unique()
    assert grad[used].abs().sum(1).gt(0).float().mean() > 0.5  # most tokens in the batch get a gradient


@pytest.mark.parametrize("train", ["embeddings", "lora"])
def test_training_changes_only_what_it_should_and_lowers_the_loss(setup, llama, train):
    out = setup / f"out-{train}"
    config = DistillConfig(loss="alm", train=train, max_steps=8, max_tokens=10**9, batch_size=2, learning_rate=3e-3, eval_every=0)
    result = distill(llama, setup / "student", [setup / "train.txt"], out, config, eval_text=setup / "eval.txt", progress=False)
    before, after = _weights(setup / "student"), _weights(out)
    assert set(before) == set(after)  # LoRA was merged away: a plain checkpoint again
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert any("embed_tokens" in name for name in changed)
    if train == "embeddings":
        assert all("embed_tokens" in name or "lm_head" in name for name in changed)
    else:
        assert any("proj" in name for name in changed)
    assert result.bits_per_byte_after < result.bits_per_byte_before
    losses = [r["alm"] for r in result.curve if "alm" in r]
    assert sum(losses[-3:]) < sum(losses[:3])
    assert load_tokenizer(out).get_vocab() == load_tokenizer(setup / "student").get_vocab()
    report = json.loads((out / "distill_report.json").read_text())
    assert report["steps"] == 8 and report["config"]["train"] == train
    assert not run_directory(out).exists()


def test_resume_after_interruption_reproduces_the_uninterrupted_run(setup, llama, monkeypatch):
    config = DistillConfig(loss="alm+ce", max_steps=6, max_tokens=10**9, batch_size=2, checkpoint_every=2, eval_every=3, learning_rate=1e-2)
    distill(llama, setup / "student", [setup / "train.txt"], setup / "straight", config, eval_text=setup / "eval.txt", progress=False)

    save = trainer_module.save_checkpoint

    monkeypatch.setattr(trainer_module, "save_checkpoint", interrupted_after(save, 4))
    with pytest.raises(KeyboardInterrupt):
        distill(llama, setup / "student", [setup / "train.txt"], setup / "resumed", config, eval_text=setup / "eval.txt", progress=False)
    assert not (setup / "resumed").exists()  # nothing half-written
    monkeypatch.setattr(trainer_module, "save_checkpoint", save)
    result = distill(llama, setup / "student", [setup / "train.txt"], setup / "resumed", config, eval_text=setup / "eval.txt", resume=True, progress=False)

    straight, resumed = _weights(setup / "straight"), _weights(setup / "resumed")
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)
    assert [r["step"] for r in result.curve] == list(range(7))
    log = [json.loads(line) for line in (setup / "straight" / "log.jsonl").read_text().splitlines()]
    assert [r.get("eval_bpb") for r in log] == [r.get("eval_bpb") for r in result.curve]


def test_cli_distill_and_its_errors(setup, llama):
    runner = CliRunner()
    args = ["distill", "--teacher", str(llama), "--student", str(setup / "student"), "--text", str(setup / "train.txt")]
    result = runner.invoke(main, args + ["-o", str(setup / "cli"), "--max-tokens", "600", "--eval-text", str(setup / "eval.txt"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "bits/byte" in result.output and (setup / "cli" / "config.json").is_file()

    missing = runner.invoke(main, ["distill", "--teacher", str(llama), "--student", str(setup / "student"), "--text", str(setup / "nope.txt"), "-o", str(setup / "x")])
    assert missing.exit_code != 0 and "nope.txt" in missing.output and "Traceback" not in missing.output

    exists = runner.invoke(main, args + ["-o", str(setup / "cli")])
    assert exists.exit_code == 1 and "--overwrite" in exists.output

    bad_loss = runner.invoke(main, args + ["-o", str(setup / "y"), "--loss", "alm+kl"])
    assert bad_loss.exit_code != 0 and "--loss" in bad_loss.output

    run_directory(setup / "z").joinpath("checkpoints", "step-1").mkdir(parents=True)
    (run_directory(setup / "z") / "checkpoints" / "step-1" / "state.json").write_text("{}")
    interrupted = runner.invoke(main, args + ["-o", str(setup / "z")])
    assert interrupted.exit_code == 1 and "--resume" in interrupted.output


def test_cli_resume_after_kill_9_matches_the_uninterrupted_run(setup, llama):
    args = ["--teacher", str(llama), "--student", str(setup / "student"), "--text", str(setup / "train.txt"), "--loss", "alm",
            "--max-steps", "12", "--max-tokens", "1000000000", "--batch-size", "2", "--checkpoint-every", "1", "--lr", "1e-2", "--quiet"]
    killed_after(["distill", *args, "-o", str(setup / "killed")], run_directory(setup / "killed") / "checkpoints" / "step-3")
    assert not (setup / "killed").exists(), "the run finished before it could be killed"

    runner = CliRunner()
    resumed = runner.invoke(main, ["distill", *args, "-o", str(setup / "killed"), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    straight = runner.invoke(main, ["distill", *args, "-o", str(setup / "unkilled"), "--checkpoint-every", "0"])
    assert straight.exit_code == 0, straight.output
    a, b = _weights(setup / "killed"), _weights(setup / "unkilled")
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_cli_distill_needs_some_text_and_names_the_options(setup, llama):
    runner = CliRunner()
    base = ["distill", "--teacher", str(llama), "--student", str(setup / "student"), "-o", str(setup / "none")]
    no_text = runner.invoke(main, base)
    assert no_text.exit_code == 2 and "--text" in no_text.output and "--hub" in no_text.output


def test_cli_distill_hub_offline_is_one_line_naming_the_local_option(setup, llama, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSPLANT_CACHE", str(tmp_path))
    runner = CliRunner()
    result = runner.invoke(main, ["distill", "--teacher", str(llama), "--student", str(setup / "student"), "--hub", "HuggingFaceFW/fineweb-2:deu_Latn", "-o", str(setup / "hub"), "--quiet"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--text FILE" in lines[0] and "Traceback" not in result.output


def test_hub_text_is_streamed_once_and_then_read_from_the_cache(monkeypatch, tmp_path):
    from transplant import hub_text

    calls = []
    monkeypatch.setenv("TRANSPLANT_CACHE", str(tmp_path))
    monkeypatch.setattr(hub_text, "hub_lines", lambda *args, **kwargs: calls.append(args) or ["erste Zeile", "zweite Zeile"])
    first = hub_text.hub_text_file("some/dataset", "deu_Latn", 1000, progress=False)
    again = hub_text.hub_text_file("some/dataset", "deu_Latn", 1000, progress=False)
    other = hub_text.hub_text_file("some/dataset", "fra_Latn", 1000, progress=False)
    assert first == again != other
    assert first.read_text(encoding="utf-8") == "erste Zeile\nzweite Zeile\n"
    assert len(calls) == 2  # the second request for the same text never streamed


def test_gradient_checkpointing_and_a_bf16_teacher_change_memory_not_results(setup, llama, tmp_path):
    base = dict(loss="alm+ce", max_steps=3, max_tokens=10**9, batch_size=2, checkpoint_every=0, eval_every=0, learning_rate=1e-2, teacher_dtype="float32")
    plain = distill(llama, setup / "student", [setup / "train.txt"], tmp_path / "plain", DistillConfig(**base), progress=False)
    distill(llama, setup / "student", [setup / "train.txt"], tmp_path / "recomputed", DistillConfig(gradient_checkpointing=True, **base), progress=False)
    a, b = _weights(tmp_path / "plain"), _weights(tmp_path / "recomputed")
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-6, msg=name)
    half = distill(llama, setup / "student", [setup / "train.txt"], tmp_path / "half", DistillConfig(**{**base, "teacher_dtype": "bfloat16"}, mixed_precision="bf16"), progress=False)
    assert half.steps == plain.steps == 3
    c = _weights(tmp_path / "half")
    assert all(torch.isfinite(t).all() for t in c.values())
    assert any(not torch.equal(a[name], c[name]) for name in a)  # bf16 really ran


def test_objectives_equal_the_direct_computation_from_padded_logits(setup, llama, source_tokenizer, target_tokenizer):
    """The teacher run row by row (or padded), one softmax per side: the same ALM, cross-entropy and
    latent values and gradients as the direct formulas on one padded forward of each model."""
    from test_alm_loss import reference_boundary_logprobs, reference_token_logprobs

    from transplant.distill.objectives import SidePass, alm_objective, latent_objective, teacher_pass

    teacher_vocab, student_vocab = Vocabulary.from_tokenizer(source_tokenizer), Vocabulary.from_tokenizer(target_tokenizer)
    examples = make_examples("\n".join(TRAIN_LINES[:60]), teacher_vocab, student_vocab, segment_bytes=300, max_length=512)
    batch = collate(sorted(examples, key=lambda e: len(e.teacher_ids))[::-4][:4])  # rows of different lengths
    assert (batch.teacher_mask == 0).any()  # there is padding to skip
    teacher, student = load_model(llama), load_model(setup / "student")
    teacher_boundary, student_boundary = boundary_token_mask(teacher_vocab), boundary_token_mask(student_vocab)
    options = AlmOptions()

    teacher_out = teacher(input_ids=batch.teacher_ids, attention_mask=batch.teacher_mask, output_hidden_states=True)
    student_out = student(input_ids=batch.student_ids, attention_mask=batch.student_mask, output_hidden_states=True)
    teacher_logits, student_logits = teacher_out.logits.detach(), student_out.logits
    direct_teacher = SidePass(reference_token_logprobs(teacher_logits, batch.teacher_ids), reference_boundary_logprobs(teacher_logits, teacher_boundary))
    direct_student = SidePass(reference_token_logprobs(student_logits, batch.student_ids), reference_boundary_logprobs(student_logits, student_boundary))
    targets = batch.student_ids[:, 1:].masked_fill(batch.student_mask[:, 1:] == 0, -100)
    direct = {
        "alm": alm_objective(batch, direct_teacher, direct_student, options),
        "ce": torch.nn.functional.cross_entropy(student_logits[:, :-1].flatten(0, 1), targets.flatten(), ignore_index=-100),
        "latents": latent_objective(batch, teacher_out.hidden_states[-1].detach(), student_out.hidden_states[-1]),
    }
    direct_total = direct["alm"] * 100 + direct["ce"] + direct["latents"]
    direct_grad = torch.autograd.grad(direct_total, student.get_input_embeddings().weight)[0]

    real = batch.teacher_mask.bool()
    for row_by_row in (True, False):  # the CPU default, and one padded call as on an accelerator
        fast_teacher = teacher_pass(teacher, batch, teacher_boundary, False, row_by_row=row_by_row)
        torch.testing.assert_close(fast_teacher.token_logp[real], direct_teacher.token_logp[real], rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(fast_teacher.space_logp[real], direct_teacher.space_logp[real], rtol=1e-5, atol=1e-4)
    fast = objective_values(batch, teacher, student, {"alm": 100.0, "ce": 1.0, "latents": 1.0}, teacher_boundary, student_boundary, options)
    fast_total = fast["alm"] * 100 + fast["ce"] + fast["latents"]
    fast_grad = torch.autograd.grad(fast_total, student.get_input_embeddings().weight)[0]
    for name in direct:
        torch.testing.assert_close(fast[name], direct[name], rtol=1e-5, atol=1e-6)
    assert direct["alm"].item() > 0 and direct["latents"].item() > 0 and direct_grad.abs().sum() > 0
    torch.testing.assert_close(fast_grad, direct_grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("native", [True, False])
def test_the_teacher_runs_in_bf16_by_default_only_where_the_machine_computes_it_natively(setup, llama, tmp_path, monkeypatch, native):
    monkeypatch.setattr(trainer_module, "computes_bf16_natively", lambda: native)
    loads = []
    real_load = trainer_module.load_model
    monkeypatch.setattr(trainer_module, "load_model", lambda spec, **kw: loads.append(kw.get("dtype")) or real_load(spec, **kw))
    config = DistillConfig(loss="alm", max_steps=1, max_tokens=10**9, batch_size=2, checkpoint_every=0, eval_every=0)
    distill(llama, setup / "student", [setup / "train.txt"], tmp_path / "out", config, progress=False)
    expected = "bfloat16" if native else "float32"
    assert loads[0] == getattr(torch, expected)  # the teacher, loaded first
    assert json.loads((tmp_path / "out" / "distill_report.json").read_text())["config"]["teacher_dtype"] == expected

