"""French: SmolLM2-135M moved onto a French tokenizer, measured, and written as a report.

    transplant recipe fr                 # full run on ../shared/corpus/fr.*.txt
    transplant recipe fr --quick         # the same on a 300 KB slice (a few minutes)
    transplant recipe fr --hub           # FineWeb-2 French from the hub instead
    transplant recipe fr --all-methods   # compare every method

Writes recipe-out/fr/ (report.md, plots, the converted model in model/); finished steps are kept
in recipe-out/fr.work/ and reused by the next run (--force rebuilds them).
"""

from ..spec import RecipeSpec

SPEC = RecipeSpec(
    language="fr",
    name="French",
    method="fvt",  # best of every method measured by this recipe (--all-methods): 2.1631 bits/byte (tokenadapt 2.1712, wechsel 2.2904, topk 2.2958, ...; recipes/README.md)
    compare=("mean", "wechsel"),
    vocab_size=32768,
    hub_config="fra_Latn",  # HuggingFaceFW/fineweb-2 subset for --hub
    text_note="The shared French text is technical documentation (Debian manuals, man pages, GNOME and LibreOffice help) plus the Louis Segond Bible (1910).",
)
