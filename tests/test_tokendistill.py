"""Token Distillation on tiny models: it beats its init row, touches nothing else, resumes exactly."""

from __future__ import annotations

import json

import pytest
import tiny
from interruptions import interrupted_after, killed_after
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import transplant
from transplant.cli import main
from transplant.core import run_directory
from transplant.errors import TransplantError
from transplant.loading import load_model
from transplant.tokendistill import trainer as trainer_module
from transplant.tokendistill.hidden import resolve_layer
from transplant.tokendistill.snippets import TokenizedText, by_frequency, distillable, make_snippet, occurrences, source_spelling
from transplant.tokendistill.trainer import DistillSettings, collate, distill_rows, snippet_losses

QUICK = dict(snippets_per_token=6, snippet_length=24, tokens_per_step=4, learning_rate=3e-2)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny.text_file(tmp_path_factory.mktemp("text") / "target.txt", 2000, 600)


@pytest.fixture(scope="module")
def target_dir(tmp_path_factory, target_tokenizer):
    directory = tmp_path_factory.mktemp("target")
    target_tokenizer.save_pretrained(directory)
    return directory


def _embeddings(directory):
    weights = {}
    for file in sorted(directory.glob("*.safetensors")):
        weights |= load_file(file)
    return weights


@pytest.mark.parametrize("layer", [-1, 1])  # the final output, or the first block (the pass stops there)
def test_distilled_row_matches_the_pieces_hidden_states_better_than_fvt(llama, mapping, target_tokenizer, corpus, layer):
    text = TokenizedText.from_text(corpus.read_text(), target_tokenizer)
    model = load_model(llama)
    spelling = source_spelling(mapping, model.get_input_embeddings().weight.shape[0])
    two_pieces = [t for t, _ in by_frequency(text, distillable(spelling, list(range(len(mapping.target))))) if len(spelling[t]) == 2]
    token = two_pieces[0]
    fvt_rows, _ = transplant.init.get("fvt").rows(
        transplant.init.InitInputs(mapping, model.get_input_embeddings().weight.detach(), "input", torch.Generator()), [token]
    )
    settings = DistillSettings(**{**QUICK, "tokens_per_step": 1, "layer": layer})
    outcome = distill_rows(model, text, spelling, [token], fvt_rows, settings, prefix=[target_tokenizer.bos_token_id], progress=False)
    assert outcome.done == 1

    # the loss on every snippet it was trained on, with either row
    positions = occurrences(text, [token], settings.snippets_per_token, settings.seed)[token]
    batch = collate([make_snippet(text, spelling, int(p), settings.snippet_length, [target_tokenizer.bos_token_id]) for p in positions], pad=0)
    assert all(len(s) >= 2 for s in [spelling[token]]) and batch.teacher_ids.shape[1] > batch.student_ids.shape[1]
    body, layer = model.base_model, resolve_layer(model.base_model, layer)
    with torch.no_grad():
        losses = {
            name: snippet_losses(body, model.get_input_embeddings(), layer, batch, row.expand(len(positions), -1))[0].item()
            for name, row in (("fvt", fvt_rows[0]), ("distilled", outcome.input_rows[0]))
        }
    assert losses["distilled"] < losses["fvt"], losses


def test_rows_not_distilled_keep_their_init_rows_and_the_report_counts_them(llama, target_dir, corpus, tmp_path):
    fvt = transplant.convert(llama, target_dir, tmp_path / "fvt", method="fvt", progress=False)
    report = transplant.convert(
        llama, target_dir, tmp_path / "td", method="tokendistill", target_corpus=[corpus], max_distilled_tokens=6, head="init", progress=False, **QUICK
    )
    details = report.details
    assert details["distilled"] == 6 and len(details["distilled_tokens"]) == 6
    assert report.rules["input"]["tokendistill"] == 6
    assert report.rules["input"]["fvt"] == fvt.rules["input"]["fvt"] - 6 == details["kept_init"] - report.rules["input"].get("mean", 0)
    before, after = _embeddings(tmp_path / "fvt"), _embeddings(tmp_path / "td")
    key = "model.embed_tokens.weight"
    distilled = torch.tensor(details["distilled_tokens"])
    rest = torch.ones(len(after[key]), dtype=torch.bool)
    rest[distilled] = False
    assert torch.equal(before[key][rest], after[key][rest])
    assert not torch.equal(before[key][distilled], after[key][distilled])
    # --head init unties a tied head (SmolLM2's case) with the init rows
    assert details["head"] == "init" and after["lm_head.weight"].shape == after[key].shape
    assert torch.equal(after["lm_head.weight"], before[key])
    assert json.loads((tmp_path / "td" / "config.json").read_text())["tie_word_embeddings"] is False
    assert not run_directory(tmp_path / "td").exists()
    # the most frequent new tokens go first
    text = TokenizedText.from_text(corpus.read_text(), transplant.loading.load_tokenizer(target_dir))
    counts = torch.bincount(torch.from_numpy(text.ids.astype("int64")), minlength=len(after[key]))
    assert counts[distilled].tolist() == sorted(counts[distilled].tolist(), reverse=True)


