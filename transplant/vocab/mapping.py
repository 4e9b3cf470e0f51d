"""How a target vocabulary relates to a source vocabulary: shared tokens and decompositions.

For every target token the mapping knows (a) the source token with the same canonical bytes, or
the source special token with the same role, and (b) a decomposition into source tokens whose
bytes concatenate exactly to the target token's bytes. Initialisers, the hypernetwork and
distillation all start from this.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from .canonical import surface_bytes
from .special import match_special_tokens, missing_special_tokens
from .vocabulary import Vocabulary

# How a decomposition was found: the source tokenizer's own segmentation of the token's text
# (what the model saw in training), else the fewest source tokens that spell the bytes exactly.
BY_TOKENIZER = "tokenizer"
BY_SEGMENTATION = "segmentation"


@dataclass
class VocabMapping:
    source: Vocabulary
    target: Vocabulary
    matches: list[int]  # target id -> source id with the same bytes or special role, else -1
    match_kind: list[str | None]  # "special" or "exact" where matched
    pieces: list[list[int]]  # target id -> source ids that spell it (empty if none)
    piece_origin: list[str | None]  # BY_TOKENIZER / BY_SEGMENTATION / None
    missing_special: list[int] = field(default_factory=list)  # required source specials absent

    def without_source_ids(self, unusable: set[int]) -> "VocabMapping":
        """The same mapping as if the ``unusable`` source tokens did not exist: no target token is
        copied from them or spelled with them (the initialiser then treats those as it treats any
        token without a match or decomposition)."""
        if not unusable:
            return self
        matches = [-1 if source_id in unusable else source_id for source_id in self.matches]
        kinds = [None if source_id in unusable else kind for source_id, kind in zip(self.matches, self.match_kind)]
        blocked = [any(p in unusable for p in pieces) for pieces in self.pieces]
        pieces = [[] if hit else list(p) for hit, p in zip(blocked, self.pieces)]
        origins = [None if hit else origin for hit, origin in zip(blocked, self.piece_origin)]
        return dataclasses.replace(self, matches=matches, match_kind=kinds, pieces=pieces, piece_origin=origins)

    def overlap(self) -> int:
        return sum(1 for kind in self.match_kind if kind == "exact")

    def naive_overlap(self) -> int:
        """Shared tokens by plain string equality, as tools without a byte layer count them."""
        source_strings = {s for s in self.source.strings if s is not None}
        return sum(
            1
            for index, s in enumerate(self.target.strings)
            if s is not None and index not in self.target.special and s in source_strings
        )

    def summary(self) -> dict:
        decomposed = [origin for origin in self.piece_origin if origin]
        return {
            "source_tokens": len(self.source),
            "target_tokens": len(self.target),
            "source_family": self.source.style.family,
            "target_family": self.target.style.family,
            "shared_tokens": self.overlap(),
            "shared_tokens_naive_string_match": self.naive_overlap(),
            "special_tokens_matched": sum(1 for kind in self.match_kind if kind == "special"),
            "decomposed_by_tokenizer": decomposed.count(BY_TOKENIZER),
            "decomposed_by_segmentation": decomposed.count(BY_SEGMENTATION),
            "without_decomposition": sum(
                1 for i, key in enumerate(self.target.canonical) if key is not None and not self.pieces[i]
            ),
        }


def build_mapping(source: Vocabulary, target: Vocabulary, progress: bool = True) -> VocabMapping:
    size = len(target)
    matches = [-1] * size
    kinds: list[str | None] = [None] * size
    for target_id, source_id in match_special_tokens(source, target).items():
        matches[target_id], kinds[target_id] = source_id, "special"
    for target_id, key in enumerate(target.canonical):
        if key is not None and key in source.index:
            # a byte token is copied from the source's own byte token where it has one (their
            # rows differ from the regular token's of the same bytes)
            same_kind = source.byte_token_index.get(key) if target.is_byte_token(target_id) else None
            matches[target_id], kinds[target_id] = same_kind if same_kind is not None else source.index[key], "exact"
    pieces, origins = decompose_all(source, target, progress=progress)
    return VocabMapping(
        source, target, matches, kinds, pieces, origins, missing_special_tokens(source, target)
    )


def decompose_all(
    source: Vocabulary, target: Vocabulary, progress: bool = True
) -> tuple[list[list[int]], list[str | None]]:
    """Decompose every non-special target token into source tokens (see module docstring)."""
    size = len(target)
    pieces: list[list[int]] = [[] for _ in range(size)]
    origins: list[str | None] = [None] * size
    wanted = [i for i, key in enumerate(target.canonical) if key is not None]

    # First choice: let the source tokenizer segment the token's text, and keep the result only
    # if it spells exactly the same bytes (normalizers, prefix spaces and split UTF-8 can differ).
    # A word-start token is tried twice: with its space, and without it for tokenizers that
    # prepend the ▁ themselves (Llama-2 style would otherwise read " über" as "▁▁über").
    for strip_space in (False, True):
        texts, text_ids = [], []
        for index in wanted:
            data, word_start = target.canonical[index]
            if origins[index] is not None or (strip_space and not word_start):
                continue
            surface = data if strip_space else surface_bytes((data, word_start), source.style)
            try:
                texts.append(surface.decode("utf-8"))
            except UnicodeDecodeError:
                continue
            text_ids.append(index)
        encodings = source.tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False) if texts else []
        for index, encoding in zip(text_ids, encodings):
            # a tokenizer.json may switch padding on (sentence-transformers exports): drop the pads
            ids = [i for i, keep in zip(encoding.ids, encoding.attention_mask) if keep]
            if _spells(source, ids, target.canonical[index]):
                pieces[index], origins[index] = ids, BY_TOKENIZER

    remaining = [i for i in wanted if origins[i] is None]
    for index in tqdm(remaining, desc="decomposing", disable=not progress or len(remaining) < 5000):
        found = segment(source, target.canonical[index])
        if found:
            pieces[index], origins[index] = found, BY_SEGMENTATION
    return pieces, origins


def _spells(source: Vocabulary, ids: list[int], key: tuple[bytes, bool]) -> bool:
    if not ids or any(source.canonical[i] is None for i in ids):
        return False
    if source.style.explicit_space:
        return b"".join(source.surface(i) for i in ids) == surface_bytes(key, source.style)
    first_word_start = source.canonical[ids[0]][1]
    rest_continue = all(not source.canonical[i][1] for i in ids[1:])
    data = b"".join(source.canonical[i][0] for i in ids)
    return data == key[0] and first_word_start == key[1] and rest_continue


def segment(source: Vocabulary, key: tuple[bytes, bool], exclude: int | None = None) -> list[int]:
    """Fewest source tokens whose bytes concatenate to ``key`` exactly; [] if none exist.

    ``exclude`` names a token the segmentation may not use: a source token's own id, to spell it
    with smaller pieces (the hypernetwork learns to rebuild whole tokens from such spellings).

    In Ġ/▁ families the word-start space is a byte like any other, so we segment the surface
    bytes. In implicit-space families (WordPiece) the first piece must start a word and the rest
    continue it; if that is impossible we accept any pieces that spell the bytes, spaces dropped.
    """
    def allowed(token: int | None) -> int | None:
        return None if token == exclude else token

    if source.style.explicit_space:
        return _fewest_pieces(surface_bytes(key, source.style), lambda chunk, start: allowed(source.surface_index.get(chunk)))
    data, word_start = key

    def strict(chunk: bytes, start: int) -> int | None:
        return allowed(source.index.get((chunk, word_start if start == 0 else False)))

    found = _fewest_pieces(data, strict)
    if found:
        return found

    def relaxed(chunk: bytes, start: int) -> int | None:
        return allowed(source.index.get((chunk, True), source.index.get((chunk, False))))

    return _fewest_pieces(data.replace(b" ", b""), relaxed)


def _fewest_pieces(data: bytes, lookup, max_piece: int = 64) -> list[int]:
    """Shortest path over byte positions; ``lookup(chunk, start)`` names the token for a chunk."""
    n = len(data)
    if n == 0:
        token = lookup(b"", 0)
        return [token] if token is not None else []
    best: list[tuple[int, int, int] | None] = [None] * (n + 1)  # (pieces, previous end, token)
    best[0] = (0, -1, -1)
    for start in range(n):
        if best[start] is None:
            continue
        count = best[start][0]
        for end in range(start + 1, min(n, start + max_piece) + 1):
            token = lookup(data[start:end], start)
            if token is not None and (best[end] is None or best[end][0] > count + 1):
                best[end] = (count + 1, start, token)
    if best[n] is None:
        return []
    out, position = [], n
    while position > 0:
        _, previous, token = best[position]
        out.append(token)
        position = previous
    return out[::-1]
