"""The head predictor for tied models (hypernet/head_training.py): examples line up with the base
model's next tokens, training lowers the regression loss from fvt's rows, the input kind is left as
it was, and a conversion unties the head with the predicted rows."""

from __future__ import annotations

import json

import pytest
import tiny
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import hypernet
from hypernet.head_training import HeadTask, base_features, examples, spelled_examples, train_head, with_head_of, with_tied_head
from hypernet.model import predict
from transplant.cli import main
from transplant.core import convert
from transplant.errors import TransplantError
from transplant.loading import load_model, load_tokenizer
from transplant.tokendistill.snippets import start_of_text
from transplant.vocab import Vocabulary, build_mapping

QUICK = dict(steps=40, tasks_per_step=2, batch_size=64, sampled_others=32, learning_rate=3e-3, warmup_steps=2, feature_tokens=6000,
             tokenizers_per_corpus=2, sampled_vocab_size=400, tokenizer_text_bytes=6000)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny.text_file(tmp_path_factory.mktemp("corpus") / "de.txt", 0, 300)


@pytest.fixture(scope="module")
def small_hypernet(tmp_path_factory, llama):
    return hypernet.save(hypernet.create(llama, width=32, layers=1, heads=2), tmp_path_factory.mktemp("hn") / "hn")


@pytest.fixture(scope="module")
def with_head(tmp_path_factory, llama, corpus, small_hypernet, target_tokenizer):
    return train_head(llama, [corpus], tmp_path_factory.mktemp("head") / "hn", hypernet=small_hypernet, tokenizers=[target_tokenizer], progress=False, **QUICK)


def test_with_the_base_tokenizer_every_feature_predicts_the_next_base_token(llama, source_tokenizer, corpus):
    model = load_model(llama)
    text = corpus.read_text()
    features = base_features(model, source_tokenizer, text, 300, progress=False)
    positions, labels = examples(source_tokenizer, features)
    ids = source_tokenizer(features.text, add_special_tokens=False)["input_ids"]
    assert len(features.hidden) == 300 and positions.tolist() == list(range(300))
    assert labels.tolist() == ids[1:301]
    # the features are what the head multiplies: they give the model's own logits
    logits = model(input_ids=torch.tensor([ids[:300]])).logits[0]
    torch.testing.assert_close(features.hidden[:100].float() @ model.lm_head.weight.T, logits[:100], atol=2e-2, rtol=1e-2)


def test_spelled_examples_are_the_models_states_over_the_text_in_source_pieces(llama, source_tokenizer, target_tokenizer, corpus):
    model = load_model(llama)
    text = corpus.read_text()[:3000]
    mapping = build_mapping(Vocabulary.from_tokenizer(source_tokenizer), Vocabulary.from_tokenizer(target_tokenizer), progress=False)
    hidden, labels = spelled_examples(model, source_tokenizer, target_tokenizer, mapping, text, 120)
    # the reference: the first segment's target tokens written out in source pieces by hand, one pass
    target_ids = target_tokenizer(text, add_special_tokens=False)["input_ids"][:120]
    spelled, before = list(start_of_text(source_tokenizer)), []
    for token in target_ids:
        pieces = [mapping.matches[token]] if mapping.matches[token] >= 0 else mapping.pieces[token]
        if spelled:
            before.append(len(spelled) - 1)
        spelled += pieces
    assert len(labels) == 120 and labels.tolist() == target_ids[len(target_ids) - len(before):]
    states = model.base_model(input_ids=torch.tensor([spelled])).last_hidden_state[0, before]
    torch.testing.assert_close(hidden.float(), states, atol=1e-2, rtol=1e-2)
    assert hidden.dtype == torch.float16