def test_head_options_on_a_tied_model(llama, target_dir, corpus, tmp_path):
    tied = transplant.convert(llama, target_dir, tmp_path / "tied", method="tokendistill", target_corpus=corpus, head="tied", max_distilled_tokens=4, progress=False, **QUICK)
    assert "output" not in tied.rules and "lm_head.weight" not in _embeddings(tmp_path / "tied")
    assert load_model(tmp_path / "tied").config.tie_word_embeddings is True

    ntp = transplant.convert(llama, target_dir, tmp_path / "ntp", method="tokendistill", target_corpus=corpus, head="ntp", max_distilled_tokens=4, progress=False, **QUICK)
    assert ntp.details["head"] == "ntp" and ntp.rules["output"]["tokendistill-ntp"] == 4
    weights = _embeddings(tmp_path / "ntp")
    learned = torch.tensor(ntp.details["distilled_tokens"])
    assert not torch.equal(weights["lm_head.weight"][learned], weights["model.embed_tokens.weight"][learned])
    assert ntp.details["log"][0]["ntp_last"] < ntp.details["log"][0]["ntp_first"]


def test_in_memory_transplant_unties_a_tied_head_as_convert_does(llama, target_dir, target_tokenizer, source_tokenizer, corpus, tmp_path):
    # the in-memory path once left the head pointing at the new input matrix (config said untied)
    options = dict(method="tokendistill", target_corpus=[corpus], head="ntp", max_distilled_tokens=4, progress=False, **QUICK)
    transplant.convert(llama, target_dir, tmp_path / "disk", **options)
    saved = load_model(tmp_path / "disk")
    model, _, _ = transplant.transplant(load_model(llama), target_tokenizer, source_tokenizer=source_tokenizer, **options)
    assert model.get_output_embeddings().weight is not model.get_input_embeddings().weight
    assert model.config.tie_word_embeddings is False
    assert torch.equal(model.get_input_embeddings().weight, saved.get_input_embeddings().weight)
    assert torch.equal(model.get_output_embeddings().weight, saved.get_output_embeddings().weight)


def test_in_memory_api_and_untied_model(tmp_path, source_tokenizer, target_tokenizer, corpus):
    qwen = tiny.tiny_model(tmp_path / "qwen", source_tokenizer, "qwen2")
    model, tokenizer, report = transplant.transplant(
        load_model(qwen), target_tokenizer, method="tokendistill", source_tokenizer=source_tokenizer,
        target_corpus=[corpus], max_distilled_tokens=4, head="ntp", progress=False, **QUICK,
    )
    assert report.rules["input"]["tokendistill"] == 4 and report.rules["output"]["tokendistill-ntp"] == 4
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    with pytest.raises(TransplantError, match="--head tied"):
        transplant.transplant(load_model(qwen), target_tokenizer, method="tokendistill", source_tokenizer=source_tokenizer, target_corpus=[corpus], head="tied", max_distilled_tokens=1, progress=False)


