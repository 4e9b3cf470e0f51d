"""Canonical token bytes: the only place that knows how tokenizer families spell their tokens.

Every non-special token becomes ``(bytes, word_start)``: the UTF-8 bytes it stands for, without
the one space that marks the start of a word, and whether it starts a word. Two tokens from
different families are the same token exactly when these agree, so ``Ġüber`` (byte-level BPE),
``▁über`` (SentencePiece) and ``über`` (WordPiece, not a ``##`` continuation) all become
``(b"\\xc3\\xbcber", True)``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

from tokenizers import Tokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

METASPACE = "\u2581"  # ▁, SentencePiece's word-start marker
_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@lru_cache(maxsize=1)
def _byte_level_decoder() -> dict[str, int]:
    return {char: byte for byte, char in bytes_to_unicode().items()}


@dataclass(frozen=True)
class TokenizerStyle:
    """How a tokenizer family writes tokens, read off its ``tokenizer.json``."""

    model_type: str  # BPE, Unigram, WordPiece, WordLevel
    byte_level: bool  # GPT-2 alphabet: every byte is one printable character (Ġ is a space)
    metaspace: bool  # spaces are written ▁ (SentencePiece style)
    byte_fallback: bool  # <0xNN> tokens stand for single bytes
    continuing_prefix: str | None  # WordPiece "##": tokens without it start a word

    @property
    def explicit_space(self) -> bool:
        """Whether a word-start token carries its space in the text (Ġ/▁) rather than implying it."""
        return self.byte_level or self.metaspace

    @property
    def family(self) -> str:
        if self.byte_level:
            return "byte-level " + self.model_type
        if self.metaspace:
            return "sentencepiece " + self.model_type
        return self.model_type


def _components(node: dict | None) -> list[dict]:
    """Flatten a normalizer/pre-tokenizer/decoder node, including ``Sequence`` nodes."""
    if not node:
        return []
    if node.get("type") == "Sequence":
        children = node.get("pretokenizers") or node.get("normalizers") or node.get("decoders") or []
        return [leaf for child in children for leaf in _components(child)]
    return [node]


def detect_style(tokenizer: Tokenizer) -> TokenizerStyle:
    spec = json.loads(tokenizer.to_str())
    model = spec["model"]
    parts = (
        _components(spec.get("normalizer"))
        + _components(spec.get("pre_tokenizer"))
        + _components(spec.get("decoder"))
    )
    types = {part.get("type") for part in parts}
    writes_metaspace = "Metaspace" in types or any(
        part.get("type") == "Replace" and part.get("content") == METASPACE for part in parts
    )
    model_type = model.get("type") or ("WordPiece" if "continuing_subword_prefix" in model else "BPE")
    prefix = model.get("continuing_subword_prefix") if model_type == "WordPiece" else None
    return TokenizerStyle(
        model_type=model_type,
        byte_level="ByteLevel" in types,
        metaspace=writes_metaspace,
        byte_fallback=bool(model.get("byte_fallback")) or "ByteFallback" in types,
        continuing_prefix=prefix or ("##" if model_type == "WordPiece" else None),
    )


def token_bytes(token: str, style: TokenizerStyle) -> tuple[bytes, bool]:
    """The canonical ``(bytes, word_start)`` of a vocabulary entry written in ``style``."""
    if style.byte_fallback:
        match = _BYTE_FALLBACK.match(token)
        if match:
            return bytes([int(match.group(1), 16)]), False
    if style.byte_level:
        table = _byte_level_decoder()
        if all(char in table for char in token):
            raw = bytes(table[char] for char in token)
        else:  # a token added as plain text next to the byte alphabet
            raw = token.encode("utf-8")
        return _split_space(raw)
    if style.metaspace:
        return _split_space(token.replace(METASPACE, " ").encode("utf-8"))
    if style.continuing_prefix:
        if token.startswith(style.continuing_prefix) and len(token) > len(style.continuing_prefix):
            return token[len(style.continuing_prefix) :].encode("utf-8"), False
        return token.encode("utf-8"), True
    return _split_space(token.encode("utf-8"))


def added_token_bytes(content: str) -> tuple[bytes, bool]:
    """Canonical form of a non-special added token, which is stored as the plain text it matches."""
    return _split_space(content.encode("utf-8"))


def _split_space(raw: bytes) -> tuple[bytes, bool]:
    if raw.startswith(b" "):
        return raw[1:], True
    return raw, False


def surface_bytes(canonical: tuple[bytes, bool], style: TokenizerStyle) -> bytes:
    """The bytes a token puts into running text: its space is explicit in Ġ/▁ families."""
    data, word_start = canonical
    return (b" " + data) if (word_start and style.explicit_space) else data
