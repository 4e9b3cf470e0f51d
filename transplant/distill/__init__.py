"""Cross-tokenizer distillation (approximate likelihood matching) from the original model into a
transplanted one: alignment (:mod:`.align`), examples (:mod:`.data`), losses (:mod:`.losses`,
:mod:`.objectives`), what is trained (:mod:`.trainable`) and the loop (:mod:`.trainer`)."""

from .align import Chunk, align_chunks, align_text
from .objectives import AlmOptions
from .trainer import DistillConfig, DistillResult, distill

__all__ = ["AlmOptions", "Chunk", "DistillConfig", "DistillResult", "align_chunks", "align_text", "distill"]
