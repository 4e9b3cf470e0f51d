"""What one Token Distillation run does: its sizes, rates and budgets (no torch here, so that
the ``tokendistill`` method can declare its defaults from these without loading it)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import TransplantError


@dataclass
class DistillSettings:
    # Chosen for CPU budgets (the paper: 100 snippets of 50 tokens, lr 1e-4, on GPUs). On SmolLM2
    # -> German 32k, 16 tokens x 8 snippets, the loss on each token's 8th snippet (not yet trained
    # on) after 7 steps: lr 3e-3 0.159, 1e-2 0.116, 3e-2 0.090 (from 0.279 at the fvt rows).
    snippets_per_token: int = 8
    snippet_length: int = 32  # source tokens per snippet, the start-of-text token included
    tokens_per_step: int = 32
    learning_rate: float = 3e-2
    layer: int = -1
    head_ntp: bool = False
    # head_ntp's rate: with lr 3e-2 the head rows made their tokens win everywhere (10.40 bits/byte
    # on SmolLM2 -> German, 64 tokens), with 1e-3 they beat the init rows (2.3074 against 2.3704)
    head_learning_rate: float | None = 1e-3
    max_seconds: float | None = None
    checkpoint_every: int = 1  # groups
    seed: int = 0

    def check(self) -> None:
        for name in ("snippets_per_token", "snippet_length", "tokens_per_step", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TransplantError(f"tokendistill: {name.replace('_', '-')} must be an integer >= 1, not {value!r}")
        if self.snippet_length < 4:
            raise TransplantError("tokendistill: snippet-length must be at least 4 source tokens")
        for rate in (self.learning_rate, self.head_learning_rate):
            if rate is not None and not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
                raise TransplantError(f"tokendistill: learning rates must be > 0, not {rate!r}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise TransplantError(f"tokendistill: max-seconds must be > 0, not {self.max_seconds!r}")
