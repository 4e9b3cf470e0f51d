"""Any language: a model moved onto a new tokenizer for the language and text you name.

    transplant recipe generic --language sw --corpus swahili.txt --dictionary en-sw.tsv
    transplant recipe generic --language sw --hub HuggingFaceFW/fineweb-2:swh_Latn --dictionary muse
    transplant recipe generic --language de --quick     # a language with shared text

Text comes from --corpus files (5% of their lines, chosen by hash, are held out unless
--held-out is given) or from a Hugging Face dataset with --hub DATASET:CONFIG (streamed, up to
--hub-bytes). With the default comparison (fvt, mean, wechsel), wechsel needs a bilingual
dictionary: --dictionary PATH, --dictionary muse (download), or --compare mean to skip it.
Writes recipe-out/LANG/ (report.md, plots, the converted model in model/).
"""

from ..spec import RecipeSpec

SPEC = RecipeSpec(
    language="",  # --language is required
    name="",  # the language code is used
    method="fvt",  # the best measured in six of the seven languages of recipes/README.md (Arabic: focus)
    compare=("mean", "wechsel"),
    vocab_size=32768,
    hub_config=None,  # --hub needs DATASET:CONFIG, e.g. HuggingFaceFW/fineweb-2:swh_Latn
)
