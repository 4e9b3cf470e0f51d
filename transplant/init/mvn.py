"""``mvn``: rows sampled from N(mean, scale * covariance) of the source embeddings.

This is what ``transformers``' ``resize_token_embeddings(mean_resizing=True)`` does (scale 1e-9,
falling back to the mean when the scaled covariance is not positive definite).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..lazy import lazy_import
from . import option, register
from .base import InitInputs, Initializer

torch = lazy_import("torch")


@dataclass
class MvnOptions:
    scale: float = option(1e-9, "Covariance scale of the normal the new rows are drawn from (the default is transformers' mean_resizing).", minimum=0, above_minimum=True)


@register
class MvnInit(Initializer):
    name = "mvn"
    Options = MvnOptions

    def rows(self, inputs: InitInputs, target_ids: list[int]) -> tuple[torch.Tensor, list[str]]:
        reference = inputs.token_rows().double()
        mean = reference.mean(0)
        centred = reference - mean
        covariance = centred.T @ centred / max(len(reference) - 1, 1) * self.options.scale
        try:
            factor = torch.linalg.cholesky(covariance)
        except RuntimeError:  # not positive definite
            return mean.float().expand(len(target_ids), -1).clone(), ["mean"] * len(target_ids)
        noise = torch.randn(len(target_ids), len(mean), generator=inputs.generator, dtype=torch.float64)
        return (mean + noise @ factor.T).float(), ["mvn"] * len(target_ids)
