"""Tokenizers of each family built from a list of scored pieces (no training run).

A piece is ``(text, word_start, score)``: the characters a token stands for, whether it begins a
word, and a log-probability-like score (higher = more frequent). Each family writes the same
pieces in its own notation and pipeline:

- ``byte-level-bpe``: GPT-2 alphabet, ``Ġ`` for a word's space, BPE merges derived from the pieces;
- ``byte-level-unigram``: the same pipeline around a UnigramLM model;
- ``sentencepiece-unigram``: ``▁`` for a word's space, UnigramLM, ``<unk>`` for unseen characters
  (T5, XLM-R);
- ``sentencepiece-bpe``: ``▁``, BPE with ``<0xNN>`` byte fallback (Llama, Mistral, Gemma);
- ``wordpiece``: BERT pre-tokenization (whitespace and punctuation), ``##`` continuations.

Byte-level families keep the ``like`` tokenizer's own pipeline (normalizer, pre-tokenizer,
post-processor) when it is byte-level too, so a byte-level base model sees its usual input; the
others use the standard pipeline of their family. Special tokens and their roles come from ``like``.
"""

from __future__ import annotations

import json

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast
from transformers.convert_slow_tokenizer import bytes_to_unicode

from ..errors import TransplantError
from .canonical import METASPACE
from .vocabulary import Vocabulary

FAMILIES = ("byte-level-bpe", "byte-level-unigram", "sentencepiece-unigram", "sentencepiece-bpe", "wordpiece")
_BYTE_TABLE = bytes_to_unicode()
UNKNOWN = {"sentencepiece-unigram": "<unk>", "wordpiece": "[UNK]"}  # families that need an unknown token


