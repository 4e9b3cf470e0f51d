"""A tokenizer's vocabulary seen through canonical bytes, with its special tokens and their roles."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from transformers import PreTrainedTokenizerBase

from ..errors import TransplantError
from .canonical import TokenizerStyle, added_token_bytes, detect_style, surface_bytes, token_bytes

# Roles in priority order: when one token holds several (SmolLM2's <|im_end|> is eos and pad),
# the first listed decides which source token it is matched to.
ROLES = ("bos", "eos", "unk", "mask", "sep", "cls", "pad")


def _template_text(template) -> str:
    """A chat template is one Jinja string or a dict of named ones."""
    if isinstance(template, dict):
        return "\n".join(str(t) for t in template.values())
    return template or ""


@dataclass
class Vocabulary:
    """Every id of a tokenizer: canonical ``(bytes, word_start)`` or, for special tokens, a role."""

    tokenizer: PreTrainedTokenizerBase
    style: TokenizerStyle
    canonical: list[tuple[bytes, bool] | None]  # None for special tokens and unused ids
    strings: list[str | None]  # the token as the tokenizer writes it
    special: dict[int, str]  # id -> content of special tokens
    roles: dict[str, int]  # role -> id, e.g. {"bos": 1, "eos": 2}
    template_markers: set[int] = field(default_factory=set)  # special ids the chat template uses
    # special ids the model's config names outside the roles (Gemma 3's image_token_index): like
    # template markers, the new tokenizer needs them with the same text
    config_markers: set[int] = field(default_factory=set)

    @classmethod
    def from_tokenizer(cls, tokenizer: PreTrainedTokenizerBase) -> "Vocabulary":
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise TypeError("transplant needs a fast (tokenizers-backed) tokenizer")
        style = detect_style(backend)
        vocab = backend.get_vocab(with_added_tokens=True)
        _check_ids(vocab)
        size = max(vocab.values()) + 1
        strings: list[str | None] = [None] * size
        for token, index in vocab.items():
            strings[index] = token
        added = backend.get_added_tokens_decoder()
        special = {index: tok.content for index, tok in added.items() if tok.special}
        canonical: list[tuple[bytes, bool] | None] = [None] * size
        for index, token in enumerate(strings):
            if token is None or index in special:
                continue
            if index in added:
                canonical[index] = added_token_bytes(added[index].content)
            else:
                canonical[index] = token_bytes(token, style)
        roles = {}
        for role in ROLES:
            content = getattr(tokenizer, f"{role}_token", None)
            if content is not None and str(content) in vocab:
                roles[role] = vocab[str(content)]
                special.setdefault(vocab[str(content)], str(content))
                canonical[vocab[str(content)]] = None
        template_text = _template_text(getattr(tokenizer, "chat_template", None))
        markers = {index for index, content in special.items() if content and content in template_text}
        return cls(tokenizer, style, canonical, strings, special, roles, markers)

    def __len__(self) -> int:
        return len(self.canonical)

    def require_ordinary_tokens(self, what: str) -> None:
        """A vocabulary of special tokens alone turns every text into nothing: refuse it."""
        if not any(key is not None for key in self.canonical):
            raise TransplantError(f"{what} has no ordinary tokens (only {len(self.special)} special ones); it cannot encode any text")

    def role_of(self, index: int) -> str | None:
        for role in ROLES:
            if self.roles.get(role) == index:
                return role
        return None

    @cached_property
    def index(self) -> dict[tuple[bytes, bool], int]:
        """Canonical form -> id. Where two ids share one (``<0x41>`` and ``A``), the regular token wins."""
        found: dict[tuple[bytes, bool], int] = {}
        for index, key in enumerate(self.canonical):
            if key is None:
                continue
            current = found.get(key)
            if current is None or (self.is_byte_token(current) and not self.is_byte_token(index)):
                found[key] = index
        return found

    @cached_property
    def byte_token_index(self) -> dict[tuple[bytes, bool], int]:
        """Canonical form -> id of the byte-fallback tokens (``<0x41>``), which ``index`` gives
        up to the regular token of the same bytes."""
        return {self.canonical[i]: i for i in range(len(self)) if self.canonical[i] is not None and self.is_byte_token(i)}

    @cached_property
    def surface_index(self) -> dict[bytes, int]:
        """Surface bytes -> id, for explicit-space families where the space is part of the token.

        ``▁`` (b"", word start) and ``<0x20>`` (b" ") share the surface b" ": the regular token wins.
        """
        found: dict[bytes, int] = {}
        for key, index in self.index.items():
            surface = surface_bytes(key, self.style)
            current = found.get(surface)
            if current is None or (self.is_byte_token(current) and not self.is_byte_token(index)):
                found[surface] = index
        return found

    def surface(self, index: int) -> bytes:
        key = self.canonical[index]
        return b"" if key is None else surface_bytes(key, self.style)

    def is_byte_token(self, index: int) -> bool:
        token = self.strings[index] or ""
        return self.style.byte_fallback and len(token) == 6 and token.startswith("<0x")


def _check_ids(vocab: dict[str, int]) -> None:
    """Ids must be 0..n-1, each used once: a gap becomes embedding rows no token owns (one stray
    id at 100000 makes a 100,001-row model), and a shared id makes two tokens one row."""
    if not vocab:
        raise TransplantError("the tokenizer has an empty vocabulary")
    ids = sorted(vocab.values())
    if ids[0] < 0:
        raise TransplantError(f"the tokenizer has a negative token id ({ids[0]})")
    for previous, current in zip(ids, ids[1:]):
        if current == previous:
            tokens = sorted(token for token, index in vocab.items() if index == current)
            raise TransplantError(f"the tokenizer gives id {current} to several tokens ({', '.join(map(repr, tokens[:3]))})")
    if ids[-1] != len(ids) - 1:
        missing = next(i for i, index in enumerate(ids) if i != index)
        raise TransplantError(
            f"the tokenizer's ids are not contiguous: {len(ids)} distinct tokens, largest id {ids[-1]}, and id {missing} "
            "names no token (a duplicated or missing entry in its vocabulary)"
        )


_WHITESPACE = frozenset(b" \t\n\r")


def boundary_token_mask(vocab: Vocabulary):
    """Bool tensor over ids: tokens that begin at a word boundary (word start, leading whitespace)
    or are special. Distillation uses it for the probability that the next token starts a word."""
    import torch

    mask = torch.zeros(len(vocab), dtype=torch.bool)
    for index, key in enumerate(vocab.canonical):
        if key is None:
            mask[index] = vocab.strings[index] is not None  # special tokens; unused ids never
        else:
            data, word_start = key
            mask[index] = word_start or (len(data) > 0 and data[0] in _WHITESPACE)
    return mask
