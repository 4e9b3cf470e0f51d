"""The hypernetwork on tiny models: untrained == fvt, training lowers the loss, exact resume,
transfer to tokenizers of other families, the CLI round trip and one-line errors."""

from __future__ import annotations

import json

import pytest
import tiny
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import hypernet
from transplant.cli import main
from transplant.core import convert, new_vocab_tensors, plan
from transplant.errors import TransplantError
from hypernet.sampler import FixedTokenizers, UnigramSampler
from transplant.loading import load_model, load_tokenizer
from transplant.vocab import Vocabulary, build_mapping

# Small enough that a training step takes a few milliseconds.
TINY = dict(width=32, layers=1, heads=2, batch_size=4, block_size=32, sampled_vocab_size=400, tokenizer_text_bytes=6000,
            reconstruction_tokens=256, vocab_subsample=64, eval_bytes=1500, warmup_steps=2)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny.text_file(tmp_path_factory.mktemp("corpus") / "de.txt", 0, 1500)


@pytest.fixture(scope="module")
def qwen(tmp_path_factory, source_tokenizer):
    """Untied input and output embeddings: the hypernetwork predicts both."""
    return tiny.tiny_model(tmp_path_factory.mktemp("qwen"), source_tokenizer, "qwen2")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, llama, source_tokenizer):
    """The tiny Llama after a few seconds of LM training on German: a random model's output is
    near-uniform whatever its embeddings, so only a model that learned something can show the
    hypernetwork lowering its loss."""
    model = load_model(llama)
    model.train()
    ids = torch.tensor(source_tokenizer("\n".join(tiny.lines(0, 1500)))["input_ids"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(150):
        starts = torch.randint(len(ids) - 65, (8,), generator=generator)
        batch = torch.stack([ids[s : s + 64] for s in starts])
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    directory = tmp_path_factory.mktemp("pretrained")
    model.save_pretrained(directory)
    source_tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def trained(tmp_path_factory, llama, corpus):
    """A hypernetwork trained a few steps on sampled Unigram vocabularies (shared by tests)."""
    out = tmp_path_factory.mktemp("trained") / "hn"
    hypernet.train(llama, [corpus], out, max_steps=8, identity_steps=3, learning_rate=3e-3, eval_every=100, progress=False, **TINY)
    return out


def read_safetensors(directory):
    tensors = {}
    for file in sorted(directory.glob("*.safetensors")):
        tensors.update(load_file(str(file)))
    return tensors


@pytest.mark.parametrize("architecture", ["llama", "qwen"])
def test_untrained_hypernet_is_fvt(request, tmp_path, architecture, target_tokenizer):
    model = request.getfixturevalue(architecture)
    saved = hypernet.save(hypernet.create(model, width=32, layers=1, heads=2), tmp_path / "hn")
    convert(model, target_tokenizer, tmp_path / "fvt", "fvt", progress=False)
    report = convert(model, target_tokenizer, tmp_path / "hypernet", "hypernet", hypernet=saved, progress=False)
    fvt, predicted = read_safetensors(tmp_path / "fvt"), read_safetensors(tmp_path / "hypernet")
    assert set(fvt) == set(predicted)
    for name in fvt:
        torch.testing.assert_close(predicted[name], fvt[name], atol=1e-6, rtol=0)
    assert report.rules["input"].get("hypernet", 0) > 100  # the tokens really went through the hypernetwork
    if architecture == "qwen":
        assert "output" in report.rules


def test_training_lowers_the_loss(tmp_path, pretrained, corpus, target_tokenizer):
    """Trained on one real tokenizer, the held-out loss with that tokenizer goes down (from fvt)."""
    out = hypernet.train(
        pretrained, [corpus], tmp_path / "hn", tokenizers=[target_tokenizer], eval_tokenizer=target_tokenizer,
        max_steps=30, identity_steps=5, learning_rate=1e-2, eval_every=30, progress=False, **TINY,
    )
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    evals = [r["eval_bits_per_byte"] for r in log if "eval_bits_per_byte" in r]
    assert log[0]["step"] == 0 and len(evals) == 2
    assert evals[-1] < evals[0] - 0.05, evals
    rebuilt = [r["reconstruction"] for r in log if "reconstruction" in r]
    assert rebuilt[-1] < rebuilt[0]


def test_resume_after_interruption_is_bit_identical(tmp_path, llama, corpus):
    settings = dict(max_steps=6, identity_steps=2, checkpoint_every=2, learning_rate=3e-3, eval_every=100, progress=False, **TINY)
    straight = hypernet.train(llama, [corpus], tmp_path / "straight", **settings)

    def interrupt(step, record):
        if step == 3:  # one step past the last checkpoint, as a kill would lose it
            raise KeyboardInterrupt

    with pytest.raises(TransplantError, match="resume"):
        hypernet.train(llama, [corpus], tmp_path / "resumed", callback=interrupt, **settings)
    assert not (tmp_path / "resumed").exists()  # never a half-written output
    resumed = hypernet.train(llama, [corpus], tmp_path / "resumed", resume=True, **settings)
    a, b = read_safetensors(straight), read_safetensors(resumed)
    assert set(a) == set(b)
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert a["heads.input.weight"].abs().sum() > 0  # it did train
    steps = [json.loads(line)["step"] for line in (resumed / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # the log shows every step once


@pytest.mark.parametrize("family, size", [("wordpiece", 600), ("sentencepiece_bpe", 1000), ("sentencepiece_unigram", 600)])
def test_applies_to_unseen_tokenizer_families(tmp_path, trained, llama, family, size):
    """Trained on sampled byte-level Unigram vocabularies; applied to other families."""
    target = getattr(tiny, family)(size)
    out = tmp_path / "model"
    report = convert(llama, target, out, "hypernet", hypernet=trained, add_missing_special_tokens=True, progress=False)
    assert report.rules["input"].get("hypernet", 0) > 100
    model, tokenizer = load_model(out), load_tokenizer(out)
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    ids = tokenizer("Der Hund läuft über die Straße.", return_tensors="pt")["input_ids"]
    assert torch.isfinite(model(input_ids=ids).logits).all()
    # trained, so it differs from fvt on the tokens it predicts
    fvt_out = tmp_path / "fvt"
    convert(llama, target, fvt_out, "fvt", add_missing_special_tokens=True, progress=False)
    key = next(k for k in read_safetensors(out) if "embed_tokens" in k)
    assert not torch.allclose(read_safetensors(out)[key], read_safetensors(fvt_out)[key])


def test_sampler_draws_different_plausible_tokenizers(source_tokenizer):
    sampler = UnigramSampler(source_tokenizer, vocab_size=300)
    text = "\n".join(tiny.lines(0, 300))
    first = sampler.sample(text, torch.Generator().manual_seed(0))
    again = sampler.sample(text, torch.Generator().manual_seed(0))
    other = sampler.sample(text, torch.Generator().manual_seed(1))
    assert first.get_vocab() == again.get_vocab()  # a function of (text, generator)
    assert first.get_vocab() != other.get_vocab()
    assert len(first) == 300
    sentence = "Über 100 Gäste kamen 😀 am Montag."
    for tokenizer in (first, other):
        assert tokenizer.decode(tokenizer(sentence)["input_ids"]) == sentence  # byte-level: any text
        assert tokenizer.eos_token == source_tokenizer.eos_token
        assert {t: i for t, i in tokenizer.get_vocab().items() if t.startswith("<|")}.keys() == {
            t for t in source_tokenizer.get_vocab() if t.startswith("<|")
        }
    mapping = build_mapping(Vocabulary.from_tokenizer(source_tokenizer), Vocabulary.from_tokenizer(first), progress=False)
    assert not mapping.missing_special
    assert FixedTokenizers([first, other]).sample("", torch.Generator().manual_seed(3)) in (first, other)


def test_cli_train_then_convert(tmp_path, llama, corpus, target_tokenizer):
    runner = CliRunner()
    hn = tmp_path / "hn"
    result = runner.invoke(main, ["hypernet", "train", str(llama), "--corpus", str(corpus), "-o", str(hn), "--max-steps", "3",
                                  "--identity-steps", "1", "--batch-size", "2", "--block-size", "16", "--sampled-vocab-size", "300", "--quiet"])
    assert result.exit_code == 0, result.output
    assert (hn / "hypernet.json").is_file() and (hn / "log.jsonl").is_file()
    target_dir = tmp_path / "target"
    target_tokenizer.save_pretrained(target_dir)
    out = tmp_path / "converted"
    result = runner.invoke(main, ["convert", str(llama), str(target_dir), "-o", str(out), "--method", "hypernet", "--hypernet", str(hn), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "hypernet" in result.output
    assert load_model(out).get_input_embeddings().weight.shape[0] == len(target_tokenizer)
    # the same output again without --overwrite, and --resume of a finished run: clean refusals
    again = runner.invoke(main, ["hypernet", "train", str(llama), "--corpus", str(corpus), "-o", str(hn), "--quiet"])
    assert again.exit_code == 1 and again.output.startswith("Error:") and "exists" in again.output


def one_line_error(args) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    return lines[0]


def test_bad_inputs_give_one_line_errors(tmp_path, trained, llama, qwen, corpus, target_tokenizer):
    target_dir = tmp_path / "target"
    target_tokenizer.save_pretrained(target_dir)
    out = str(tmp_path / "out")
    assert "no built-in hypernetwork matches" in one_line_error(["convert", str(llama), str(target_dir), "-o", out, "--method", "hypernet"])
    assert "not a hypernetwork" in one_line_error(["convert", str(llama), str(target_dir), "-o", out, "--method", "hypernet", "--hypernet", str(tmp_path)])
    wrong_method = CliRunner().invoke(main, ["convert", str(llama), str(target_dir), "-o", out, "--method", "fvt", "--hypernet", str(trained)])
    assert wrong_method.exit_code == 2 and wrong_method.output.strip() == "Error: --hypernet is not an option of method 'fvt' (its options: --weighting)"
    assert "was trained for" in one_line_error(["convert", str(qwen), str(target_dir), "-o", out, "--method", "hypernet", "--hypernet", str(trained)])
    assert not (tmp_path / "out").exists()
    hn = str(tmp_path / "hn")
    assert "not found" in one_line_error(["hypernet", "train", str(llama), "--corpus", str(tmp_path / "missing.txt"), "-o", hn])
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    assert "empty" in one_line_error(["hypernet", "train", str(llama), "--corpus", str(empty), "-o", hn])
    zero_steps = CliRunner().invoke(main, ["hypernet", "train", str(llama), "--corpus", str(corpus), "-o", hn, "--max-steps", "0"])
    assert zero_steps.exit_code == 2 and zero_steps.output.strip().splitlines() == [zero_steps.output.strip()]
    assert zero_steps.output.startswith("Error:") and "--max-steps" in zero_steps.output
    assert not (tmp_path / "hn").exists()
    # a corrupt weights file
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "hypernet.json").write_text((trained / "hypernet.json").read_text())
    (broken / "hypernet.safetensors").write_bytes(b"not safetensors")
    assert "cannot read" in one_line_error(["convert", str(llama), str(target_dir), "-o", out, "--method", "hypernet", "--hypernet", str(broken)])


def test_token_distillation_starts_from_a_hypernetwork_on_a_tied_model(tmp_path, trained, llama, corpus, target_tokenizer):
    """tokendistill --init hypernet unties a tied head for its head fit; the head starts from the
    hypernetwork's rows (a tied head is the input matrix), so an input-only hypernetwork serves."""
    target_dir = tmp_path / "target"
    target_tokenizer.save_pretrained(target_dir)
    from_hypernet = convert(llama, target_dir, tmp_path / "hypernet", method="hypernet", hypernet=str(trained), progress=False)
    report = convert(llama, target_dir, tmp_path / "distilled", method="tokendistill", init="hypernet", init_options={"hypernet": str(trained)},
                     target_corpus=[str(corpus)], max_distilled_tokens=0, head_fit_tokens=400, head_fit_epochs=1, progress=False)
    assert report.rules["output"].get("tokendistill-fit", 0) > 0
    plain, distilled = read_safetensors(tmp_path / "hypernet"), read_safetensors(tmp_path / "distilled")
    assert torch.equal(plain["model.embed_tokens.weight"], distilled["model.embed_tokens.weight"])  # no input row distilled
    assert "lm_head.weight" in distilled and not torch.equal(distilled["lm_head.weight"], distilled["model.embed_tokens.weight"])
    assert from_hypernet.rules["input"].get("hypernet", 0) > 0


def test_predicts_a_whole_vocabulary_in_memory(llama, source_tokenizer, target_tokenizer):
    """The Python API path: new_vocab_tensors with a loaded hypernetwork object."""
    model = load_model(llama)
    mapping, _, _ = plan(source_tokenizer, target_tokenizer, progress=False)
    net = hypernet.create(llama, width=32, layers=1, heads=2)
    with torch.no_grad():
        for head in net.heads.values():
            head.weight.normal_()
    tensors, rules = new_vocab_tensors(mapping, {"input": model.get_input_embeddings().weight.detach()}, "hypernet", {"hypernet": net}, progress=False)
    fvt, _ = new_vocab_tensors(mapping, {"input": model.get_input_embeddings().weight.detach()}, "fvt", {}, progress=False)
    predicted = torch.tensor([r == "hypernet" for r in rules["input"]])
    copied = torch.tensor([r in ("exact", "special") for r in rules["input"]])
    assert predicted.sum() > 100 and copied.sum() > 10
    assert torch.equal(tensors["input"][copied], fvt["input"][copied])  # exact matches still copied
    assert not torch.allclose(tensors["input"][predicted], fvt["input"][predicted])


def test_base_tokens_spelled_without_themselves(source_tokenizer):
    """What the reconstruction loss rebuilds from: smaller base tokens, same bytes."""
    from transplant.vocab import segment

    vocab = Vocabulary.from_tokenizer(source_tokenizer)
    long_tokens = [i for i, key in enumerate(vocab.canonical) if key is not None and len(key[0]) >= 4][:50]
    assert long_tokens
    for index in long_tokens:
        assert segment(vocab, vocab.canonical[index]) == [index]
        pieces = segment(vocab, vocab.canonical[index], exclude=index)
        assert len(pieces) >= 2 and index not in pieces
        assert b"".join(vocab.surface(p) for p in pieces) == vocab.surface(index)
