"""Never save or report a NaN: finding non-finite values and saying where they are, in one line."""

from __future__ import annotations

import math

import torch

from .errors import TransplantError


ROWS_AT_ONCE = 65536  # a bool mask of the whole of a 1M x 576 matrix would be 0.6 GB


def nonfinite_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Indices of the rows (first dimension) holding a NaN or an infinity."""
    if not tensor.dtype.is_floating_point or tensor.numel() == 0:
        return torch.empty(0, dtype=torch.long)
    flat = tensor.detach().reshape(tensor.shape[0] if tensor.dim() else 1, -1)
    found = [
        start + torch.nonzero(~torch.isfinite(flat[start : start + ROWS_AT_ONCE]).all(dim=1)).flatten()
        for start in range(0, len(flat), ROWS_AT_ONCE)
    ]
    return torch.cat(found) if found else torch.empty(0, dtype=torch.long)


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
