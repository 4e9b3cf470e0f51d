"""The byte-level view of a tokenized language model: next-byte probabilities by covering.

A causal LM defines a distribution over token sequences, and every token sequence spells a byte
string (the tokens' surface bytes, from the vocabulary layer). So it defines a distribution over
bytes too (Phan et al., "Exact Byte-Level Probabilities from Tokenized Language Models", ICLR
2025). The probability that the text starts with bytes ``x`` sums over its *covers*: a history
``h`` of whole tokens spelling ``x[:j]`` (j < len(x)) followed by one token whose surface starts
with the rest ``x[j:]`` and may run past the end of ``x``. With that, a prompt that ends in the
middle of a word (or of a UTF-8 character) continues it, and models with different tokenizers can
be mixed byte by byte.

Which covers are summed (this is the approximation, stated exactly):

- Histories are the prefixes ``T[:i]`` of the canonical tokenization ``T`` of the text so far
  (what the tokenizer itself produces). The bytes of a trailing incomplete UTF-8 character, which
  a tokenizer cannot be given, extend ``T`` as single-byte tokens, so both they and the longer
  tokens that contain them are covers.
  Histories that are not a prefix of ``T`` are non-canonical tokenizations; Phan et al. exclude
  them as "invalid" for BPE, assuming the model gives them no probability. A model trained on
  canonical tokenizations gives them little, a random model does not, which is why the results
  below are stated for any model.
- The last token is any vocabulary token (ordinary or byte-fallback, never special) whose surface
  starts with the tail. Tokens that would make an invalid sequence are not filtered out; the sum
  therefore equals the paper's valid-cover quantity when the model puts negligible mass on
  non-canonical continuations.

What is exact, for any model:

- :meth:`ByteLevelModel.next_byte_distribution` is the normalised distribution over the 256 next
  bytes and the end of text (eos after the whole canonical tokenization); it sums to 1.
- :meth:`ByteLevelModel.byte_log_probs` scores a known text: with ``T`` its canonical
  tokenization and ``A(k)`` the cover mass of its first ``k`` bytes (histories ``T[:i]``, last
  tokens strictly longer than the tail, plus the canonical token ``T[i]`` where it ends exactly at
  ``k``), the byte conditionals are ``A(k+1) / A(k)`` and the end term is
  ``P(T) P(eos | T) / A(K)``. They telescope: the byte-level log-likelihood of a text ending at a
  token boundary, end included, equals the token-level ``log P(T) + log P(eos | T)`` (the property
  tests check 1e-5 across tokenizer families). Without the end term it is ``log A(K)``: the
  probability that the text starts with these bytes, ``P(T)`` plus the tokens that run past it.

Supported tokenizers are those whose tokens spell the text: byte-level BPE (GPT-2, SmolLM2,
Llama-3) and SentencePiece with byte fallback (Llama-2), whose leading ``▁`` is a byte ``" "``
before the text that is given, not scored. WordPiece, and tokenizers that turn text into
``<unk>``, are refused with one line.
"""

from __future__ import annotations

import codecs
import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from functools import cached_property

import torch

from .errors import TransplantError
from .evaluate import start_token
from .vocab import Vocabulary

END = 256  # index of the end-of-text outcome after the 256 bytes


class SurfaceIndex:
    """Ordinary tokens sorted by surface bytes: the tokens that start with a given byte string are
    one contiguous range, found by bisection (a byte trie laid out flat)."""

    def __init__(self, vocab: Vocabulary):
        entries = sorted((vocab.surface(i), i) for i, key in enumerate(vocab.canonical) if key is not None and vocab.surface(i))
        if not entries:
            raise TransplantError("the tokenizer has no ordinary tokens with bytes")
        self.surfaces = [surface for surface, _ in entries]
        self.ids = torch.tensor([index for _, index in entries], dtype=torch.long)
        self.max_length = max(len(s) for s in self.surfaces)
        # byte_at[r, p]: byte p of the r-th surface, END past its end (for scattering masses by next byte)
        table = torch.full((len(entries), self.max_length + 1), END, dtype=torch.int16)
        for row, surface in enumerate(self.surfaces):
            table[row, : len(surface)] = torch.tensor(list(surface), dtype=torch.int16)
        self.byte_at = table

    def span(self, prefix: bytes) -> tuple[int, int, int]:
        """``(lo, longer, hi)``: rows ``lo:hi`` start with ``prefix``; rows ``longer:hi`` are longer than it."""
        lo = bisect_left(self.surfaces, prefix)
        longer = bisect_right(self.surfaces, prefix, lo)
        successor = _successor(prefix)
        hi = len(self.surfaces) if successor is None else bisect_left(self.surfaces, successor, longer)
        return lo, longer, max(hi, longer)