def test_resume_after_interruption_gives_the_same_rows(llama, target_dir, corpus, tmp_path, monkeypatch):
    options = dict(method="tokendistill", target_corpus=[corpus], max_distilled_tokens=12, progress=False, **QUICK)
    transplant.convert(llama, target_dir, tmp_path / "straight", **options)

    save = trainer_module.save_checkpoint

    monkeypatch.setattr(trainer_module, "save_checkpoint", interrupted_after(save, 2))
    with pytest.raises(KeyboardInterrupt):
        transplant.convert(llama, target_dir, tmp_path / "resumed", **options)
    assert not (tmp_path / "resumed").exists()
    monkeypatch.setattr(trainer_module, "save_checkpoint", save)
    with pytest.raises(TransplantError, match="--resume"):
        transplant.convert(llama, target_dir, tmp_path / "resumed", **options)
    with pytest.raises(TransplantError, match="snippets_per_token"):
        transplant.convert(llama, target_dir, tmp_path / "resumed", **{**options, "snippets_per_token": 3}, resume=True)
    report = transplant.convert(llama, target_dir, tmp_path / "resumed", **options, resume=True)
    assert [r["step"] for r in report.details["log"]] == [1, 2, 3]
    a, b = _embeddings(tmp_path / "straight"), _embeddings(tmp_path / "resumed")
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_cli_convert_tokendistill_and_its_errors(llama, target_dir, corpus, tmp_path):
    runner = CliRunner()
    args = ["convert", str(llama), str(target_dir), "--method", "tokendistill", "--quiet"]
    ok = runner.invoke(main, args + ["-o", str(tmp_path / "out"), "--target-corpus", str(corpus), "--target-corpus", str(corpus),
                                     "--max-distilled-tokens", "3", "--snippets-per-token", "2", "--tokens-per-step", "3", "--head", "tied"])
    assert ok.exit_code == 0, ok.output
    assert "token distillation: 3 of" in ok.output and "input: " in ok.output and "tokendistill 3" in ok.output

    no_text = runner.invoke(main, args + ["-o", str(tmp_path / "x")])
    assert no_text.exit_code == 1 and "--target-corpus" in no_text.output and "Traceback" not in no_text.output
    bad_init = runner.invoke(main, args + ["-o", str(tmp_path / "x"), "--target-corpus", str(corpus), "--init", "hypernet"])
    assert bad_init.exit_code == 1 and "--hypernet" in bad_init.output
    bad_layer = runner.invoke(main, args + ["-o", str(tmp_path / "x"), "--target-corpus", str(corpus), "--distill-layer", "9"])
    assert bad_layer.exit_code == 1 and "--distill-layer" in bad_layer.output
    timed = runner.invoke(main, args + ["-o", str(tmp_path / "t"), "--target-corpus", str(corpus), "--max-seconds", "1e-9"])
    assert timed.exit_code == 0 and "token distillation: 0 of" in timed.output


