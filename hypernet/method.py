"""``hypernet``: a trained hypernetwork predicts each new token from the base model's pieces (ZeTT).

Train one with ``transplant hypernet train MODEL --corpus FILE -o DIR`` and pass ``--hypernet
DIR``. Untrained it equals ``fvt``; exact matches are copied as with every method.

The method registers itself: ``transplant``'s registry finds it through the ``transplant.methods``
entry point in pyproject.toml, so the library never imports this package.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

from transplant.errors import TransplantError
from transplant.init import InitInputs, Initializer, option, register

if TYPE_CHECKING:
    import torch


@dataclass
class HypernetOptions:
    # a directory, or (Python API) a loaded Hypernet
    hypernet: object = option(None, "Directory written by `transplant hypernet train`.", kind="path", accepts_objects=True)


@register
class HypernetInit(Initializer):
    name = "hypernet"
    Options = HypernetOptions
    needs = ("hypernetwork",)
    handles_bias = False  # a head's bias is rebuilt by fvt

    def check(self) -> None:
        if self.options.hypernet is None:
            raise TransplantError("method 'hypernet' needs --hypernet DIR (train one with `transplant hypernet train`)")
        from .io import load
        from .model import Hypernet

        given = self.options.hypernet
        self.model = given if isinstance(given, Hypernet) else load(given)  # a bad directory fails before heavy work

    def rows(self, inputs: InitInputs, target_ids: list[int]) -> tuple[torch.Tensor, list[str]]:
        from .io import check_base
        from .model import predict

        check_base(self.model, inputs.source, inputs.kind)
        mapping = inputs.mapping
        decompositions = [mapping.pieces[t] if t < len(mapping.pieces) else [] for t in target_ids]
        result = predict(self.model, mapping.source, decompositions, inputs.source, inputs.kind, inputs.token_rows().mean(0))
        names = ["hypernet" if any(p < len(inputs.source) for p in d) else "mean" for d in decompositions]
        return result, names
