"""How much a bfloat16 teacher changes SmolLM2-135M's own bits per byte, the signal distillation copies.

    python bench/teacher_dtype.py de ru          # 20 KB of ../shared/corpus/LANG.test.txt each, one thread

Measured (one thread, the other core busy or idle): de 1.8576 (float32) vs 1.8573 (bfloat16), 37-58 s vs 13-19 s;
ru 1.1859 vs 1.1863, 37 s vs 16 s. Hence `distill`'s default teacher dtype (README, distillation).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"


def main() -> None:
    import torch

    from transplant.checkpoint import resolve_model_dir
    from transplant.demo import smollm2_gguf
    from transplant.evaluate import bits_per_byte, read_text
    from transplant.loading import load_model, load_tokenizer

    torch.set_num_threads(1)
    model_dir = resolve_model_dir(smollm2_gguf())
    tokenizer = load_tokenizer(model_dir)
    for language in sys.argv[1:] or ["de"]:
        text = read_text(SHARED / "corpus" / f"{language}.test.txt", 20_000)
        for dtype in (torch.float32, torch.bfloat16):
            started = time.perf_counter()
            result = bits_per_byte(load_model(model_dir, dtype=dtype).eval(), tokenizer, text, label=str(dtype), file=language, progress=False)
            print(f"{language} {str(dtype).removeprefix('torch.')}: {result.bits_per_byte:.4f} bits/byte, {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
