"""Never save or report a NaN: finding non-finite values and saying where they are, in one line."""

from __future__ import annotations

import math

import torch

from .errors import TransplantError


def nonfinite_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Indices of the rows (first dimension) holding a NaN or an infinity."""
    if tensor.dim() == 0:
        return torch.nonzero(~torch.isfinite(tensor.reshape(1))).flatten()
    flat = tensor.detach().reshape(tensor.shape[0], -1)
    if flat.dtype.is_floating_point is False:
        return torch.empty(0, dtype=torch.long)
    return torch.nonzero(~torch.isfinite(flat).all(dim=1)).flatten()


def describe_rows(rows: torch.Tensor) -> str:
    first = int(rows[0])
    more = len(rows) - 1
    return f"row {first}" + (f" and {more} more row{'s' if more > 1 else ''}" if more else "")


def require_finite(tensor: torch.Tensor, what: str, hint: str = "") -> None:
    """Raise one clear line naming ``what`` and its first bad row if any value is NaN or infinite."""
    bad = nonfinite_rows(tensor)
    if len(bad):
        raise TransplantError(f"{what} has non-finite values (NaN or inf) in {describe_rows(bad)}" + (f"; {hint}" if hint else ""))


def require_finite_number(value: float | None, what: str) -> None:
    if value is not None and not math.isfinite(value):
        raise TransplantError(f"{what} is {value}: the model produced non-finite losses (NaN or inf weights?)")