def tokenizer_from_pieces(pieces: list[tuple[str, bool, float]], family: str, like, alphabet: list[str], vocab_size: int | None = None) -> PreTrainedTokenizerFast:
    """A fast tokenizer of ``family`` holding ``like``'s special tokens, ``pieces`` (best first is
    not required) and single characters ``alphabet`` (for non-byte families: what any text may
    fall back to); BPE families hold at most ``vocab_size`` tokens (the prefixes some pieces need count)."""
    if family not in FAMILIES:
        raise TransplantError(f"tokenizer family must be one of {', '.join(FAMILIES)}, not '{family}'")
    source = Vocabulary.from_tokenizer(like)
    specials = [source.special[i] for i in sorted(source.special)]
    unknown = UNKNOWN.get(family)
    if unknown is not None and not any(role == "unk" for role in source.roles):
        specials.append(unknown)
    elif unknown is not None:
        unknown = source.special[source.roles["unk"]]
    if family.startswith("byte-level"):
        written = [(_byte_level(text, word_start), score) for text, word_start, score in pieces]
        singles = sorted(pre_tokenizers.ByteLevel.alphabet())
    elif family.startswith("sentencepiece"):
        written = [((METASPACE if word_start else "") + text, score) for text, word_start, score in pieces]
        singles = sorted(set(alphabet) | {METASPACE})
    else:
        written = [((text if word_start else "##" + text), score) for text, word_start, score in pieces]
        singles = sorted(set(alphabet) | {"##" + c for c in alphabet})
    written = _unique([(t, s) for t, s in written if t not in specials and len(t) > 0])

    if family.endswith("unigram"):
        model, vocab = _unigram(specials, written, singles, unknown)
    elif family.endswith("bpe"):
        model, vocab = _bpe(specials, written, singles, byte_fallback=family == "sentencepiece-bpe", limit=vocab_size)
    else:
        vocab = {t: i for i, t in enumerate(_unique_tokens(specials + singles + [t for t, _ in written]))}
        model = models.WordPiece(vocab, unk_token=unknown, continuing_subword_prefix="##", max_input_chars_per_word=100)

    spec = _pipeline(family, like, source)
    added = [
        {"id": vocab[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
        for s in specials
    ]
    backend = Tokenizer.from_str(json.dumps({**spec, "model": json.loads(Tokenizer(model).to_str())["model"], "added_tokens": added}))
    backend = renumber_post_processor(backend)
    roles = {f"{role}_token": source.special[index] for role, index in source.roles.items()}
    if unknown is not None:
        roles["unk_token"] = unknown
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **roles)
    if getattr(like, "chat_template", None):
        tokenizer.chat_template = like.chat_template
    return tokenizer


def _byte_level(text: str, word_start: bool) -> str:
    table = _BYTE_TABLE
    return "".join(table[b] for b in ((" " if word_start else "") + text).encode("utf-8"))


def _unique(entries: list[tuple[str, float]]) -> list[tuple[str, float]]:
    seen, out = set(), []
    for token, score in entries:
        if token not in seen:
            seen.add(token)
            out.append((token, score))
    return out


def _unique_tokens(tokens: list[str]) -> list[str]:
    return list(dict.fromkeys(tokens))


def _unigram(specials: list[str], written: list[tuple[str, float]], singles: list[str], unknown: str | None):
    scores = [s for _, s in written]
    floor = (min(scores) if scores else 0.0) - 1.0  # single characters: the last resort
    entries = [(s, 0.0) for s in specials] + written + [(c, floor) for c in singles]
    entries = _unique(entries)
    vocab = {t: i for i, (t, _) in enumerate(entries)}
    return models.Unigram(entries, unk_id=vocab.get(unknown) if unknown is not None else None, byte_fallback=False), vocab


def _bpe(specials: list[str], written: list[tuple[str, float]], singles: list[str], byte_fallback: bool, limit: int | None = None):
    """BPE merges for the pieces, best score first, at most ``limit`` tokens in all. A piece is
    spelled by two known tokens where it can be; where it cannot (the bytes of a CJK character
    in a byte-level vocabulary, or halves the sampling left out), its prefixes are added first,
    one symbol at a time. A merge ranks by its piece's score (frequent pieces merge first, the
    order BPE training would give); a prefix added for a piece merges just before it."""
    fallback = [f"<0x{b:02X}>" for b in range(256)] if byte_fallback else []
    vocab_tokens = _unique_tokens(specials + fallback + singles)
    known = set(vocab_tokens)
    merges = []

    def reachable(token: str, score: float) -> bool:
        if token in known:
            return True
        split = next(((token[:i], token[i:]) for i in _middle_first(len(token)) if token[:i] in known and token[i:] in known), None)
        if split is None:
            if len(token) < 2 or token[-1] not in known or not reachable(token[:-1], score):
                return False
            split = (token[:-1], token[-1])
        if limit is not None and len(vocab_tokens) >= limit:
            return False
        known.add(token)
        vocab_tokens.append(token)
        merges.append((-score, len(token), split))
        return True

    for token, score in sorted(written, key=lambda entry: -entry[1]):
        if limit is not None and len(vocab_tokens) >= limit:
            break
        reachable(token, score)
    merges.sort(key=lambda entry: entry[:2])
    vocab = {t: i for i, t in enumerate(vocab_tokens)}
    model = models.BPE(vocab, [pair for *_, pair in merges], byte_fallback=byte_fallback, unk_token=None, ignore_merges=False)
    return model, vocab


def _middle_first(length: int) -> list[int]:
    """Split points of a piece, the balanced ones first (as BPE builds long tokens)."""
    return sorted(range(1, length), key=lambda i: abs(2 * i - length))


def _pipeline(family: str, like, source: Vocabulary) -> dict:
    """Normalizer, pre-tokenizer, post-processor and decoder of the family (``like``'s own for
    byte-level families when it is byte-level)."""
    if family.startswith("byte-level") and source.style.byte_level:
        spec = json.loads(like.backend_tokenizer.to_str())
        return {key: spec.get(key) for key in ("version", "truncation", "padding", "normalizer", "pre_tokenizer", "post_processor", "decoder")}
    if family.startswith("byte-level"):
        pre, decoder, normalizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), decoders.ByteLevel(), None
    elif family.startswith("sentencepiece"):
        pre = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="first")
        # as Llama's: ▁ back to spaces, <0xNN> runs back to text, the first word's space dropped
        parts = [decoders.Replace(METASPACE, " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
        decoder, normalizer = decoders.Sequence(parts), None
    else:
        pre, decoder, normalizer = pre_tokenizers.BertPreTokenizer(), decoders.WordPiece(prefix="##"), normalizers.NFC()
    shell = Tokenizer(models.WordLevel({"x": 0}, unk_token="x"))
    shell.pre_tokenizer = pre
    shell.decoder = decoder
    if normalizer is not None:
        shell.normalizer = normalizer
    spec = json.loads(shell.to_str())
    return {key: spec.get(key) for key in ("version", "truncation", "padding", "normalizer", "pre_tokenizer", "post_processor", "decoder")}


def renumber_post_processor(tokenizer: Tokenizer) -> Tokenizer:
    """Template post-processors name special tokens by id; point them at the retrained ids."""
    spec = json.loads(tokenizer.to_str())
    processor = spec.get("post_processor") or {}
    nodes = processor.get("processors", [processor]) if processor.get("type") == "Sequence" else [processor]
    for node in nodes:
        for name, entry in (node.get("special_tokens") or {}).items():
            entry["ids"] = [tokenizer.token_to_id(token) for token in entry.get("tokens", [name])]
        for key in ("sep", "cls"):  # BertProcessing / RobertaProcessing store [token, id]
            if isinstance(node.get(key), list):
                node[key][1] = tokenizer.token_to_id(node[key][0])
    return Tokenizer.from_str(json.dumps(spec))
