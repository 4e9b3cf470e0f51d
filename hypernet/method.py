"""``hypernet``: a trained hypernetwork predicts each new token from the base model's pieces (ZeTT).

Train one with ``transplant hypernet train MODEL --corpus FILE -o DIR`` and pass ``--hypernet
DIR``; without ``--hypernet`` the built-in one whose base-model fingerprint matches the model's
embeddings is used (builtin.py). Untrained it equals ``fvt``; exact matches are copied as with
every method. A hypernetwork with a head part (``transplant hypernet train-head``) gives a tied
model's head rows of its own: the converted model is untied.

The method registers itself: ``transplant``'s registry finds it through the ``transplant.methods``
entry point in pyproject.toml, so the library never imports this package.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

from transplant.init import InitInputs, Initializer, option, register

if TYPE_CHECKING:
    import torch


@dataclass
class HypernetOptions:
    # a directory, or (Python API) a loaded Hypernet; None: the built-in one matching the model
    hypernet: object = option(None, "Directory written by `transplant hypernet train` (default: the built-in one for the model, see `transplant hypernet list`).", kind="path", accepts_objects=True)


@register
class HypernetInit(Initializer):
    name = "hypernet"
    Options = HypernetOptions
    needs = ("hypernetwork",)
    handles_bias = False  # a head's bias is rebuilt by fvt

    def check(self) -> None:
        self.model = None
        if self.options.hypernet is None:
            return  # a built-in one, chosen by the model's embeddings in rows()
        from .io import load
        from .model import Hypernet

        given = self.options.hypernet
        self.model = given if isinstance(given, Hypernet) else load(given)  # a bad directory fails before heavy work

    def unties_head(self, tied_rows: torch.Tensor) -> bool:
        """A hypernetwork with a head predictor for a tied model gives the head rows of its own."""
        return self._hypernet_for(tied_rows, "input").config.tied_head

    def _hypernet_for(self, rows: torch.Tensor, kind: str):
        """The given hypernetwork, or the built-in one trained for the model whose ``kind`` rows these are."""
        if self.model is None:
            from .builtin import matching_builtin
            from .io import load

            self.model = load(matching_builtin(rows, kind).directory)
        return self.model

    def rows(self, inputs: InitInputs, target_ids: list[int]) -> tuple[torch.Tensor, list[str]]:
        from .io import check_base
        from .model import predict

        hypernet = self._hypernet_for(inputs.source, inputs.kind)
        check_base(hypernet, inputs.source, inputs.kind)
        mapping = inputs.mapping
        decompositions = [mapping.pieces[t] if t < len(mapping.pieces) else [] for t in target_ids]
        result = predict(hypernet, mapping.source, decompositions, inputs.source, inputs.kind, inputs.token_rows().mean(0))
        names = ["hypernet" if any(p < len(inputs.source) for p in d) else "mean" for d in decompositions]
        return result, names
