"""Static word vectors: fastText training and its cache, .vec files, token vectors, dictionaries,
Procrustes, and the one-line errors for inputs that cannot work."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import tiny
import torch

from transplant.errors import TransplantError
from transplant.static import (
    FastTextParams,
    TextVectors,
    align,
    download_fasttext_vectors,
    load_vectors,
    procrustes,
    read_dictionary,
    resolve_vectors,
    token_string,
    token_text,
    token_vectors,
    train_fasttext,
)
from transplant.vocab import Vocabulary

TINY = FastTextParams(dim=8, epochs=2, min_count=1, minn=2, maxn=4, bucket=20_000)  # few buckets diverge (NaN)


def _random_rotation(dim: int, seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))).float()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("static") / "de.txt"
    path.write_text("\n".join(tiny.lines(0, 200)) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# Procrustes and alignment


def test_procrustes_recovers_a_known_rotation():
    rotation = _random_rotation(16, seed=0)
    source = torch.randn(300, 16, generator=torch.Generator().manual_seed(1))
    target = source @ rotation + 0.001 * torch.randn(300, 16, generator=torch.Generator().manual_seed(2))
    found = procrustes(source, target)
    assert torch.allclose(found, rotation, atol=1e-3)
    assert torch.allclose(found @ found.T, torch.eye(16), atol=1e-5)  # orthogonal by construction


def test_align_finds_pairs_through_case_variants():
    rotation = _random_rotation(8, seed=3)
    generator = torch.Generator().manual_seed(4)
    english = ["house", "Tree", "water", "Fire", "stone", "bread", "light", "night", "day", "word", "king", "land"]
    vectors = torch.randn(len(english), 8, generator=generator)
    source = TextVectors({w: i for i, w in enumerate(english)}, vectors.numpy(), "en.vec")
    german = ["Haus", "baum", "Wasser", "feuer", "Stein", "Brot", "Licht", "Nacht", "Tag", "Wort", "König", "Land"]
    target = TextVectors({w: i for i, w in enumerate(german)}, (vectors @ rotation).numpy(), "de.vec")
    # as written, lower-cased or title-cased, on either side: every entry finds its pair
    dictionary = [("house", "haus"), ("tree", "Baum"), ("WATER", "wasser"), ("fire", "Feuer"), ("stone", "stein"),
                  ("bread", "brot"), ("light", "licht"), ("night", "nacht"), ("day", "tag"), ("word", "wort"),
                  ("king", "könig"), ("land", "Land"), ("unknown", "unbekannt")]
    found, pairs = align(source, target, dictionary)
    assert pairs == 12
    assert torch.allclose(found, rotation, atol=1e-4)


def test_dictionary_without_overlap_is_a_clear_error():
    source = TextVectors({"house": 0}, np.ones((1, 4)), "en.vec")
    target = TextVectors({"Haus": 0}, np.ones((1, 4)), "de.vec")
    with pytest.raises(TransplantError, match="no pair of dictionary .* has both words"):
        align(source, target, [("tree", "Baum"), ("water", "Wasser")])


def test_vectors_of_different_dimensions_are_a_clear_error(tmp_path):
    source = TextVectors({"house": 0}, np.ones((1, 4)), "en.vec")
    target = TextVectors({"haus": 0}, np.ones((1, 6)), "de.vec")
    with pytest.raises(TransplantError, match="differ in dimension: en.vec has 4, de.vec has 6"):
        align(source, target, [("house", "haus")])
    path = tmp_path / "de.vec"
    path.write_text("2 3\nhaus 1 2 3\nbaum 4 5 6\n", encoding="utf-8")
    with pytest.raises(TransplantError, match="has 3-dimensional vectors, expected 300"):
        load_vectors(path, expected_dim=300)


# ---------------------------------------------------------------------------------------------
# Dictionaries and .vec files


def test_read_dictionary_tab_muse_and_malformed_lines(tmp_path):
    path = tmp_path / "en-de.txt"
    path.write_text(
        "house\tHaus\n"
        "the tree\tder Baum\n"  # multi-word entries keep their spaces when tab-separated
        "water Wasser\n"  # MUSE: one space
        "\n"
        "lonely\n"  # one field
        "a\tb\tc\n"  # three fields
        "x y z\n"
        "fire\t\n",  # empty translation
        encoding="utf-8",
    )
    assert read_dictionary(path) == [("house", "Haus"), ("the tree", "der Baum"), ("water", "Wasser")]


def test_empty_dictionary_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty.tsv"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(TransplantError, match="has no word pairs"):
        read_dictionary(empty)
    malformed = tmp_path / "bad.tsv"
    malformed.write_text("one\na b c\n", encoding="utf-8")
    with pytest.raises(TransplantError, match="2 malformed"):
        read_dictionary(malformed)
    with pytest.raises(TransplantError, match="dictionary not found"):
        read_dictionary(tmp_path / "missing.tsv")


def test_read_vec_with_and_without_header(tmp_path):
    with_header = tmp_path / "a.vec"
    with_header.write_text("3 2\nhaus 1 0\nbaum 0 1\ntwo words 1 1\nbad 1\n", encoding="utf-8")
    vectors = load_vectors(with_header)
    assert vectors.dim == 2 and sorted(vectors.words()) == ["baum", "haus"]
    assert not vectors.subwords and vectors.vector("haus").tolist() == [1.0, 0.0]
    assert vectors.vector("häuser") is None  # a .vec file composes nothing
    without = tmp_path / "b.txt"
    without.write_text("haus 1 0 0\nbaum 0 1 0\n", encoding="utf-8")
    assert load_vectors(without).dim == 3
    with pytest.raises(TransplantError, match="vectors file not found"):
        load_vectors(tmp_path / "missing.bin")
    broken = tmp_path / "broken.bin"
    broken.write_bytes(b"not a fasttext model")
    with pytest.raises(TransplantError, match="cannot read fastText model"):
        load_vectors(broken)


# ---------------------------------------------------------------------------------------------
# fastText training and its cache


def test_train_fasttext_is_cached_by_corpus_tokenizer_and_params(tmp_path, corpus):
    first = train_fasttext(corpus, TINY, threads=1, directory=tmp_path)
    stamp = first.stat().st_mtime_ns
    again = train_fasttext(corpus, TINY, threads=2, directory=tmp_path)  # threads are not part of the key
    assert again == first and again.stat().st_mtime_ns == stamp
    other = train_fasttext(corpus, FastTextParams(**{**TINY.__dict__, "dim": 6}), threads=1, directory=tmp_path)
    assert other != first and load_vectors(other).dim == 6
    split = train_fasttext(corpus, TINY, words="split-punctuation", threads=1, directory=tmp_path)
    assert split != first and "," in load_vectors(split).words()
    edited = tmp_path / "edited.txt"
    edited.write_text(corpus.read_text(encoding="utf-8"), encoding="utf-8")
    before = train_fasttext(edited, TINY, threads=1, directory=tmp_path)
    os.utime(edited, ns=(time.time_ns(), time.time_ns() + 10**9))  # same size, new mtime
    assert train_fasttext(edited, TINY, threads=1, directory=tmp_path) != before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_token_level_training_writes_tokens_as_their_strings(tmp_path, corpus):
    tokenizer = tiny.byte_level_bpe(400, text=tiny.lines(0, 200))
    path = train_fasttext(corpus, TINY, tokenizer=tokenizer, threads=1, directory=tmp_path)
    vectors = load_vectors(path, expected_dim=8)
    vocabulary = Vocabulary.from_tokenizer(tokenizer)
    strings = {token_string(vocabulary, i) for i in range(len(vocabulary))}
    words = set(vectors.words()) - {"</s>"}
    assert words and words <= strings
    assert any(w.startswith("Ġ") for w in words)  # the tokenizer's own spelling, word-start marker included
    other = tiny.byte_level_bpe(300, text=tiny.lines(0, 200))
    assert train_fasttext(corpus, TINY, tokenizer=other, threads=1, directory=tmp_path) != path


def test_training_failures_are_clear(tmp_path, corpus):
    with pytest.raises(TransplantError, match="Empty vocabulary"):
        train_fasttext(corpus, FastTextParams(**{**TINY.__dict__, "min_count": 10**9}), threads=1, directory=tmp_path)
    with pytest.raises(TransplantError, match="corpus not found"):
        train_fasttext(tmp_path / "missing.txt", TINY, directory=tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(TransplantError, match="is empty"):
        train_fasttext(empty, TINY, directory=tmp_path)
    with pytest.raises(TransplantError, match="model must be one of"):
        train_fasttext(corpus, FastTextParams(model="glove"), directory=tmp_path)


# ---------------------------------------------------------------------------------------------
# Token vectors


def test_word_level_token_vectors(tmp_path, corpus):
    vectors = load_vectors(train_fasttext(corpus, TINY, threads=1, directory=tmp_path))
    tokenizer = tiny.byte_level_bpe(400, text=tiny.lines(0, 200))
    vocabulary = Vocabulary.from_tokenizer(tokenizer)
    matrix, known = token_vectors(vocabulary, vectors, level="word")
    ids = tokenizer.get_vocab()
    # the word-start marker is dropped: Ġund and und ask fastText for the same word
    assert known[ids["Ġund"]] and np.array_equal(matrix[ids["Ġund"]], matrix[ids["und"]])
    assert np.allclose(matrix[ids["Ġund"]], vectors.vector("und"))
    for index, key in enumerate(vocabulary.canonical):
        if key is None:  # special tokens
            assert not known[index]
        elif token_text(vocabulary, index) is None:  # a piece of a multi-byte character, or whitespace
            assert not known[index] and not matrix[index].any()
    assert not known[ids["Ã"]]  # 0xC3 alone is not UTF-8
    assert not known[ids["Ċ"]]  # a newline strips to nothing


def test_token_string_escapes_what_fasttext_splits_on():
    tokenizer = tiny.byte_level_bpe(300, text=tiny.lines(0, 100))
    tokenizer.add_tokens(["New York", "back\\slash"])
    vocabulary = Vocabulary.from_tokenizer(tokenizer)
    ids = tokenizer.get_vocab()
    assert token_string(vocabulary, ids["New York"]) == "New\\x20York"
    assert token_string(vocabulary, ids["back\\slash"]) == "back\\slash"  # nothing to escape: kept as is
    assert token_string(vocabulary, ids["Ġund"]) == "Ġund"
    assert token_string(vocabulary, ids["<|im_end|>"]) is None


# ---------------------------------------------------------------------------------------------
# The published cc.LANG.300.bin vectors


def test_download_offline_fails_fast_and_clearly(tmp_path):
    started = time.perf_counter()
    with pytest.raises(TransplantError, match="could not download .*pass its path to --source-vectors"):
        download_fasttext_vectors("xx", directory=tmp_path, timeout=3, url="https://fasttext-vectors.invalid/cc.xx.300.bin.gz")
    assert time.perf_counter() - started < 10
    assert not list(tmp_path.iterdir())  # no partial file left behind
    with pytest.raises(TransplantError, match="not a language code"):
        download_fasttext_vectors("../etc", directory=tmp_path)


def test_download_uses_the_cache(tmp_path, corpus):
    trained = train_fasttext(corpus, TINY, threads=1, directory=tmp_path / "trained")
    cached = tmp_path / "cc.xx.300.bin"
    cached.write_bytes(trained.read_bytes())
    assert download_fasttext_vectors("xx", directory=tmp_path, url="https://fasttext-vectors.invalid/x.gz") == cached
    assert resolve_vectors(trained).dim == 8  # a path is loaded as it is
    with pytest.raises(TransplantError, match="vectors file not found"):
        resolve_vectors(tmp_path / "nothing.vec")
