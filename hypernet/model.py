"""The hypernetwork: a token's embedding predicted from the base-model embeddings of its pieces.

Every token of a new vocabulary is spelled with the base model's own tokenizer (the vocabulary
layer's decomposition). The embeddings of the first ``max_pieces`` pieces go through a small
transformer encoder, and its pooled output is added to the fvt row of the token (the same
weighted decomposition mean that ``--method fvt`` computes, over all pieces). The output layer
starts at zero, so an untrained hypernetwork *is* fvt and training can only learn a correction.

For a model with an untied head, the output embeddings are predicted the same way from the
pieces' output embeddings, through the same encoder with their own input and output layers.
For a model with a tied head, a hypernetwork may also predict a head of its own (``tied_head``):
the "output" kind then reads the tied matrix, has an encoder of its own (``own_encoders``), and
is trained on next-token features (head_training.py); the converted model's head is untied.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from transplant.vocab import Vocabulary, decomposition_mean

PAD = -1  # piece id of an empty position


@dataclass
class HypernetConfig:
    base_model: str  # what the user named when training (for messages)
    fingerprints: dict[str, str]  # kind ("input"/"output") -> hash of the base model's rows
    embedding_dim: int
    source_rows: int
    kinds: list[str] = field(default_factory=lambda: ["input"])
    max_pieces: int = 8
    width: int = 256
    layers: int = 2
    heads: int = 4
    weighting: str = "length"  # fvt weighting of the residual's base
    tied_head: bool = False  # the "output" kind predicts a head of its own for a tied model
    own_encoders: list[str] = field(default_factory=list)  # kinds with an encoder of their own

    def to_json(self) -> dict:
        return asdict(self)


def fingerprint(rows: torch.Tensor) -> str:
    """A short hash of a base model's vocabulary rows, in bfloat16 so that the same model stored
    in float32 or bfloat16 gives the same value."""
    data = rows[: min(len(rows), 4096)].detach().to(torch.bfloat16).view(torch.int16).contiguous().numpy().tobytes()
    return hashlib.sha256(str(tuple(rows.shape)).encode() + data).hexdigest()[:16]


class Hypernet(nn.Module):
    def __init__(self, config: HypernetConfig):
        super().__init__()
        self.config = config
        width = config.width
        self.position, self.encoder = _trunk(config)  # shared by every kind without one of its own
        self.own = nn.ModuleDict({kind: nn.ModuleDict(dict(zip(("position", "encoder"), _trunk(config)))) for kind in config.own_encoders})
        self.inputs = nn.ModuleDict({kind: nn.Linear(config.embedding_dim, width) for kind in config.kinds})
        self.heads = nn.ModuleDict({kind: nn.Linear(width, config.embedding_dim) for kind in config.kinds})
        for head in self.heads.values():  # zero residual: untrained == fvt
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        # The pieces' embeddings are standardised with the base model's own statistics (set by
        # ``set_scale``), so the same learning rate suits models whose embeddings differ in scale.
        for kind in config.kinds:
            self.register_buffer(f"mean_{kind}", torch.zeros(config.embedding_dim))
            self.register_buffer(f"std_{kind}", torch.ones(()))

    def set_scale(self, kind: str, source: torch.Tensor) -> None:
        getattr(self, f"mean_{kind}").copy_(source.mean(0))
        getattr(self, f"std_{kind}").copy_((source - source.mean(0)).std())

    def residual(self, pieces: torch.Tensor, source: torch.Tensor, kind: str) -> torch.Tensor:
        """The learned correction for each row of ``pieces`` ([tokens, max_pieces], PAD-filled)."""
        present = pieces != PAD
        vectors = source[pieces.clamp(min=0)]
        vectors = (vectors - getattr(self, f"mean_{kind}")) / getattr(self, f"std_{kind}")
        position, encoder = (self.own[kind]["position"], self.own[kind]["encoder"]) if kind in self.own else (self.position, self.encoder)
        hidden = self.inputs[kind](vectors) + position.weight[: pieces.shape[1]]
        # a row without pieces attends to its first (padding) position rather than to nothing
        mask = ~present
        mask[:, 0] = False
        hidden = encoder(hidden, src_key_padding_mask=mask)
        weights = present.to(hidden.dtype).unsqueeze(-1)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self.heads[kind](pooled) * present.any(1, keepdim=True).to(hidden.dtype)

    def forward(self, pieces: torch.Tensor, source: torch.Tensor, base: torch.Tensor, kind: str = "input") -> torch.Tensor:
        return base + self.residual(pieces, source, kind)


def _trunk(config: HypernetConfig) -> tuple[nn.Embedding, nn.TransformerEncoder]:
    """Piece-position embeddings and the encoder over a token's pieces."""
    position = nn.Embedding(config.max_pieces, config.width)
    nn.init.normal_(position.weight, std=0.02)
    layer = nn.TransformerEncoderLayer(config.width, config.heads, 2 * config.width, dropout=0.0, batch_first=True, norm_first=True)
    # dropout 0: a training step is a pure function of (weights, batch), so resume is exact
    return position, nn.TransformerEncoder(layer, config.layers, norm=nn.LayerNorm(config.width), enable_nested_tensor=False)


def piece_matrix(decompositions: list[list[int]], max_pieces: int, source_rows: int) -> torch.Tensor:
    """[tokens, width] ids of the first ``max_pieces`` pieces, PAD-filled; width = longest row."""
    clipped = [[p for p in d if p < source_rows][:max_pieces] for d in decompositions]
    width = max([len(d) for d in clipped] + [1])
    matrix = torch.full((len(clipped), width), PAD, dtype=torch.long)
    for row, pieces in enumerate(clipped):
        if pieces:
            matrix[row, : len(pieces)] = torch.tensor(pieces)
    return matrix


def fvt_base(hypernet: Hypernet, source_vocab: Vocabulary, decompositions: list[list[int]], source: torch.Tensor, fallback: torch.Tensor | None = None) -> torch.Tensor:
    """The fvt rows the residual sits on (``--method fvt``'s own function)."""
    base, _ = decomposition_mean(source_vocab, decompositions, source, hypernet.config.weighting, fallback)
    return base


@torch.no_grad()
def predict(
    hypernet: Hypernet,
    source_vocab: Vocabulary,
    decompositions: list[list[int]],
    source: torch.Tensor,
    kind: str = "input",
    fallback: torch.Tensor | None = None,
    batch_tokens: int = 8192,
) -> torch.Tensor:
    """Embeddings for every decomposition, batched; rows are grouped by piece count so that a
    batch carries little padding (most tokens have 2-4 pieces, a few have 8)."""
    base = fvt_base(hypernet, source_vocab, decompositions, source, fallback)
    config = hypernet.config
    lengths = torch.tensor([min(len([p for p in d if p < len(source)]), config.max_pieces) for d in decompositions])
    order = torch.argsort(lengths, stable=True).tolist()
    out = base.clone()
    for start in range(0, len(order), batch_tokens):
        rows = order[start : start + batch_tokens]
        pieces = piece_matrix([decompositions[r] for r in rows], config.max_pieces, len(source))
        # on the hypernetwork's device (a GPU while it trains), the rows back where ``source`` lives
        device = hypernet.position.weight.device
        out[rows] += hypernet.residual(pieces.to(device), source.to(device), kind).to(out.device, out.dtype)
    return out
