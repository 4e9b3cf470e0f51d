"""Training text from several corpora (one per language), mixed per step.

With ``mixing="step"`` each step draws one corpus, then its text rows and the text of its
sampled tokenizer from that corpus alone, so a step's tokenizer fits its text as a per-language
tokenizer would. With ``mixing="row"`` each text row draws its own corpus and the tokenizer's
text is shared evenly among the rows' corpora (a multilingual tokenizer), so every step's
gradient averages over several languages instead of following one. A corpus is drawn with probability proportional to ``bytes ** alpha`` (size-tempered sampling, as in
multilingual pretraining): ``alpha = 1`` follows the sizes, ``alpha = 0`` is uniform, and the
default 0.3 lifts small languages without ignoring size. With one corpus nothing is drawn, so a
single-corpus run is what it was before several were supported.
"""

from __future__ import annotations

from pathlib import Path

import torch

from transplant.errors import TransplantError
from transplant.text import held_out_tail


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
        self.lines[0], held_out = held_out_tail(self.lines[0], max_bytes=size)  # the split the demo and recipes use
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

    def draw_batch(self, mixing: str, rows: int, row_bytes: int, tokenizer_bytes: int, generator: torch.Generator) -> tuple[list[int], list[str], str]:
        """(each row's corpus, the rows' texts, the text the step's tokenizer is sampled from)."""
        if mixing == "step":
            corpus = self.draw(generator)
            chosen = [corpus] * rows
            texts = [self.text(corpus, row_bytes, generator) for _ in range(rows)]
            return chosen, texts, self.text(corpus, tokenizer_bytes, generator)
        if mixing != "row":
            raise TransplantError(f"corpus mixing must be 'step' or 'row', not '{mixing}'")
        chosen = [self.draw(generator) for _ in range(rows)]
        texts = [self.text(corpus, row_bytes, generator) for corpus in chosen]
        return chosen, texts, "".join(self.text(corpus, tokenizer_bytes // rows, generator) for corpus in chosen)

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
