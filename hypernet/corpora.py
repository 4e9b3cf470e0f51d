"""Training text from several corpora (one per language), mixed per step.

Each step draws one corpus, then its text rows and the text of its sampled tokenizer from that
corpus alone, so a step's tokenizer fits its text as a per-language tokenizer would. The corpus
is drawn with probability proportional to ``bytes ** alpha`` (size-tempered sampling, as in
multilingual pretraining): ``alpha = 1`` follows the sizes, ``alpha = 0`` is uniform, and the
default 0.3 lifts small languages without ignoring size. With one corpus nothing is drawn, so a
single-corpus run is what it was before several were supported.
"""

from __future__ import annotations

from pathlib import Path

import torch

from transplant.errors import TransplantError


class Corpora:
    def __init__(self, files: list[str | Path], alpha: float = 0.3):
        from transplant.tokenizer_training import corpus_lines

        if not 0.0 <= alpha <= 1.0:
            raise TransplantError(f"the corpus mixing exponent must be between 0 and 1, not {alpha}")
        if not files:
            raise TransplantError("no corpus given: pass --corpus FILE")
        self.names = [str(f) for f in files]
        self.lines = [corpus_lines([f]) for f in files]
        self.alpha = alpha

    def hold_out_tail(self, size: int) -> str:
        """The first corpus's last lines, about ``size`` bytes, removed from training."""
        lines, held_out, total = self.lines[0], [], 0
        while total < size and len(lines) > 1:
            held_out.insert(0, lines.pop())
            total += len(held_out[0].encode("utf-8")) + 1
        return "\n".join(held_out) + "\n"

    def probabilities(self) -> torch.Tensor:
        sizes = torch.tensor([sum(len(line.encode("utf-8")) + 1 for line in lines) for lines in self.lines], dtype=torch.float64)
        weights = sizes**self.alpha
        return weights / weights.sum()

    def draw(self, generator: torch.Generator) -> int:
        """The corpus of one step."""
        if len(self.lines) == 1:
            return 0
        if not hasattr(self, "_probabilities"):
            self._probabilities = self.probabilities()
        return int(torch.multinomial(self._probabilities, 1, generator=generator))

    def text(self, corpus: int, size: int, generator: torch.Generator) -> str:
        """Consecutive lines from a random place in ``corpus``, about ``size`` bytes."""
        lines = self.lines[corpus]
        start = int(torch.randint(len(lines), (), generator=generator))
        out, total = [], 0
        while total < size:
            line = lines[start % len(lines)]
            out.append(line)
            total += len(line.encode("utf-8")) + 1
            start += 1
        return "\n".join(out) + "\n"
