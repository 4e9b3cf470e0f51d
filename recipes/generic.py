"""Any language: a model moved onto a new tokenizer for the language and text you name.

    PYTHONPATH=. python recipes/generic.py --language sw --corpus swahili.txt --dictionary en-sw.tsv
    PYTHONPATH=. python recipes/generic.py --language sw --hub HuggingFaceFW/fineweb-2:swh_Latn --dictionary muse
    PYTHONPATH=. python recipes/generic.py --language de --quick     # a language with shared text

Text comes from --corpus files (5% of their lines, chosen by hash, are held out unless
--held-out is given) or from a Hugging Face dataset with --hub DATASET:CONFIG (streamed, up to
--hub-bytes). With the default comparison (fvt, mean, wechsel), wechsel needs a bilingual
dictionary: --dictionary PATH, --dictionary muse (download), or --compare mean to skip it.
Writes recipe-out/LANG/ (report.md, plots, the converted model in model/).
"""

from transplant.recipe import RecipeSpec, main

SPEC = RecipeSpec(
    language="",  # --language is required
    name="",  # the language code is used
    method="fvt",  # the best measured in six of the seven languages of recipes/README.md (Arabic: focus)
    compare=("mean", "wechsel"),
    vocab_size=32768,
    hub_config=None,  # --hub needs DATASET:CONFIG, e.g. HuggingFaceFW/fineweb-2:swh_Latn
)


if __name__ == "__main__":
    raise SystemExit(main(SPEC, __file__, __doc__))  # the six steps of transplant.recipe.every_step
