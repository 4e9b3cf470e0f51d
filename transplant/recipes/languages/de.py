"""German: SmolLM2-135M moved onto a German tokenizer, measured, and written as a report.

    transplant recipe de                 # full run on ../shared/corpus/de.*.txt
    transplant recipe de --quick         # the same on a 300 KB slice (a few minutes)
    transplant recipe de --hub           # FineWeb-2 German from the hub instead
    transplant recipe de --all-methods   # compare every method

Writes recipe-out/de/ (report.md, plots, the converted model in model/); finished steps are kept
in recipe-out/de.work/ and reused by the next run (--force rebuilds them).
"""

from ..spec import RecipeSpec

SPEC = RecipeSpec(
    language="de",
    name="German",
    method="fvt",  # best of every method in bench/compare_methods (2.4084 bits/byte; tokenadapt 2.4283, topk 2.5398, wechsel 2.5854)
    compare=("mean", "wechsel"),
    vocab_size=32768,
    hub_config="deu_Latn",  # HuggingFaceFW/fineweb-2 subset for --hub
    text_note="The shared German text is technical documentation (Debian manuals, man pages, GNOME and LibreOffice help) plus the Elberfelder Bible (1932).",
)
