"""Japanese: SmolLM2-135M moved onto a Japanese tokenizer, measured, and written as a report.

    transplant recipe ja                 # full run on ../shared/corpus/ja.*.txt
    transplant recipe ja --quick         # the same on a 300 KB slice (a few minutes)
    transplant recipe ja --hub           # FineWeb-2 Japanese from the hub instead
    transplant recipe ja --all-methods   # compare every method

Writes recipe-out/ja/ (report.md, plots, the converted model in model/); finished steps are kept
in recipe-out/ja.work/ and reused by the next run (--force rebuilds them).
"""

from ..spec import RecipeSpec

SPEC = RecipeSpec(
    language="ja",
    name="Japanese",
    method="fvt",  # best of every method measured by this recipe (--all-methods): 2.0210 bits/byte (tokenadapt 2.0416, focus 2.1208, mean 2.1728, ...; recipes/README.md)
    compare=("mean", "wechsel"),
    vocab_size=32768,
    hub_config="jpn_Jpan",  # HuggingFaceFW/fineweb-2 subset for --hub
    text_note="The shared Japanese text is technical documentation (Debian manuals, man pages, GNOME and LibreOffice help) and UI strings; no Bible.",
)
