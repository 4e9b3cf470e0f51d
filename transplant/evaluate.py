"""Bits per byte and tokenizer statistics that compare fairly across tokenizers.

Bits per byte = (sum of every token's negative log-likelihood, in bits) / (UTF-8 bytes scored).
The text is cut into the same segments for every tokenizer, by bytes and on line boundaries, so
two models see the same documents. Each segment is scored from a start-of-text token (bos, else
eos), so its first real token is scored too; segments longer than the context are scored with
overlapping windows, each token once.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .errors import TransplantError
from .finite import require_finite_number

DEFAULT_SEGMENT_BYTES = 2048
DEFAULT_CONTEXT = 1024
TOKENS_PER_BATCH = 8192


@dataclass
class EvalResult:
    model: str
    file: str
    bits_per_byte: float | None
    bytes_per_token: float
    tokens_per_word: float
    tokens: int
    bytes: int
    segments: int
    seconds: float

    def to_json(self) -> dict:
        return asdict(self)


def read_text(path: str | Path, max_bytes: int | None = None) -> str:
    """A UTF-8 text file, cut at a line boundary to at most ``max_bytes``; clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise TransplantError(f"text file not found: {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TransplantError(f"{path} is not UTF-8 text (bad byte at offset {error.start})") from None
    if not text.strip():
        raise TransplantError(f"{path} is empty")
    if max_bytes is not None and max_bytes < 1:
        raise TransplantError(f"max_bytes must be positive, not {max_bytes}")
    if max_bytes is not None and len(raw) > max_bytes:
        text = cut_at_line(text, max_bytes)
    return text


def cut_at_line(text: str, max_bytes: int) -> str:
    """The longest prefix of whole lines within ``max_bytes`` (or a char-safe cut if no line fits)."""
    data = text.encode("utf-8")[:max_bytes]
    cut = data.rfind(b"\n")
    if cut > 0:
        return data[: cut + 1].decode("utf-8")
    return data.decode("utf-8", errors="ignore")


def segments(text: str, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> list[str]:
    """Consecutive groups of whole lines of at most ``segment_bytes`` (a longer line stands alone)."""
    out, current, size = [], [], 0
    for line in text.splitlines(keepends=True):
        length = len(line.encode("utf-8"))
        if current and size + length > segment_bytes:
            out.append("".join(current))
            current, size = [], 0
        current.append(line)
        size += length
    if current:
        out.append("".join(current))
    return [s for s in out if s.strip()]


def is_causal_lm(model) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return type(model).__name__ in set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())


def start_token(tokenizer) -> int | None:
    for role in ("bos_token_id", "eos_token_id"):
        value = getattr(tokenizer, role, None)
        if value is not None:
            return value
    return None


def tokenizer_stats(tokenizer, text: str) -> dict:
    """Bytes per token and tokens per whitespace-separated word, on the same segments as scoring."""
    pieces = segments(text)
    tokens = sum(len(ids) for ids in tokenizer(pieces, add_special_tokens=False)["input_ids"])
    size = sum(len(p.encode("utf-8")) for p in pieces)
    words = sum(len(p.split()) for p in pieces)
    return {"tokens": tokens, "bytes": size, "bytes_per_token": size / max(tokens, 1), "tokens_per_word": tokens / max(words, 1)}


@torch.inference_mode()
def bits_per_byte(
    model,
    tokenizer,
    text: str,
    *,
    context: int = DEFAULT_CONTEXT,
    segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    label: str = "model",
    file: str = "text",
    progress: bool = True,
) -> EvalResult:
    started = time.perf_counter()
    if context < 2:
        raise TransplantError(f"the context must be at least 2 tokens, not {context}")
    pieces = segments(text, segment_bytes)
    if not pieces:
        raise TransplantError(f"{file}: nothing to score")
    context = min(context, _max_positions(model) or context)
    start = start_token(tokenizer)
    encoded = tokenizer(pieces, add_special_tokens=False)["input_ids"]
    windows = []  # (ids, number of leading positions whose predictions are not scored)
    for ids in encoded:
        ids = ([start] if start is not None else []) + ids
        windows.extend(_windows(ids, context))
    total_nll = 0.0
    order = sorted(range(len(windows)), key=lambda i: len(windows[i][0]))
    batches, batch = [], []
    for i in order:
        if batch and (len(batch) + 1) * len(windows[i][0]) > TOKENS_PER_BATCH:
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    device = next(model.parameters()).device
    scored = 0
    for batch in tqdm(batches, desc=f"scoring {label}", disable=not progress, leave=False):
        nll, count = _score_batch(model, [windows[i] for i in batch], device)
        total_nll += nll
        scored += count
    size = sum(len(p.encode("utf-8")) for p in pieces)
    tokens = sum(len(ids) for ids in encoded)
    words = sum(len(p.split()) for p in pieces)
    if scored == 0:
        raise TransplantError(f"{label}: its tokenizer turns {file} into no tokens to score (is its vocabulary empty?)")
    require_finite_number(total_nll, f"the loss of {label} on {file}")
    return EvalResult(
        model=label,
        file=file,
        bits_per_byte=total_nll / math.log(2) / size,
        bytes_per_token=size / max(tokens, 1),
        tokens_per_word=tokens / max(words, 1),
        tokens=tokens,
        bytes=size,
        segments=len(pieces),
        seconds=time.perf_counter() - started,
    )


def _max_positions(model) -> int | None:
    """The longest input a model with learned positions takes (GPT-2's n_positions, OPT's)."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    for key in ("n_positions", "max_position_embeddings"):
        if isinstance(getattr(config, key, None), int):
            return getattr(config, key)
    return None


def _windows(ids: list[int], context: int) -> list[tuple[list[int], int]]:
    """Windows of at most ``context`` tokens that together predict every token after the first once."""
    if len(ids) <= context:
        return [(ids, 0)]
    stride = context // 2
    out, begin = [(ids[:context], 0)], 0
    while begin + context < len(ids):
        begin += stride
        window = ids[begin : begin + context]
        already = context - stride  # positions predicted by the previous window
        out.append((window, already - 1))
    return out


def _score_batch(model, windows, device) -> tuple[float, int]:
    width = max(len(ids) for ids, _ in windows)
    input_ids = torch.zeros(len(windows), width, dtype=torch.long)
    mask = torch.zeros(len(windows), width, dtype=torch.long)
    targets = torch.full((len(windows), width), -100, dtype=torch.long)
    for row, (ids, skip) in enumerate(windows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        mask[row, : len(ids)] = 1
        # position p predicts token p+1; the first `skip` predictions were scored before
        targets[row, skip : len(ids) - 1] = torch.tensor(ids[skip + 1 :])
    logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits.float()
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.to(device).reshape(-1), ignore_index=-100, reduction="sum"
    )
    return loss.item(), int((targets != -100).sum())
