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

TYPES = ("bpe", "unigram")


def corpus_lines(files: list[str | Path]) -> list[str]:
    """Non-empty lines of UTF-8 corpus files (each file checked: exists, UTF-8, not empty)."""
    if not files:
        raise TransplantError("no corpus given: pass --corpus FILE")
    lines = []
    for file in files:
        lines.extend(line for line in read_text(file).splitlines() if line.strip())
    return lines


def train_tokenizer(like, lines: list[str], vocab_size: int, kind: str = "bpe", progress: bool = True):
    """A new fast tokenizer trained on ``lines`` with ``like``'s pipeline and special tokens."""
    if kind not in TYPES:
        raise TransplantError(f"tokenizer type must be one of {', '.join(TYPES)}, not '{kind}'")
    source = Vocabulary.from_tokenizer(like)
    floor = len(source.special) + (256 if source.style.byte_level else 0) + 1
    if vocab_size < floor:
        raise TransplantError(f"--vocab-size {vocab_size} is too small: the special tokens and base alphabet alone need {floor}")
    if not lines:
        raise TransplantError("the corpus has no text")
    if kind == "bpe" and source.style.model_type == "BPE":
        # transformers retrains the same model type and keeps the whole pipeline and specials
        return like.train_new_from_iterator(_batches(lines), vocab_size, show_progress=progress)
    return _train_with_pipeline(like, source, lines, vocab_size, kind, progress)


def _batches(lines: list[str], size: int = 1000) -> Iterator[list[str]]:
    for start in range(0, len(lines), size):
        yield lines[start : start + size]


def _train_with_pipeline(like, source: Vocabulary, lines: list[str], vocab_size: int, kind: str, progress: bool):
    """Train a model of another type (e.g. Unigram for a BPE source) inside the source's pipeline."""
    from transformers import PreTrainedTokenizerFast

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
    roles = {f"{role}_token": source.special[index] for role, index in source.roles.items()}
    result = PreTrainedTokenizerFast(tokenizer_object=shell, **roles)
    if getattr(like, "chat_template", None):
        result.chat_template = like.chat_template
    return result


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
