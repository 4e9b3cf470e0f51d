"""German: SmolLM2-135M moved onto a German tokenizer, measured, and written as a report.

    PYTHONPATH=. python recipes/de.py                 # full run on ../shared/corpus/de.*.txt
    PYTHONPATH=. python recipes/de.py --quick         # the same on a 300 KB slice (a few minutes)
    PYTHONPATH=. python recipes/de.py --hub           # FineWeb-2 German from the hub instead
    PYTHONPATH=. python recipes/de.py --all-methods   # compare every method

Writes recipe-out/de/ (report.md, plots, the converted model in model/); finished steps are kept
in recipe-out/de.work/ and reused by the next run (--force rebuilds them).
"""

from transplant.recipe import RecipeSpec, main

SPEC = RecipeSpec(
    language="de",
    name="German",
    method="fvt",  # best of every method in bench/compare_methods.py (2.4084 bits/byte; tokenadapt 2.4283, topk 2.5398, wechsel 2.5854)
    compare=("mean", "wechsel"),
    vocab_size=32768,
    hub_config="deu_Latn",  # HuggingFaceFW/fineweb-2 subset for --hub
    text_note="The shared German text is technical documentation (Debian manuals, man pages, GNOME and LibreOffice help) plus the Elberfelder Bible (1932).",
)


if __name__ == "__main__":
    raise SystemExit(main(SPEC, __file__, __doc__))  # the six steps of transplant.recipe.every_step