def _successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string that starts with ``prefix`` (None: none is)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def split_incomplete_utf8(data: bytes) -> tuple[str, bytes]:
    """``data`` as the decodable text plus the bytes of a trailing incomplete character."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        text = decoder.decode(data, final=False)
    except UnicodeDecodeError as error:
        raise TransplantError(f"the byte prefix is not UTF-8 text (bad byte at offset {error.start})") from None
    return text, decoder.getstate()[0]


def utf8_continuations(tail: bytes) -> torch.Tensor:
    """Bool mask over the 256 bytes: which keep ``tail`` (an incomplete character or b"") valid UTF-8."""
    allowed = torch.zeros(256, dtype=torch.bool)
    for byte in range(256):
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            decoder.decode(tail + bytes([byte]), final=False)
            allowed[byte] = True
        except UnicodeDecodeError:
            pass
    return allowed


@dataclass
class Tokenization:
    """The canonical tokenization of a text as the model's byte stream."""

    ids: list[int]
    stream: bytes  # lead + the text's bytes: what the tokens spell
    lead: int  # bytes the tokenizer puts before the text (SentencePiece's leading ▁ -> " ")
    boundaries: list[int]  # boundaries[i]: stream offset where token i starts; last = len(stream)


class ByteLevelModel:
    """A causal LM and its tokenizer seen as a model over bytes (see the module docstring)."""

    def __init__(self, model, tokenizer, label: str = "model"):
        self.model = model
        self.tokenizer = tokenizer
        self.label = label
        self.vocab = Vocabulary.from_tokenizer(tokenizer)
        self.vocab.require_ordinary_tokens(label)
        if self.vocab.style.continuing_prefix:
            raise TransplantError(f"{label}: byte-level probabilities need tokens that spell the text; {self.vocab.style.family} tokens drop the spaces between words")
        self.start = start_token(tokenizer)
        if self.start is None:
            raise TransplantError(f"{label}: its tokenizer has no bos or eos token to start the text from")
        self.eos = getattr(tokenizer, "eos_token_id", None)
        self.index = SurfaceIndex(self.vocab)

    @cached_property
    def device(self):
        return next(self.model.parameters()).device

    def tokenize(self, text: str) -> Tokenization:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
        pieces = [self.vocab.surface(i) for i in ids]
        stream = b"".join(pieces)
        data = text.encode("utf-8")
        unknown = [self.tokenizer.convert_ids_to_tokens(i) for i, piece in zip(ids, pieces) if not piece]
        if unknown or not stream.endswith(data):
            what = f"it writes {unknown[0]!r}" if unknown else "its tokens do not spell the text"
            raise TransplantError(f"{self.label}: cannot give byte probabilities for this text: {what} (need byte-level BPE or byte fallback)")
        boundaries = [0]
        for piece in pieces:
            boundaries.append(boundaries[-1] + len(piece))
        return Tokenization(ids, stream, len(stream) - len(data), boundaries)

    @torch.inference_mode()
    def history_log_probs(self, ids: list[int]) -> torch.Tensor:
        """Row i: log-probabilities (float64) of the token after ``ids[:i]``, for i = 0..len(ids)."""
        limit = getattr(self.model.config, "max_position_embeddings", None) or getattr(self.model.config, "n_positions", None)
        if limit is not None and len(ids) + 1 > limit:
            raise TransplantError(f"{self.label}: {len(ids) + 1} tokens exceed its context of {limit}; use shorter segments")
        inputs = torch.tensor([[self.start, *ids]], device=self.device)
        logits = self.model(input_ids=inputs).logits[0].double()
        return torch.log_softmax(logits, dim=-1).cpu()

    # -----------------------------------------------------------------------------------------
    # Predicting the next byte

    def next_byte_distribution(self, prefix: bytes | str) -> torch.Tensor:
        """Probabilities (float64, sum 1) of the 256 next bytes and, at index 256, of the text ending."""
        data = prefix.encode("utf-8") if isinstance(prefix, str) else bytes(prefix)
        text, incomplete = split_incomplete_utf8(data)
        tokens = self.tokenize(text)
        # the bytes of an incomplete character join the histories as single-byte tokens
        ids, boundaries = list(tokens.ids), list(tokens.boundaries)
        for byte in incomplete:
            single = self.vocab.surface_index.get(bytes([byte]))
            if single is None:
                break
            ids.append(single)
            boundaries.append(boundaries[-1] + 1)
        stream = tokens.stream + incomplete
        log_probs = self.history_log_probs(ids)
        history = _cumulative(log_probs, ids)
        terms, weights = [], []  # (scatter rows, their masses) per history, scaled by P(history)
        masses = torch.zeros(END + 1, dtype=torch.float64)
        for i, begin in enumerate(boundaries):
            if begin < len(stream) - self.index.max_length:
                continue  # no token reaches from here to the end of the prefix
            tail = stream[begin:]
            _, longer, hi = self.index.span(tail)
            if longer < hi:
                terms.append((i, longer, hi, len(tail)))
                weights.append(history[i])
        top = max(weights + ([history[-1]] if not incomplete and self.eos is not None else []), default=-math.inf)
        if top == -math.inf:
            raise TransplantError(f"{self.label}: no token continues this prefix")
        for (i, longer, hi, offset), log_weight in zip(terms, weights):
            rows = torch.arange(longer, hi)
            probs = log_probs[i, self.index.ids[rows]].exp() * math.exp(log_weight - top)
            masses.scatter_add_(0, self.index.byte_at[rows, offset].long(), probs)
        if not incomplete and self.eos is not None:
            masses[END] += math.exp(history[-1] - top) * log_probs[-1, self.eos].exp()
        total = masses.sum()
        if not total > 0:
            raise TransplantError(f"{self.label}: no token continues this prefix")
        return masses / total

    # -----------------------------------------------------------------------------------------
    # Scoring a known text

    def byte_log_probs(self, text: str, end: bool = False) -> tuple[torch.Tensor, Tokenization]:
        """Natural-log conditionals ``A(k+1)/A(k)`` of every stream byte (lead included; see the
        module docstring), plus the end-of-text term last when ``end``."""
        tokens = self.tokenize(text)
        if end and self.eos is None:
            raise TransplantError(f"{self.label}: its tokenizer has no eos token to end the text with")
        log_probs = self.history_log_probs(tokens.ids)
        history = _cumulative(log_probs, tokens.ids)
        size = len(tokens.stream)
        contributions: list[list[float]] = [[] for _ in range(size + 1)]  # log A(k) terms
        for i in range(len(tokens.ids)):
            begin, finish = tokens.boundaries[i], tokens.boundaries[i + 1]
            probs = log_probs[i, self.index.ids].exp()  # in surface order
            for k in range(begin + 1, min(begin + self.index.max_length, size) + 1):
                _, longer, hi = self.index.span(tokens.stream[begin:k])
                running_past = float(probs[longer:hi].sum()) if longer < hi else 0.0
                if running_past > 0:
                    contributions[k].append(history[i] + math.log(running_past))
                if k == finish:  # in log space: the canonical token's term never underflows
                    contributions[k].append(history[i] + float(log_probs[i, tokens.ids[i]]))
                if running_past == 0 and k >= finish:
                    break
        cover = [0.0] + [_logsumexp(terms) for terms in contributions[1:]]
        values = [cover[k + 1] - cover[k] for k in range(size)]
        if end:
            values.append(history[-1] + float(log_probs[-1, self.eos]) - cover[-1])
        return torch.tensor(values, dtype=torch.float64), tokens


