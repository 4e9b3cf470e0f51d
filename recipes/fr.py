"""French: SmolLM2-135M moved onto a French tokenizer, measured, and written as a report.

    PYTHONPATH=. python recipes/fr.py                 # full run on ../shared/corpus/fr.*.txt
    PYTHONPATH=. python recipes/fr.py --quick         # the same on a 300 KB slice (a few minutes)
    PYTHONPATH=. python recipes/fr.py --hub           # FineWeb-2 French from the hub instead
    PYTHONPATH=. python recipes/fr.py --all-methods   # compare every method

Writes recipe-out/fr/ (report.md, plots, the converted model in model/); finished steps are kept
in recipe-out/fr.work/ and reused by the next run (--force rebuilds them).
"""

from transplant.recipe import RecipeSpec, main

SPEC = RecipeSpec(
    language="fr",
    name="French",
    method="fvt",  # best of every method measured by this recipe (--all-methods): 2.1631 bits/byte (tokenadapt 2.1712, wechsel 2.2904, topk 2.2958, ...; recipes/README.md)
    compare=("mean", "wechsel"),
    vocab_size=32768,
    hub_config="fra_Latn",  # HuggingFaceFW/fineweb-2 subset for --hub
    text_note="The shared French text is technical documentation (Debian manuals, man pages, GNOME and LibreOffice help) plus the Louis Segond Bible (1910).",
)


if __name__ == "__main__":
    raise SystemExit(main(SPEC, __file__, __doc__))  # the six steps of transplant.recipe.every_step
