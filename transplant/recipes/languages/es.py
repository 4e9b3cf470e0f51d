"""Spanish: SmolLM2-135M moved onto a Spanish tokenizer, measured, and written as a report.

    transplant recipe es                 # full run on ../shared/corpus/es.*.txt
    transplant recipe es --quick         # the same on a 300 KB slice (a few minutes)
    transplant recipe es --hub           # FineWeb-2 Spanish from the hub instead
    transplant recipe es --all-methods   # compare every method

Writes recipe-out/es/ (report.md, plots, the converted model in model/); finished steps are kept
in recipe-out/es.work/ and reused by the next run (--force rebuilds them).
"""

from ..spec import RecipeSpec

SPEC = RecipeSpec(
    language="es",
    name="Spanish",
    method="fvt",  # best of every method measured by this recipe (--all-methods): 2.2905 bits/byte (tokenadapt 2.2987, wechsel 2.3900, focus 2.4358, ...; recipes/README.md)
    compare=("mean", "wechsel"),
    vocab_size=32768,
    hub_config="spa_Latn",  # HuggingFaceFW/fineweb-2 subset for --hub
    text_note="The shared Spanish text is technical documentation (Debian manuals, man pages, GNOME and LibreOffice help) plus the Reina-Valera Bible (1909).",
)