def next_byte_distribution(model, tokenizer, prefix: bytes | str) -> torch.Tensor:
    """The 256 next-byte probabilities and, at index 256, the text's end (sum 1), after ``prefix``."""
    return ByteLevelModel(model, tokenizer).next_byte_distribution(prefix)


def byte_log_likelihood(model, tokenizer, text: str, end: bool = False) -> float:
    """Natural-log likelihood of ``text``'s bytes (the tokenizer's lead byte given, not scored);
    with ``end``, of the text followed by its end, which equals the token-level
    ``log P(T) + log P(eos | T)`` minus the lead's log-probability."""
    values, tokens = ByteLevelModel(model, tokenizer).byte_log_probs(text, end=end)
    return float(values[tokens.lead :].sum())


def _cumulative(log_probs: torch.Tensor, ids: list[int]) -> list[float]:
    """log P(ids[:i]) for i = 0..len(ids)."""
    out = [0.0]
    for position, index in enumerate(ids):
        out.append(out[-1] + float(log_probs[position, index]))
    return out


def _logsumexp(values: list[float]) -> float:
    if not values:
        return -math.inf
    top = max(values)
    if top == -math.inf:
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


# ---------------------------------------------------------------------------------------------
# Ensembles of models with different tokenizers


class ByteEnsemble:
    """A weighted mixture of byte-level models: ``p(b | x) = sum_m w_m p_m(b | x)``."""

    def __init__(self, members: list[ByteLevelModel], weights: list[float] | None = None):
        if not members:
            raise TransplantError("an ensemble needs at least one model")
        weights = [1.0] * len(members) if weights is None else list(weights)
        if len(weights) != len(members):
            raise TransplantError(f"{len(weights)} weights for {len(members)} models")
        if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise TransplantError("ensemble weights must be non-negative numbers, not all zero")
        total = sum(weights)
        self.members = members
        self.weights = [w / total for w in weights]

    def next_byte_distribution(self, prefix: bytes | str) -> torch.Tensor:
        return sum(w * m.next_byte_distribution(prefix) for w, m in zip(self.weights, self.members) if w > 0)

    def text_log_probs(self, text: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Per-byte log-probabilities of ``text``'s bytes under the mixture and under each member
        (each member's lead bytes are given, not scored)."""
        members = []
        for member in self.members:
            values, tokens = member.byte_log_probs(text)
            members.append(values[tokens.lead :])
        return mix(members, self.weights), members


def mix(members: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """Per-byte log-probabilities of the mixture ``sum_m w_m p_m`` (weights summing to 1)."""
    log_weights = torch.tensor(weights, dtype=torch.float64).log().unsqueeze(1)
    return torch.logsumexp(torch.stack(members) + log_weights, dim=0)


def generate(model: ByteLevelModel | ByteEnsemble, prompt: str, max_bytes: int, *, temperature: float = 0.0, seed: int = 0, progress: bool = False) -> bytes:
    """Continue ``prompt`` byte by byte (greedy at temperature 0, else sampled) until the end of
    text or ``max_bytes``; bytes that would break UTF-8 are never chosen."""
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(seed)
    data = prompt.encode("utf-8")
    produced = bytearray()
    for _ in tqdm(range(max_bytes), desc="generating", disable=not progress, leave=False):
        _, incomplete = split_incomplete_utf8(data + produced)
        probs = model.next_byte_distribution(data + produced)
        allowed = torch.cat([utf8_continuations(incomplete), torch.tensor([not incomplete])])
        probs = torch.where(allowed, probs, torch.zeros_like(probs))
        if not probs.sum() > 0:
            break
        if temperature == 0:
            choice = int(probs.argmax())
        else:
            scaled = probs.pow(1.0 / temperature)
            choice = int(torch.multinomial(scaled / scaled.sum(), 1, generator=generator))
        if choice == END:
            break
        produced.append(choice)
    return bytes(produced)


@dataclass
class EnsembleResult:
    file: str
    bytes: int
    segments: int
    members: list[tuple[str, float]]  # (label, byte-level bits per byte alone), in order
    ensemble: float  # bits per byte of the mixture
    other_weights: list[tuple[list[float], float]] = field(default_factory=list)  # (weights, bits per byte) of further mixtures

    def to_json(self) -> dict:
        return {
            "file": self.file, "bytes": self.bytes, "segments": self.segments,
            "members": [{"model": label, "bits_per_byte": value} for label, value in self.members], "ensemble": self.ensemble,
            "other_weights": [{"weights": weights, "bits_per_byte": value} for weights, value in self.other_weights],
        }


def ensemble_bits_per_byte(ensemble: ByteEnsemble, text: str, *, segment_bytes: int, file: str = "text", progress: bool = True,
                           other_weights: tuple[list[float], ...] = ()) -> EnsembleResult:
    """Bits per byte of each member and of the mixture on the same segments as ``transplant eval``
    (each segment scored from a start token; the bytes are the text's own, leads not counted).
    ``other_weights``: further mixtures of the same members, scored from the same predictions."""
    from tqdm.auto import tqdm

    from .evaluate import segments
    from .finite import require_finite_number

    pieces = segments(text, segment_bytes)
    if not pieces:
        raise TransplantError(f"{file}: nothing to score")
    others = [[w / sum(weights) for w in weights] for weights in other_weights]
    mixture, alone, other = 0.0, [0.0] * len(ensemble.members), [0.0] * len(others)
    for piece in tqdm(pieces, desc="scoring the ensemble", disable=not progress, leave=False):
        mixed, members = ensemble.text_log_probs(piece)
        mixture -= float(mixed.sum())
        for m, values in enumerate(members):
            alone[m] -= float(values.sum())
        for n, weights in enumerate(others):
            other[n] -= float(mix(members, weights).sum())
    size = sum(len(p.encode("utf-8")) for p in pieces)
    require_finite_number(mixture, f"the ensemble's loss on {file}")
    scale = 1 / math.log(2) / size
    return EnsembleResult(
        file=file,
        bytes=size,
        segments=len(pieces),
        members=[(member.label, nll * scale) for member, nll in zip(ensemble.members, alone)],
        ensemble=mixture * scale,
        other_weights=[(list(weights), nll * scale) for weights, nll in zip(other_weights, other)],
    )
