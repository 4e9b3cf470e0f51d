"""The vocabulary layer: the only code that knows tokenizer families.

- :mod:`canonical`: family detection and canonical ``(bytes, word_start)`` per token;
- :mod:`vocabulary`: a tokenizer's ids, special tokens and roles;
- :mod:`mapping`: shared tokens and decompositions between two vocabularies;
- :mod:`averaging`: a token as the mean of the source rows that spell it (fvt's rows).
"""

from .averaging import decomposition_mean
from .canonical import TokenizerStyle, detect_style, surface_bytes, token_bytes
from .mapping import VocabMapping, build_mapping, segment
from .special import add_missing_special_tokens, match_special_tokens, missing_special_tokens
from .vocabulary import ROLES, Vocabulary, boundary_token_mask

__all__ = [
    "ROLES",
    "TokenizerStyle",
    "add_missing_special_tokens",
    "boundary_token_mask",
    "decomposition_mean",
    "match_special_tokens",
    "Vocabulary",
    "VocabMapping",
    "build_mapping",
    "detect_style",
    "missing_special_tokens",
    "segment",
    "surface_bytes",
    "token_bytes",
]
