"""Cross-tokenizer distillation (approximate likelihood matching). Alignment first; losses and
the trainer follow in their own modules."""

from .align import Chunk, align_chunks, align_text

__all__ = ["Chunk", "align_chunks", "align_text"]
