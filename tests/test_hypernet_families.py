"""Training the hypernetwork across tokenizer families and languages: sampled tokenizers of each
family the vocabulary layer knows, several corpora mixed per step, and base models that are not
byte-level (SentencePiece with byte fallback, WordPiece) or have an untied head."""

from __future__ import annotations

import json

import pytest
import tiny
import torch
from click.testing import CliRunner

import hypernet
from hypernet.corpora import Corpora
from hypernet.sampler import FixedTokenizers, MixedTokenizers, UnigramSampler
from transplant.cli import main
from transplant.core import convert
from transplant.errors import TransplantError
from transplant.loading import load_model, load_tokenizer
from transplant.vocab import Vocabulary, build_mapping
from transplant.vocab.families import FAMILIES, tokenizer_from_pieces

TINY = dict(width=32, layers=1, heads=2, batch_size=4, block_size=32, sampled_vocab_size=400, tokenizer_text_bytes=6000,
            reconstruction_tokens=256, vocab_subsample=64, eval_bytes=1500, warmup_steps=2)
SENTENCE = "Über 100 Gäste kamen am Montag, sagte er."
STYLE = {  # what the vocabulary layer reads back from each family's tokenizer
    "byte-level-bpe": "byte-level BPE",
    "byte-level-unigram": "byte-level Unigram",
    "sentencepiece-unigram": "sentencepiece Unigram",
    "sentencepiece-bpe": "sentencepiece BPE",
    "wordpiece": "WordPiece",
}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    directory = tmp_path_factory.mktemp("corpora")
    return [tiny.text_file(directory / "a.txt", 0, 900), tiny.text_file(directory / "b.txt", 900, 300)]


@pytest.mark.parametrize("family", FAMILIES)
def test_sampled_tokenizer_of_each_family(source_tokenizer, family):
    sampler = UnigramSampler(source_tokenizer, vocab_size=800, families=(family,))
    text = "\n".join(tiny.lines(0, 300))
    first = sampler.sample(text, torch.Generator().manual_seed(0))
    assert first.get_vocab() == sampler.sample(text, torch.Generator().manual_seed(0)).get_vocab()  # a function of (text, generator)
    assert first.get_vocab() != sampler.sample(text, torch.Generator().manual_seed(1)).get_vocab()
    vocabulary = Vocabulary.from_tokenizer(first)
    assert vocabulary.style.family == STYLE[family]
    assert 600 < len(first) <= 800 + 1  # + an unknown token where the family needs one
    assert first.eos_token == source_tokenizer.eos_token and first.eos_token_id is not None
    sentence = tiny.lines(0, 300)[7]  # characters the sampled text has (others: see the next test)
    ids = first(sentence, add_special_tokens=False)["input_ids"]
    assert len(ids) < len(sentence.encode("utf-8")) / 2  # real pieces, not characters
    if family == "wordpiece":  # BERT pre-tokenization forgets which words a space separated
        assert first.decode(ids).replace(" ", "") == sentence.replace(" ", "")
    else:
        assert first.decode(ids) == sentence
    # the same pieces in every family: the mapping to the base model finds shared tokens
    mapping = build_mapping(Vocabulary.from_tokenizer(source_tokenizer), vocabulary, progress=False)
    assert sum(kind == "exact" for kind in mapping.match_kind) > 100
    assert not mapping.missing_special


