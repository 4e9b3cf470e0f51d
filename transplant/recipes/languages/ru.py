"""Russian: SmolLM2-135M moved onto a Russian tokenizer, measured, and written as a report.

    transplant recipe ru                 # full run on ../shared/corpus/ru.*.txt
    transplant recipe ru --quick         # the same on a 300 KB slice (a few minutes)
    transplant recipe ru --hub           # FineWeb-2 Russian from the hub instead
    transplant recipe ru --all-methods   # compare every method

Writes recipe-out/ru/ (report.md, plots, the converted model in model/); finished steps are kept
in recipe-out/ru.work/ and reused by the next run (--force rebuilds them).
"""

from ..spec import RecipeSpec

SPEC = RecipeSpec(
    language="ru",
    name="Russian",
    method="fvt",  # best of every method measured by this recipe (--all-methods): 1.6467 bits/byte (tokenadapt 1.6481, focus 1.7154, mvn 1.7550, ...; recipes/README.md)
    compare=("mean", "wechsel"),
    vocab_size=32768,
    hub_config="rus_Cyrl",  # HuggingFaceFW/fineweb-2 subset for --hub
    text_note="The shared Russian text is technical documentation (Debian manuals, man pages, GNOME and LibreOffice help) plus the Synodal Bible (1876).",
)
