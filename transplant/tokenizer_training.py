"""Train a target tokenizer in the style of a source one (same normalizer, pre-tokenizer, specials).

Keeping the source's pipeline and special tokens means the transplanted model keeps its chat
template and start/end tokens, and only the vocabulary itself changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from .errors import TransplantError
from .evaluate import read_text
from .vocab import Vocabulary
from .vocab.families import renumber_post_processor

TYPES = ("bpe", "unigram", "superbpe")


def corpus_lines(files: list[str | Path]) -> list[str]:
    """Non-empty lines of UTF-8 corpus files (each file checked: exists, UTF-8, not empty)."""
    if not files:
        raise TransplantError("no corpus given: pass --corpus FILE")
    lines = []
    for file in files:
        lines.extend(line for line in read_text(file).splitlines() if line.strip())
    return lines


def train_tokenizer(like, lines: list[str], vocab_size: int, kind: str = "bpe", progress: bool = True, transition: int | None = None):
    """A new fast tokenizer trained on ``lines`` with ``like``'s pipeline and special tokens.

    ``superbpe`` needs ``transition``: the vocabulary size at which subword learning stops and
    superword learning starts (see :func:`train_superbpe`)."""
    if kind not in TYPES:
        raise TransplantError(f"tokenizer type must be one of {', '.join(TYPES)}, not '{kind}'")
    source = Vocabulary.from_tokenizer(like)
    floor = len(source.special) + (256 if source.style.byte_level else 0) + 1
    if vocab_size < floor:
        raise TransplantError(f"--vocab-size {vocab_size} is too small: the special tokens and base alphabet alone need {floor}")
    if not lines:
        raise TransplantError("the corpus has no text")
    if kind == "superbpe":
        return train_superbpe(like, source, lines, vocab_size, transition, progress)
    if transition is not None:
        raise TransplantError("--transition is for --type superbpe")
    if kind == "bpe" and source.style.model_type == "BPE":
        # transformers retrains the same model type and keeps the whole pipeline and specials
        return like.train_new_from_iterator(_batches(lines), vocab_size, show_progress=progress)
    return _train_with_pipeline(like, source, lines, vocab_size, kind, progress)


def _batches(lines: list[str], size: int = 1000) -> Iterator[list[str]]:
    for start in range(0, len(lines), size):
        yield lines[start : start + size]


def _train_with_pipeline(like, source: Vocabulary, lines: list[str], vocab_size: int, kind: str, progress: bool):
    """Train a model of another type (e.g. Unigram for a BPE source) inside the source's pipeline."""

    spec = json.loads(like.backend_tokenizer.to_str())
    specials = [source.special[i] for i in sorted(source.special)]
    alphabet = pre_tokenizers.ByteLevel.alphabet() if source.style.byte_level else []
    if kind == "unigram":
        unk = getattr(like, "unk_token", None)
        model = models.Unigram()
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=specials, initial_alphabet=alphabet, unk_token=unk, show_progress=progress
        )
    else:
        model = models.BPE(unk_token=getattr(like, "unk_token", None), byte_fallback=source.style.byte_fallback)
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, initial_alphabet=alphabet, show_progress=progress)
    tokenizer = Tokenizer(model)
    shell = Tokenizer.from_str(json.dumps({**spec, "model": json.loads(tokenizer.to_str())["model"], "added_tokens": []}))
    shell.train_from_iterator(_batches(lines), trainer=trainer)
    shell = renumber_post_processor(shell)
    return _wrapped_like(shell, like, source)


def _wrapped_like(backend: Tokenizer, like, source: Vocabulary):
    """A trained backend as a fast tokenizer with ``like``'s special-token roles and chat template."""
    from transformers import PreTrainedTokenizerFast

    roles = {f"{role}_token": source.special[index] for role, index in source.roles.items()}
    result = PreTrainedTokenizerFast(tokenizer_object=backend, **roles)
    if getattr(like, "chat_template", None):
        result.chat_template = like.chat_template
    return result


# ---------------------------------------------------------------------------------------------
# SuperBPE (Liu et al. 2025): subwords first, then superwords that bridge whitespace

# Stage-1 tokens become single characters for stage 2; this plane holds 65,534 private-use ones.
_PRIVATE_USE = 0xF0000