def test_an_untrained_head_predictor_is_fvt_and_leaves_the_input_kind(llama, small_hypernet, target_tokenizer, mapping):
    net = hypernet.load(small_hypernet)
    source = load_model(llama).get_input_embeddings().weight.detach().float()
    extended = with_tied_head(net, source)
    assert extended.config.kinds == ["input", "output"] and extended.config.tied_head
    decompositions = [mapping.pieces[t] for t in range(len(mapping.target))]
    for kind in ("input", "output"):
        torch.testing.assert_close(predict(extended, mapping.source, decompositions, source, kind), predict(net, mapping.source, decompositions, source, "input"))


def test_training_lowers_the_regression_loss_and_keeps_the_input_kind(llama, corpus, small_hypernet, with_head, source_tokenizer, target_tokenizer):
    before, after = hypernet.load(small_hypernet), hypernet.load(with_head)
    assert after.config.tied_head and after.config.own_encoders == ["output"]
    before_state, after_state = before.state_dict(), after.state_dict()
    for name, tensor in before_state.items():  # everything the input kind uses is unchanged
        assert torch.equal(tensor, after_state[name]), name
    log = [json.loads(line) for line in (with_head / "head_log.jsonl").read_text().splitlines()]
    assert len(log) == QUICK["steps"]
    # on the real tokenizer it trained on beside the sampled ones (a random model's states tell too little to
    # generalise to new tokenizers): the softmax regression loss with predicted head rows, on its spelled examples
    model = load_model(llama)
    source = model.get_input_embeddings().weight.detach().float()
    base_vocab = Vocabulary.from_tokenizer(source_tokenizer)
    task = HeadTask.from_spelled_text(target_tokenizer, source_tokenizer, base_vocab, model, 0, corpus.read_text(), 6000)
    fallback = source.mean(0)
    batch = task.hidden[task.positions].float()
    losses = []
    for net in (with_tied_head(before, source), after):
        with torch.no_grad():
            logits, labels = task.logits(net, source, base_vocab, fallback, batch, task.labels, len(task.new), torch.Generator())
        losses.append(torch.nn.functional.cross_entropy(logits, labels).item())
    assert losses[1] < losses[0] - 0.05, losses


def test_a_head_part_moves_onto_another_input_part(llama, small_hypernet, with_head, mapping):
    other = hypernet.load(small_hypernet)
    with torch.no_grad():  # another input part: a non-zero residual, unlike the donor's
        torch.nn.init.normal_(other.heads["input"].weight, std=0.05)
    donor = hypernet.load(with_head)
    combined = with_head_of(other, donor)
    assert combined.config.kinds == ["input", "output"] and combined.config.tied_head and combined.config.own_encoders == ["output"]
    source = load_model(llama).get_input_embeddings().weight.detach().float()
    decompositions = [mapping.pieces[t] for t in range(len(mapping.target))]
    torch.testing.assert_close(predict(combined, mapping.source, decompositions, source, "input"), predict(other, mapping.source, decompositions, source, "input"))
    torch.testing.assert_close(predict(combined, mapping.source, decompositions, source, "output"), predict(donor, mapping.source, decompositions, source, "output"))
    assert not torch.equal(predict(combined, mapping.source, decompositions, source, "input"), predict(donor, mapping.source, decompositions, source, "input"))
    with pytest.raises(TransplantError, match="no head predictor"):
        with_head_of(donor, other)
    with pytest.raises(TransplantError, match="differ in shape"):
        with_head_of(hypernet.create(llama, width=16, layers=1, heads=2), donor)


def test_lm_logits_give_a_tied_model_a_head_of_its_own_for_one_call(llama, source_tokenizer):
    from hypernet.training import lm_logits

    model = load_model(llama)
    tied = model.get_input_embeddings().weight
    before = tied.detach().clone()
    generator = torch.Generator().manual_seed(0)
    rows = {"input": torch.randn(50, tied.shape[1], generator=generator), "output": torch.randn(50, tied.shape[1], generator=generator)}
    ids = torch.randint(50, (2, 12), generator=generator)
    mask = torch.ones_like(ids)
    logits = lm_logits(model, rows, ids, mask)
    # the reference: the body over the input rows, then the output rows as the head
    hidden = model.model(inputs_embeds=rows["input"][ids], attention_mask=mask).last_hidden_state
    torch.testing.assert_close(logits, hidden @ rows["output"].T)
    tied_only = lm_logits(model, {"input": rows["input"]}, ids, mask)  # without "output" the head follows the input rows
    torch.testing.assert_close(tied_only, hidden @ rows["input"].T)
    assert model.lm_head.weight is model.get_input_embeddings().weight and torch.equal(tied, before)


