"""Arabic: SmolLM2-135M moved onto a Arabic tokenizer, measured, and written as a report.

    transplant recipe ar                 # full run on ../shared/corpus/ar.*.txt
    transplant recipe ar --quick         # the same on a 300 KB slice (a few minutes)
    transplant recipe ar --hub           # FineWeb-2 Arabic from the hub instead
    transplant recipe ar --all-methods   # compare every method

Writes recipe-out/ar/ (report.md, plots, the converted model in model/); finished steps are kept
in recipe-out/ar.work/ and reused by the next run (--force rebuilds them).
"""

from ..spec import RecipeSpec

SPEC = RecipeSpec(
    language="ar",
    name="Arabic",
    method="focus",  # best of every method measured by this recipe (--all-methods): 2.1727 bits/byte (topk 2.3460, fvt 2.3567, tokenadapt 2.3590, ...; recipes/README.md)
    compare=("fvt", "mean"),  # fvt: the default everywhere else
    vocab_size=32768,
    hub_config="arb_Arab",  # HuggingFaceFW/fineweb-2 subset for --hub
    text_note="The shared Arabic text is mostly scripture (the Smith–Van Dyke Bible) with some technical documentation.",
)
