"""``mean``: every new row is the mean of the source token embeddings."""

from __future__ import annotations

from ..lazy import lazy_import
from . import register
from .base import InitInputs, Initializer

torch = lazy_import("torch")


@register
class MeanInit(Initializer):
    name = "mean"

    def rows(self, inputs: InitInputs, target_ids: list[int]) -> tuple[torch.Tensor, list[str]]:
        mean = inputs.token_rows().mean(0)
        return mean.expand(len(target_ids), -1).clone(), ["mean"] * len(target_ids)