def test_input_part_trained_against_a_fixed_head_part(tmp_path, llama, corpus, with_head, target_tokenizer, mapping):
    options = dict(width=32, layers=1, heads=2, batch_size=4, block_size=32, sampled_vocab_size=400, tokenizer_text_bytes=6000,
                   identity_steps=0, max_steps=6, warmup_steps=1, learning_rate=3e-3, eval_every=100, checkpoint_every=100, vocab_subsample=64)
    out = hypernet.train(llama, [corpus], tmp_path / "hn", head_part=with_head, progress=False, **options)
    trained, donor = hypernet.load(out), hypernet.load(with_head)
    assert trained.config.kinds == ["input", "output"] and trained.config.tied_head
    source = load_model(llama).get_input_embeddings().weight.detach().float()
    decompositions = [mapping.pieces[t] for t in range(len(mapping.target))]
    # the head part is the donor's, untouched; the input part learned something (untrained it is fvt)
    torch.testing.assert_close(predict(trained, mapping.source, decompositions, source, "output"), predict(donor, mapping.source, decompositions, source, "output"))
    untrained = hypernet.create(llama, width=32, layers=1, heads=2)
    assert not torch.allclose(predict(trained, mapping.source, decompositions, source, "input"), predict(untrained, mapping.source, decompositions, source, "input"))
    assert json.loads((tmp_path / "hn.run" / "training.json").read_text())["head_part"] == str(with_head)
    # an untied model has no tied head to give a head part to
    qwen = tiny.tiny_model(tmp_path / "qwen", load_tokenizer(llama), "qwen2")
    with pytest.raises(TransplantError, match="untied head"):
        hypernet.train(qwen, [corpus], tmp_path / "q", head_part=with_head, progress=False, **options)


def test_convert_unties_the_head_with_predicted_rows(tmp_path, llama, with_head, target_tokenizer, mapping):
    report = convert(llama, target_tokenizer, tmp_path / "out", "hypernet", hypernet=with_head, progress=False)
    assert "output" in report.rules
    weights = {}
    for file in (tmp_path / "out").glob("*.safetensors"):
        weights |= load_file(file)
    converted = load_model(tmp_path / "out")
    assert converted.config.tie_word_embeddings is False
    head, inputs = weights["lm_head.weight"], weights["model.embed_tokens.weight"]
    net = hypernet.load(with_head)
    source = load_model(llama).get_input_embeddings().weight.detach().float()
    new = [t for t in range(len(mapping.target)) if mapping.matches[t] < 0 and mapping.pieces[t]]
    decompositions = [mapping.pieces[t] for t in new]
    torch.testing.assert_close(head[new].float(), predict(net, mapping.source, decompositions, source, "output"))
    torch.testing.assert_close(inputs[new].float(), predict(net, mapping.source, decompositions, source, "input"))
    copied = [t for t in range(len(mapping.target)) if mapping.matches[t] >= 0]
    assert torch.equal(head[copied], inputs[copied])  # copied tokens keep the tied row in both places


def interrupt_at(stop: int):
    """A training callback that stops the run after step ``stop``, as Ctrl-C would."""
    def callback(step, record):
        if step == stop:
            raise KeyboardInterrupt
    return callback


def assert_same_weights(first, second):
    """Two saved hypernetworks hold the same tensors, bit for bit."""
    a, b = load_file(str(first / "hypernet.safetensors")), load_file(str(second / "hypernet.safetensors"))
    assert a.keys() == b.keys()
    for name, tensor in a.items():
        assert torch.equal(tensor, b[name]), name


