"""Russian: SmolLM2-135M moved onto a Russian tokenizer, measured, and written as a report.

    PYTHONPATH=. python recipes/ru.py                 # full run on ../shared/corpus/ru.*.txt
    PYTHONPATH=. python recipes/ru.py --quick         # the same on a 300 KB slice (a few minutes)
    PYTHONPATH=. python recipes/ru.py --hub           # FineWeb-2 Russian from the hub instead
    PYTHONPATH=. python recipes/ru.py --all-methods   # compare every method

Writes recipe-out/ru/ (report.md, plots, the converted model in model/); finished steps are kept
in recipe-out/ru.work/ and reused by the next run (--force rebuilds them).
"""

from transplant.recipe import RecipeSpec, main

SPEC = RecipeSpec(
    language="ru",
    name="Russian",
    method="fvt",  # best of every method measured by this recipe (--all-methods): 1.6467 bits/byte (tokenadapt 1.6481, focus 1.7154, mvn 1.7550, ...; recipes/README.md)
    compare=("mean", "wechsel"),
    vocab_size=32768,
    hub_config="rus_Cyrl",  # HuggingFaceFW/fineweb-2 subset for --hub
    text_note="The shared Russian text is technical documentation (Debian manuals, man pages, GNOME and LibreOffice help) plus the Synodal Bible (1876).",
)


if __name__ == "__main__":
    raise SystemExit(main(SPEC, __file__, __doc__))  # the six steps of transplant.recipe.every_step
