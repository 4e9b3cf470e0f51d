"""``random``: each new row drawn per dimension from N(mean, std) of the source embeddings."""

from __future__ import annotations

from ..lazy import lazy_import
from . import register
from .base import InitInputs, Initializer

torch = lazy_import("torch")


@register
class RandomInit(Initializer):
    name = "random"

    def rows(self, inputs: InitInputs, target_ids: list[int]) -> tuple[torch.Tensor, list[str]]:
        reference = inputs.token_rows()
        mean, std = reference.mean(0), reference.std(0)
        noise = torch.randn(len(target_ids), reference.shape[1], generator=inputs.generator)
        return mean + noise * std, ["random"] * len(target_ids)