def test_resume_after_interruption_is_bit_identical_and_runs_no_model_pass(tmp_path, llama, corpus, small_hypernet, monkeypatch):
    options = {**QUICK, "steps": 6, "checkpoint_every": 2, "feature_tokens": 1500}
    whole = train_head(llama, [corpus], tmp_path / "whole", hypernet=small_hypernet, progress=False, **options)

    with pytest.raises(TransplantError, match="interrupted at step 3; run again with --resume"):
        train_head(llama, [corpus], tmp_path / "split", hypernet=small_hypernet, progress=False, callback=interrupt_at(3), **options)
    assert not (tmp_path / "split").exists() and (tmp_path / "split.run" / "checkpoints" / "step-2").is_dir()
    (tmp_path / "notes.run").write_text("a file of the user's")  # OUT.run is deleted on a fresh start: never an input
    with pytest.raises(TransplantError, match="is the input"):
        train_head(llama, [corpus, tmp_path / "notes.run"], tmp_path / "notes", hypernet=small_hypernet, progress=False, overwrite=True, **options)
    with pytest.raises(TransplantError, match="is the input"):
        hypernet.train(llama, [corpus, tmp_path / "notes.run"], tmp_path / "notes", progress=False, overwrite=True, max_steps=1)
    assert (tmp_path / "notes.run").read_text() == "a file of the user's"
    with pytest.raises(TransplantError, match="holds an earlier run"):
        train_head(llama, [corpus], tmp_path / "split", hypernet=small_hypernet, progress=False, **options)
    with pytest.raises(TransplantError, match="other inputs than the run started with \\(settings\\)"):
        train_head(llama, [corpus], tmp_path / "split", hypernet=small_hypernet, progress=False, resume=True, **{**options, "steps": 8})
    import hypernet.head_training as head_training

    def no_model_pass(*args, **kwargs):
        raise AssertionError("a resumed run computed its examples again")

    monkeypatch.setattr(head_training, "_build_tasks", no_model_pass)
    split = train_head(llama, [corpus], tmp_path / "split", hypernet=small_hypernet, progress=False, resume=True, **options)
    assert_same_weights(whole, split)
    steps = [json.loads(line)["step"] for line in (split / "head_log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # the step past the checkpoint is logged once


def test_a_resume_before_the_first_checkpoint_reuses_the_kept_examples(tmp_path, llama, corpus, small_hypernet, target_tokenizer, monkeypatch):
    import hypernet.head_training as head_training

    target_tokenizer.save_pretrained(tmp_path / "target")
    options = {**QUICK, "steps": 4, "checkpoint_every": 100, "feature_tokens": 1500, "tokenizers": [tmp_path / "target"]}
    whole = train_head(llama, [corpus], tmp_path / "whole", hypernet=small_hypernet, progress=False, **options)

    with pytest.raises(TransplantError, match="interrupted at step 2"):
        train_head(llama, [corpus], tmp_path / "split", hypernet=small_hypernet, progress=False, callback=interrupt_at(2), **options)
    assert not (tmp_path / "split.run" / "checkpoints").exists()
    # another real tokenizer than the run started with is refused (its path is what is compared)
    other = tmp_path / "other-tokenizer"
    load_tokenizer(llama).save_pretrained(other)
    with pytest.raises(TransplantError, match="other inputs than the run started with \\(tokenizers\\)"):
        train_head(llama, [corpus], tmp_path / "split", hypernet=small_hypernet, progress=False, resume=True, **{**options, "tokenizers": [other]})
    computed = head_training._build_tasks
    monkeypatch.setattr(head_training, "_build_tasks", lambda *a, **k: pytest.fail("a resumed run computed its examples again"))
    split = train_head(llama, [corpus], tmp_path / "split", hypernet=small_hypernet, progress=False, resume=True, **options)
    assert_same_weights(whole, split)
    assert [json.loads(line)["step"] for line in (split / "head_log.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    # damaged kept examples: one clear error, nothing written at the output
    monkeypatch.setattr(head_training, "_build_tasks", computed)
    with pytest.raises(TransplantError, match="interrupted at step 2; run again with --resume to continue from step 0 with the examples kept"):
        train_head(llama, [corpus], tmp_path / "damaged", hypernet=small_hypernet, progress=False, callback=interrupt_at(2), **options)
    (tmp_path / "damaged.run" / "tasks" / "examples.pt").write_bytes(b"not a torch file")
    with pytest.raises(TransplantError, match="cannot read the run's examples"):
        train_head(llama, [corpus], tmp_path / "damaged", hypernet=small_hypernet, progress=False, resume=True, **options)
    assert not (tmp_path / "damaged").exists()
    # a real tokenizer with no new tokens (the model's own) is left out rather than breaking a step
    own = train_head(llama, [corpus], tmp_path / "own", hypernet=small_hypernet, progress=False, **{**options, "tokenizers": [other], "tokenizers_per_corpus": 1})
    assert json.loads((own / "head_training.json").read_text())["tokenizers"] == [str(other)]


def test_cli_and_one_line_errors(tmp_path, llama, corpus, small_hypernet, source_tokenizer, target_tokenizer, monkeypatch):
    runner = CliRunner()
    args = ["hypernet", "train-head", str(llama), "--corpus", str(corpus), "--hypernet", str(small_hypernet), "--steps", "3",
            "--feature-tokens", "800", "--sampled-vocab-size", "400", "--quiet"]
    result = runner.invoke(main, [*args, "-o", str(tmp_path / "hn")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "hn" / "hypernet.json").read_text())["kinds"] == ["input", "output"]
    # the other kind of features, and a real tokenizer beside the sampled ones
    target_tokenizer.save_pretrained(tmp_path / "target")
    result = runner.invoke(main, [*args, "--features", "source", "--tokenizer", str(tmp_path / "target"), "-o", str(tmp_path / "hn-source")])
    assert result.exit_code == 0, result.output
    training = json.loads((tmp_path / "hn-source" / "head_training.json").read_text())
    assert training["features"] == "source" and training["tokenizers"] == [str(tmp_path / "target")]
    monkeypatch.setenv("TRANSPLANT_HYPERNETS", str(tmp_path))
    listed = runner.invoke(main, ["hypernet", "list"]).output
    assert any(line.startswith("hn ") and "input+head (untied)" in line for line in listed.splitlines()), listed
    # an untied model has no tied head to predict
    qwen = tiny.tiny_model(tmp_path / "qwen", source_tokenizer, "qwen2")
    result = runner.invoke(main, ["hypernet", "train-head", str(qwen), "--corpus", str(corpus), "-o", str(tmp_path / "q"), "--quiet"])
    assert result.exit_code != 0 and result.output.startswith("Error:") and "untied" in result.output and len(result.output.strip().splitlines()) == 1
    # the output inside an input is refused
    result = runner.invoke(main, [*args, "-o", str(small_hypernet / "inside")])
    assert result.exit_code != 0 and result.output.startswith("Error:")
    with pytest.raises(TransplantError, match="unknown head training option"):
        train_head(llama, [corpus], tmp_path / "x", hypernet=small_hypernet, progress=False, stepz=3)
    assert load_tokenizer(llama) is not None


def test_a_head_part_learns_from_the_examples_kept_by_earlier_runs(tmp_path, llama, corpus, small_hypernet, monkeypatch):
    import hypernet.head_training as head_training

    options = {**QUICK, "steps": 4, "feature_tokens": 1500}
    spelled = train_head(llama, [corpus], tmp_path / "spelled", hypernet=small_hypernet, progress=False, **options)
    source = train_head(llama, [corpus], tmp_path / "source", hypernet=small_hypernet, progress=False, **{**options, "features": "source"})
    monkeypatch.setattr(head_training, "_build_tasks", lambda *a, **k: pytest.fail("borrowed examples were computed again"))
    # the borrowed examples are the very ones that run trained on: the same settings give the same head part
    again = train_head(llama, [], tmp_path / "again", hypernet=small_hypernet, examples_from=[tmp_path / "spelled.run"], progress=False, **options)
    assert_same_weights(spelled, again)
    # both kinds in one head part; the second run's corpus is numbered after the first run's
    seen = set()
    mixed = train_head(llama, [], tmp_path / "mixed", hypernet=small_hypernet, examples_from=[tmp_path / "spelled.run", tmp_path / "source.run"],
                       progress=False, callback=lambda step, record: seen.update(record["corpora"]), **{**options, "steps": 8})
    assert seen == {0, 1}
    assert json.loads((mixed / "head_training.json").read_text())["examples_from"] == [str(tmp_path / "spelled.run"), str(tmp_path / "source.run")]
    assert not torch.equal(load_file(str(mixed / "hypernet.safetensors"))["heads.output.weight"], load_file(str(source / "hypernet.safetensors"))["heads.output.weight"])
    # the examples of another model, an unfinished run, or nothing at all: one clear error each
    foreign = tmp_path / "foreign.run"
    (foreign / "tasks").mkdir(parents=True)
    (foreign / "tasks" / "examples.pt").write_bytes((tmp_path / "source.run" / "tasks" / "examples.pt").read_bytes())
    (foreign / "inputs.json").write_text(json.dumps({**json.loads((tmp_path / "source.run" / "inputs.json").read_text()), "model": "another"}))
    with pytest.raises(TransplantError, match="come from another model"):
        train_head(llama, [], tmp_path / "x", hypernet=small_hypernet, examples_from=[foreign], progress=False, **options)
    (foreign / "inputs.json").write_text("{not json")
    with pytest.raises(TransplantError, match="is damaged"):
        train_head(llama, [], tmp_path / "x", hypernet=small_hypernet, examples_from=[foreign], progress=False, **options)
    with pytest.raises(TransplantError, match="holds no finished examples"):
        train_head(llama, [], tmp_path / "x", hypernet=small_hypernet, examples_from=[tmp_path / "spelled"], progress=False, **options)
    with pytest.raises(TransplantError, match="nothing to learn from"):
        train_head(llama, [], tmp_path / "x", hypernet=small_hypernet, progress=False, **options)
    assert not (tmp_path / "x").exists()
    # the output may not lie inside a run whose examples it reads
    with pytest.raises(TransplantError):
        train_head(llama, [], tmp_path / "source.run" / "inside", hypernet=small_hypernet, examples_from=[tmp_path / "source.run"], progress=False, **options)
    result = CliRunner().invoke(main, ["hypernet", "train-head", str(llama), "--examples-from", str(tmp_path / "source.run"), "--hypernet", str(small_hypernet),
                                       "--steps", "2", "--sampled-vocab-size", "400", "--quiet", "-o", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli" / "hypernet.safetensors").is_file()
    # a resume refuses examples that were redone with other inputs meanwhile
    borrowing = {"hypernet": small_hypernet, "examples_from": [tmp_path / "spelled.run", tmp_path / "source.run"], "progress": False, **options}
    with pytest.raises(TransplantError, match="interrupted at step 2"):
        train_head(llama, [], tmp_path / "stopped", callback=interrupt_at(2), **borrowing)
    redone = json.loads((tmp_path / "spelled.run" / "inputs.json").read_text())
    (tmp_path / "spelled.run" / "inputs.json").write_text(json.dumps({**redone, "settings": {**redone["settings"], "seed": 7}}))
    with pytest.raises(TransplantError, match="other inputs than the run started with \\(examples_from\\)"):
        train_head(llama, [], tmp_path / "stopped", resume=True, **borrowing)