def test_cli_resume_after_kill_9_matches_the_uninterrupted_run(llama, target_dir, corpus, tmp_path):
    args = [str(llama), str(target_dir), "--method", "tokendistill", "--target-corpus", str(corpus), "--max-distilled-tokens", "60",
            "--tokens-per-step", "4", "--snippets-per-token", "8", "--snippet-length", "24", "--quiet"]
    killed_after(["convert", *args, "-o", str(tmp_path / "killed")], run_directory(tmp_path / "killed") / "checkpoints" / "step-3")
    assert not (tmp_path / "killed").exists(), "the run finished before it could be killed"

    runner = CliRunner()
    resumed = runner.invoke(main, ["convert", *args, "-o", str(tmp_path / "killed"), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    straight = runner.invoke(main, ["convert", *args, "-o", str(tmp_path / "straight")])
    assert straight.exit_code == 0, straight.output
    a, b = _embeddings(tmp_path / "killed"), _embeddings(tmp_path / "straight")
    assert all(torch.equal(a[name], b[name]) for name in a)
    log = json.loads((tmp_path / "killed" / "transplant_report.json").read_text())["details"]["log"]
    assert [r["step"] for r in log] == list(range(1, 16))


def test_resume_refuses_another_target_text(llama, target_dir, corpus, tmp_path, monkeypatch):
    options = dict(method="tokendistill", target_corpus=[corpus], max_distilled_tokens=12, progress=False, **QUICK)
    save = trainer_module.save_checkpoint
    monkeypatch.setattr(trainer_module, "save_checkpoint", interrupted_after(save, 2))
    with pytest.raises(KeyboardInterrupt):
        transplant.convert(llama, target_dir, tmp_path / "out", **options)
    monkeypatch.setattr(trainer_module, "save_checkpoint", save)
    other = tiny.text_file(tmp_path / "other.txt", 3000, 600)
    with pytest.raises(TransplantError, match="other inputs"):
        transplant.convert(llama, target_dir, tmp_path / "out", **{**options, "target_corpus": [other]}, resume=True)
    transplant.convert(llama, target_dir, tmp_path / "out", **options, resume=True)
    assert (tmp_path / "out" / "config.json").is_file() and not run_directory(tmp_path / "out").exists()


def test_head_fit_features_are_the_models_states_before_each_token(llama, mapping, target_tokenizer, corpus):
    """The feature for a target token is the final hidden state after the source pieces of
    everything before it in its segment (prefix first): a full forward pass gives the same."""
    from transplant.tokendistill.headfit import next_token_features

    text = TokenizedText.from_text(corpus.read_text(), target_tokenizer)
    model = load_model(llama).eval()
    spelling = source_spelling(mapping, model.get_input_embeddings().weight.shape[0])
    bos = [target_tokenizer.bos_token_id]
    features, labels = next_token_features(model.base_model, text, spelling, bos, 40, None, progress=False)
    assert len(labels) == 40 and labels.tolist() == text.ids[:40].tolist()  # the first segment's tokens, in order
    ids = bos + [piece for token in text.ids[:40].tolist() for piece in spelling[token]]
    with torch.no_grad():
        full = model.base_model(torch.tensor([ids])).last_hidden_state[0]
    ends = [len(bos) - 1] + list(torch.tensor([len(spelling[t]) for t in text.ids[:39].tolist()]).cumsum(0) + len(bos) - 1)
    assert torch.allclose(features, full[ends], atol=1e-5)


def test_head_fit_lowers_the_next_token_loss_and_moves_only_new_rows(llama, mapping, target_tokenizer, corpus):
    from transplant.tokendistill.headfit import fit_head_rows, next_token_features

    text = TokenizedText.from_text(corpus.read_text(), target_tokenizer)
    model = load_model(llama).eval()
    spelling = source_spelling(mapping, model.get_input_embeddings().weight.shape[0])
    features, labels = next_token_features(model.base_model, text, spelling, [target_tokenizer.bos_token_id], 3000, None, progress=False)
    head, _ = transplant.init.get("fvt").initialize(
        transplant.init.InitInputs(mapping, model.get_output_embeddings().weight.detach(), "output", torch.Generator()), len(mapping.target)
    )
    new = [t for t in range(len(mapping.target)) if mapping.matches[t] < 0]
    rows, losses = fit_head_rows(features, labels, head, new, 3, 1e-2, torch.Generator().manual_seed(0), progress=False)
    fitted = head.index_copy(0, torch.tensor(new), rows)
    before = torch.nn.functional.cross_entropy(features @ head.T, labels)
    after = torch.nn.functional.cross_entropy(features @ fitted.T, labels)
    assert after < before and losses[-1] < losses[0]
    again, _ = fit_head_rows(features, labels, head, new, 3, 1e-2, torch.Generator().manual_seed(0), progress=False)
    assert torch.equal(rows, again)  # seeded: the same rows every time


def test_head_fit_gives_every_new_token_a_head_row(llama, target_dir, corpus, tmp_path):
    report = transplant.convert(
        llama, target_dir, tmp_path / "fit", method="tokendistill", target_corpus=corpus, head="fit", head_fit_tokens=2000,
        head_fit_epochs=2, head_learning_rate=1e-2, max_distilled_tokens=2, progress=False, **QUICK,
    )
    new_tokens = sum(count for rule, count in report.rules["input"].items() if rule not in ("exact", "special"))
    assert report.rules["output"] == {**{k: v for k, v in report.rules["output"].items() if k in ("exact", "special")}, "tokendistill-fit": new_tokens}
    assert report.details["head_fit"]["examples"] == 2000 and report.rules["input"]["tokendistill"] == 2
    weights = _embeddings(tmp_path / "fit")
    assert load_model(tmp_path / "fit").config.tie_word_embeddings is False
    shared = [i for i, rule in enumerate(json.loads((tmp_path / "fit" / "transplant_report.json").read_text())["token_rules"]) if rule == "exact"]
    assert torch.equal(weights["lm_head.weight"][shared], weights["model.embed_tokens.weight"][shared])  # copied rows stay the source's
