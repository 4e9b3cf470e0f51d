"""Tokenizer quality numbers (after Qtok): how tokenizers cut the same texts, language by language.

Per tokenizer and text, on the same line segments as ``transplant eval``:

- bytes per token: UTF-8 bytes / tokens (higher: fewer tokens for the same text);
- fertility: tokens per whitespace-separated word;
- continued words: share of words cut into more than one token;
- whole-word tokens: share of tokens that are exactly one word (with its leading space);
- vocabulary utilisation: distinct ordinary tokens used / ordinary tokens in the vocabulary.

A superword token (SuperBPE) spans several words: it counts once for each word it touches, so
fertility can fall below 1, and it is never a whole-word token.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import TransplantError
from .evaluate import segments
from .vocab import Vocabulary

_WORD = re.compile(r"\S+")


@dataclass
class TokenizerQuality:
    tokenizer: str
    text: str  # the text's name, e.g. de.test
    bytes: int
    words: int
    tokens: int
    bytes_per_token: float
    fertility: float  # tokens per word
    continued_words: float  # share of words split into several tokens
    whole_word_tokens: float  # share of tokens that are exactly one word
    vocabulary_used: float  # distinct ordinary tokens used / ordinary vocabulary size

    def to_json(self) -> dict:
        return asdict(self)


def measure(tokenizer, text: str, *, label: str = "tokenizer", name: str = "text") -> TokenizerQuality:
    vocab = Vocabulary.from_tokenizer(tokenizer)
    ordinary = sum(1 for key in vocab.canonical if key is not None)
    pieces = segments(text)
    encoded = tokenizer(pieces, add_special_tokens=False, return_offsets_mapping=True)
    tokens = words = continued = whole = 0
    used: set[int] = set()
    for piece, ids, offsets in zip(pieces, encoded["input_ids"], encoded["offset_mapping"]):
        tokens += len(ids)
        used.update(i for i in ids if vocab.canonical[i] is not None)
        spans = [(start, end) for start, end in offsets]
        starts = [start for start, _ in spans]
        cursor = 0
        for word in _WORD.finditer(piece):
            # the tokens overlapping this word (offsets are sorted by start)
            while cursor < len(spans) and spans[cursor][1] <= word.start():
                cursor += 1
            touching = 0
            probe = cursor
            while probe < len(spans) and starts[probe] < word.end():
                if spans[probe][1] > word.start():
                    touching += 1
                probe += 1
            words += 1
            continued += touching > 1
            if touching == 1:
                start, end = spans[cursor]
                whole += piece[start:end].strip() == word.group()
    size = sum(len(p.encode("utf-8")) for p in pieces)
    return TokenizerQuality(
        tokenizer=label,
        text=name,
        bytes=size,
        words=words,
        tokens=tokens,
        bytes_per_token=size / max(tokens, 1),
        fertility=tokens / max(words, 1),
        continued_words=continued / max(words, 1),
        whole_word_tokens=whole / max(tokens, 1),
        vocabulary_used=len(used) / max(ordinary, 1),
    )


HEADERS = ["tokenizer", "text", "vocab", "bytes/token", "tokens/word", "continued words", "whole-word tokens", "vocab used"]


def table_rows(results: list[TokenizerQuality], sizes: dict[str, int]) -> list[list]:
    return [
        [r.tokenizer, r.text, sizes[r.tokenizer], r.bytes_per_token, r.fertility, r.continued_words, r.whole_word_tokens, r.vocabulary_used]
        for r in results
    ]


def plot(results: list[TokenizerQuality], path: Path) -> None:
    """Grouped bars per text: bytes per token and tokens per word of each tokenizer."""
    if importlib.util.find_spec("matplotlib") is None:
        raise TransplantError("the report's plot needs matplotlib: pip install 'transplant[recipes]'")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    texts = list(dict.fromkeys(r.text for r in results))
    names = list(dict.fromkeys(r.tokenizer for r in results))
    by_key = {(r.tokenizer, r.text): r for r in results}
    figure, axes = plt.subplots(1, 2, figsize=(max(8, 1.4 * len(texts) * len(names) + 3), 4))
    width = 0.8 / len(names)
    for axis, field, label in ((axes[0], "bytes_per_token", "bytes per token (higher: fewer tokens)"), (axes[1], "fertility", "tokens per word (lower is better)")):
        for n, name in enumerate(names):
            values = [getattr(by_key[(name, t)], field) for t in texts]
            axis.bar([x + n * width for x in range(len(texts))], values, width, label=Path(name).name or name)
        axis.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(texts))], texts)
        axis.set_ylabel(label)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown(results: list[TokenizerQuality], sizes: dict[str, int]) -> str:
    from .table import markdown_table

    return markdown_table(HEADERS, table_rows(results, sizes))


def write_report(results: list[TokenizerQuality], sizes: dict[str, int], directory: Path) -> None:
    """report.md, report.json and tokenizers.png into ``directory``."""
    import json

    (directory / "report.json").write_text(json.dumps([r.to_json() for r in results], indent=2))
    (directory / "report.md").write_text("# Tokenizer report\n\n" + markdown(results, sizes) + "\n\n![tokenizers](tokenizers.png)\n")
    plot(results, directory / "tokenizers.png")