def train_superbpe(like, source: Vocabulary, lines: list[str], vocab_size: int, transition: int | None, progress: bool):
    """Two-stage BPE: ordinary BPE in ``like``'s style up to ``transition`` tokens, then more
    merges learnt with the whitespace pre-tokenization removed, so tokens may span words.

    Stage 2 continues from stage 1's segmentation: every line is cut where the pipeline still cuts
    without its whitespace rule (digits, for SmolLM2), each stage-1 token stands for one private
    character, and a BPE trainer learns ``vocab_size - transition`` merges over those characters.
    The tokenizer keeps stage 1's merges first (so every stage-1 token still forms) and stage 2's
    after them; its ByteLevel pre-tokenizer no longer splits at spaces. A line is the longest
    span a token may cover. Byte-level BPE sources only (GPT-2, SmolLM2, Llama-3 style).
    """

    if transition is None:
        raise TransplantError("--type superbpe needs --transition N (the vocabulary size where superword learning starts)")
    if not source.style.byte_level or source.style.model_type != "BPE":
        raise TransplantError(f"superbpe needs a byte-level BPE source tokenizer, not {source.style.family}")
    if not 0 < transition < vocab_size:
        raise TransplantError(f"--transition {transition} must lie between 0 and --vocab-size {vocab_size}")
    stage1 = train_tokenizer(like, lines, transition, "bpe", progress)
    spec = json.loads(stage1.backend_tokenizer.to_str())
    spec["pre_tokenizer"] = _without_whitespace_split(spec["pre_tokenizer"])
    stage2_pre = Tokenizer.from_str(json.dumps({**spec, "model": {"type": "BPE", "vocab": {}, "merges": []}, "added_tokens": []})).pre_tokenizer
    vocab = spec["model"]["vocab"]
    special = {token["content"] for token in spec.get("added_tokens", [])}
    ordinary = sorted((token for token in vocab if token not in special), key=vocab.get)
    if len(ordinary) >= _PRIVATE_USE_SIZE:
        raise TransplantError(f"--transition {transition} is too large for stage 2 (at most {_PRIVATE_USE_SIZE} stage-1 tokens)")
    to_char = {token: chr(_PRIVATE_USE + rank) for rank, token in enumerate(ordinary)}
    words = _stage1_words(stage1, stage2_pre, lines, to_char)
    alphabet = list(to_char.values())
    new_tokens = vocab_size - len(stage1)
    merger = Tokenizer(models.BPE())
    merger.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(vocab_size=len(alphabet) + new_tokens, initial_alphabet=alphabet, limit_alphabet=len(alphabet), show_progress=progress)
    merger.train_from_iterator(_batches(words), trainer=trainer)
    from_char = {char: token for token, char in to_char.items()}
    learnt = json.loads(merger.to_str())["model"]["merges"]
    merges = [_merge_pair(m) for m in spec["model"]["merges"]]
    next_id = max([*vocab.values(), *(token["id"] for token in spec.get("added_tokens", []))]) + 1
    for pair in learnt:
        left, right = ("".join(from_char[c] for c in part) for part in _merge_pair(pair))
        merges.append((left, right))
        if left + right not in vocab:  # a superword may spell an existing token: one id for both
            vocab[left + right] = next_id
            next_id += 1
    spec["model"]["merges"] = [list(pair) for pair in merges]
    shell = Tokenizer.from_str(json.dumps(spec))
    return _wrapped_like(shell, like, source)


_PRIVATE_USE_SIZE = 65534


def _merge_pair(merge) -> tuple[str, str]:
    """A merge as tokenizers stores it: ``["a", "b"]`` (new format) or ``"a b"`` (old)."""
    if isinstance(merge, str):
        left, right = merge.split(" ")
        return left, right
    return merge[0], merge[1]


def _without_whitespace_split(node: dict | None) -> dict | None:
    """The pre-tokenizer with its whitespace rule removed: ByteLevel stops using the GPT-2 regex
    and a Split on a regex goes; other cuts (Digits) stay."""
    if not node:
        return node
    if node.get("type") == "Sequence":
        children = [_without_whitespace_split(child) for child in node["pretokenizers"]]
        return {**node, "pretokenizers": [child for child in children if child is not None]}
    if node.get("type") == "ByteLevel":
        return {**node, "use_regex": False}
    if node.get("type") in ("Split", "Whitespace", "WhitespaceSplit"):
        return None
    return node


def _stage1_words(stage1, stage2_pre, lines: list[str], to_char: dict[str, str]) -> list[str]:
    """Each line's stage-2 pieces, each spelled as its stage-1 tokens' private characters and
    separated by spaces (the stage-2 trainer splits on them)."""
    backend = stage1.backend_tokenizer
    out = []
    for start in range(0, len(lines), 1000):
        batch = lines[start : start + 1000]
        encodings = backend.encode_batch(batch, add_special_tokens=False)
        for line, encoding in zip(batch, encodings):
            cuts = [end for _, (_, end) in stage2_pre.pre_tokenize_str(line)]
            pieces, current, cut = [], [], 0
            for token, (begin, _end) in zip(encoding.tokens, encoding.offsets):
                while cut < len(cuts) and begin >= cuts[cut]:
                    if current:
                        pieces.append("".join(current))
                        current = []
                    cut += 1
                current.append(to_char[token])
            if current:
                pieces.append("".join(current))
            out.append(" ".join(pieces))
    return out