@pytest.mark.parametrize("family", ["byte-level-bpe", "sentencepiece-bpe"])
def test_bpe_families_reach_cjk_pieces(source_tokenizer, family):
    """A CJK character is three bytes that no sampled piece holds in part: BPE vocabularies once
    kept almost none of such pieces (812 tokens asked 16384 on Japanese)."""
    generator = torch.Generator().manual_seed(0)
    characters = [chr(0x4E00 + i) for i in range(120)]
    words = ["".join(characters[int(i)] for i in torch.randint(120, (int(n),), generator=generator)) for n in torch.randint(2, 5, (300,), generator=generator)]
    picks = torch.multinomial(1.0 / torch.arange(1, 301, dtype=torch.float), 3000, replacement=True, generator=generator)  # Zipf-like
    text = "\n".join("".join(words[int(i)] for i in picks[start : start + 12]) for start in range(0, 3000, 12))
    tokenizer = UnigramSampler(source_tokenizer, vocab_size=800, families=(family,)).sample(text, torch.Generator().manual_seed(0))
    assert 700 < len(tokenizer) <= 800
    line = text.splitlines()[3]
    ids = tokenizer(line, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == line
    assert len(ids) < len(line.encode("utf-8")) / 2  # whole characters and longer pieces, not bytes


def test_byte_fallback_and_unknown_characters(source_tokenizer):
    """SentencePiece BPE falls back to <0xNN> bytes for a character it never saw; Unigram and
    WordPiece map it to the base's unknown token."""
    pieces = [("der", True, -1.0), ("Hund", True, -2.0), ("en", False, -3.0)]
    alphabet = sorted(set("derHundn"))
    bpe = tokenizer_from_pieces(pieces, "sentencepiece-bpe", source_tokenizer, alphabet)
    assert bpe.decode(bpe("der Hund 😀", add_special_tokens=False)["input_ids"]) == "der Hund 😀"
    assert "<0xF0>" in bpe.convert_ids_to_tokens(bpe("😀", add_special_tokens=False)["input_ids"])
    for family in ("sentencepiece-unigram", "wordpiece"):
        tokenizer = tokenizer_from_pieces(pieces, family, source_tokenizer, alphabet)
        unknown = source_tokenizer.unk_token
        assert tokenizer.unk_token == unknown and unknown is not None
        assert unknown in tokenizer.convert_ids_to_tokens(tokenizer("der 😀", add_special_tokens=False)["input_ids"])
    with pytest.raises(TransplantError, match="family must be one of"):
        tokenizer_from_pieces(pieces, "morse", source_tokenizer, alphabet)
    with pytest.raises(TransplantError, match="unknown tokenizer family"):
        UnigramSampler(source_tokenizer, families=("morse",))


def test_corpora_are_mixed_by_tempered_size(corpora):
    texts = Corpora(corpora, alpha=0.3)
    sizes = torch.tensor([sum(len(line.encode()) + 1 for line in lines) for lines in texts.lines], dtype=torch.float64)
    expected = sizes**0.3 / (sizes**0.3).sum()
    torch.testing.assert_close(texts.probabilities(), expected)
    assert texts.probabilities()[0] < sizes[0] / sizes.sum()  # the larger corpus is drawn less than its size share
    generator = torch.Generator().manual_seed(0)
    drawn = torch.bincount(torch.tensor([texts.draw(generator) for _ in range(2000)]), minlength=2) / 2000
    torch.testing.assert_close(drawn, expected.float(), atol=0.04, rtol=0)
    uniform = Corpora(corpora, alpha=0.0).probabilities()
    torch.testing.assert_close(uniform, torch.tensor([0.5, 0.5], dtype=torch.float64))
    # the held-out tail leaves the first corpus's training lines
    held_out = texts.hold_out_tail(500)
    assert held_out.strip() and not set(held_out.strip().splitlines()) & set(texts.lines[0][-50:])
    with pytest.raises(TransplantError, match="between 0 and 1"):
        Corpora(corpora, alpha=1.5)
    # "row" mixing: each row its own corpus, the tokenizer text shared among them
    generator = torch.Generator().manual_seed(1)
    batches = [texts.draw_batch("row", 4, 300, 4000, generator) for _ in range(10)]
    assert any(len(set(chosen)) > 1 for chosen, _, _ in batches)
    for chosen, rows, tokenizer_text in batches:
        for corpus, row in zip(chosen, rows):
            assert row.splitlines()[0] in texts.lines[corpus]
        assert 4000 <= len(tokenizer_text.encode()) < 4000 + 4 * 1000
    chosen, _, _ = texts.draw_batch("step", 4, 300, 4000, generator)
    assert len(set(chosen)) == 1


def test_mixed_real_and_sampled_tokenizers(source_tokenizer):
    sampler = UnigramSampler(source_tokenizer, vocab_size=300, families=("wordpiece",))
    real = tiny.sentencepiece_unigram(600)
    mixed = MixedTokenizers(sampler, FixedTokenizers([real]), real_share=0.5)
    text = "\n".join(tiny.lines(0, 200))
    generator = torch.Generator().manual_seed(0)
    draws = [mixed.sample(text, generator) for _ in range(20)]
    assert 3 < sum(d is real for d in draws) < 17
    assert all(Vocabulary.from_tokenizer(d).style.family == "WordPiece" for d in draws if d is not real)
    with pytest.raises(TransplantError, match="between 0 and 1"):
        MixedTokenizers(sampler, FixedTokenizers([real]), real_share=2.0)


def test_cli_families_are_the_vocabulary_layers(tmp_path, llama, corpora):
    """Training over two corpora and every family from the CLI; its family list is FAMILIES."""
    from transplant.cli import hypernet_train

    choices = next(p for p in hypernet_train.params if p.name == "families").type.choices
    assert tuple(choices) == FAMILIES
    out = tmp_path / "hn"
    args = ["hypernet", "train", str(llama), "--corpus", str(corpora[0]), "--corpus", str(corpora[1]), "-o", str(out), "--max-steps", "12",
            "--identity-steps", "1", "--batch-size", "2", "--block-size", "16", "--sampled-vocab-size", "300", "--corpus-alpha", "0", "--corpus-mixing", "row", "--quiet"]
    for family in FAMILIES:
        args += ["--family", family]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    lm = [r for r in log if "lm_loss" in r]
    assert {c for r in lm for c in r["corpus"]} == {0, 1} and any(len(set(r["corpus"])) > 1 for r in lm)
    assert len({r["family"] for r in lm}) >= 3
    assert json.loads((out / "training.json").read_text())["families"] == list(FAMILIES)


@pytest.mark.parametrize(
    "base, head",
    [("sp_bpe", "tied"), ("sp_bpe", "untied"), ("wordpiece", "tied"), ("byte_bpe", "untied")],
)
def test_base_models_of_other_families_and_untied_heads(tmp_path, corpora, base, head):
    """A Mistral-style model with a SentencePiece byte-fallback tokenizer, a causal model with a
    WordPiece tokenizer, and untied heads: the hypernetwork trains on sampled tokenizers of every
    family, predicts both matrices when the head is untied, and moves the model onto a tokenizer
    of yet another family."""
    tokenizer = tiny.matrix_tokenizer(base)
    model_dir = tmp_path / "base"
    tiny.family_model(model_dir, "mistral", head, tokenizer)
    out = hypernet.train(model_dir, corpora, tmp_path / "hn", max_steps=10, identity_steps=2, learning_rate=3e-3, eval_every=100,
                         families=list(FAMILIES), progress=False, **TINY)
    config = json.loads((out / "hypernet.json").read_text())
    assert config["kinds"] == (["input", "output"] if head == "untied" else ["input"])
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in log if "loss" in r)

    target = tiny.sentencepiece_unigram(600) if base != "sp_bpe" else tiny.byte_level_bpe(700, start=1200)
    report = convert(model_dir, target, tmp_path / "model", "hypernet", hypernet=out, add_missing_special_tokens=True, progress=False)
    convert(model_dir, target, tmp_path / "fvt", "fvt", add_missing_special_tokens=True, progress=False)
    assert report.rules["input"].get("hypernet", 0) > 100
    model, fvt = load_model(tmp_path / "model"), load_model(tmp_path / "fvt")
    ids = load_tokenizer(tmp_path / "model")(SENTENCE, return_tensors="pt")["input_ids"]
    assert torch.isfinite(model(input_ids=ids).logits).all()
    kinds = [model.get_input_embeddings()] + ([model.get_output_embeddings()] if head == "untied" else [])
    fvt_kinds = [fvt.get_input_embeddings()] + ([fvt.get_output_embeddings()] if head == "untied" else [])
    for trained, plain in zip(kinds, fvt_kinds):  # trained, so it moved away from fvt
        assert not torch.allclose(trained.weight, plain.weight)
