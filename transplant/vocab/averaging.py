"""A target token as the (weighted) mean of the source rows that spell it.

The one computation fvt and the hypernetwork (which predicts a residual on top of it) share;
it lives here, beside the decompositions it reads.
"""

from __future__ import annotations

import torch

from .vocabulary import Vocabulary


def decomposition_mean(
    source_vocab: Vocabulary,
    decompositions: list[list[int]],
    source: torch.Tensor,
    weighting: str = "length",
    fallback: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (weighted) mean of the source rows of each decomposition, and which had any pieces.

    Shared with the hypernetwork, which predicts a residual on top of exactly these rows, so an
    untrained hypernetwork is fvt. Rows without pieces get ``fallback`` (zeros if None).
    """
    # One sparse (decompositions x source) averaging matrix instead of a Python loop over rows.
    rows, cols, weights = [], [], []
    spelled = torch.zeros(len(decompositions), dtype=torch.bool)
    for position, decomposition in enumerate(decompositions):
        pieces = [p for p in decomposition if p < len(source)]
        if not pieces:
            continue
        if weighting == "length":
            lengths = [max(len(source_vocab.surface(p)), 1) for p in pieces]
        else:
            lengths = [1] * len(pieces)
        total = float(sum(lengths))
        rows += [position] * len(pieces)
        cols += pieces
        weights += [length / total for length in lengths]
        spelled[position] = True
    averaging = torch.sparse_coo_tensor(
        torch.tensor([rows, cols], dtype=torch.long).reshape(2, -1),
        torch.tensor(weights, dtype=torch.float32),
        (len(decompositions), len(source)),
        check_invariants=False,  # indices are built above and in range by construction
    )
    result = torch.sparse.mm(averaging, source)
    if fallback is not None:
        result[~spelled] = fallback
    return result, spelled
