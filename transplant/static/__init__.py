"""Static word embeddings (fastText) for the initialisers that measure similarity outside the model.

- :mod:`vectors`: ``.bin`` / ``.vec`` files behind one interface (:func:`load_vectors`);
- :mod:`training`: fastText training on a corpus, as words or as a tokenizer's tokens, cached;
- :mod:`download`: the published ``cc.LANG.300.bin`` models, cached;
- :mod:`tokens`: a vector for every token of a :class:`~transplant.vocab.Vocabulary`;
- :mod:`alignment`: bilingual dictionaries and orthogonal Procrustes;
- :mod:`obtain`: vectors as a method's options name them (a file, a language code or a corpus).
"""

from .alignment import (
    align,
    alignment_from_lookups,
    case_variants,
    dictionary_pairs,
    dictionary_vectors,
    procrustes,
    read_dictionary,
)
from .download import download_fasttext_vectors, resolve_vectors
from .obtain import obtain_vectors
from .tokens import LEVELS, token_string, token_text, token_vectors
from .training import FastTextParams, split_words, tokenizer_hash, train_fasttext
from .vectors import (
    FastTextVectors,
    StaticVectors,
    TextVectors,
    check_dimension,
    load_vectors,
    read_text_vectors,
)

__all__ = [
    "LEVELS",
    "FastTextParams",
    "FastTextVectors",
    "StaticVectors",
    "TextVectors",
    "align",
    "alignment_from_lookups",
    "case_variants",
    "check_dimension",
    "dictionary_pairs",
    "dictionary_vectors",
    "download_fasttext_vectors",
    "load_vectors",
    "obtain_vectors",
    "procrustes",
    "read_dictionary",
    "read_text_vectors",
    "resolve_vectors",
    "split_words",
    "token_string",
    "token_text",
    "token_vectors",
    "tokenizer_hash",
    "train_fasttext",
]
