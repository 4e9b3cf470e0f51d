"""Chinese: SmolLM2-135M moved onto a Chinese tokenizer, measured, and written as a report.

    transplant recipe zh                 # full run on ../shared/corpus/zh.*.txt
    transplant recipe zh --quick         # the same on a 300 KB slice (a few minutes)
    transplant recipe zh --hub           # FineWeb-2 Chinese from the hub instead
    transplant recipe zh --all-methods   # compare every method

Writes recipe-out/zh/ (report.md, plots, the converted model in model/); finished steps are kept
in recipe-out/zh.work/ and reused by the next run (--force rebuilds them).
"""

from ..spec import RecipeSpec

SPEC = RecipeSpec(
    language="zh",
    name="Chinese",
    method="fvt",  # best of every method measured by this recipe (--all-methods): 2.7035 bits/byte (tokenadapt 2.7870, focus 2.9327, wechsel 3.0224, ...; recipes/README.md)
    compare=("mean", "wechsel"),
    vocab_size=32768,
    hub_config="cmn_Hani",  # HuggingFaceFW/fineweb-2 subset for --hub
    text_note="The shared Chinese text is technical documentation (Debian manuals, man pages, GNOME and LibreOffice help) plus the Chinese Union Version Bible.",
)
