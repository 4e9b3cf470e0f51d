"""Chunk alignment between two tokenizations: chunks partition both sides, in order, for every family."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny import byte_level_bpe, lines, sentencepiece_bpe, wordpiece

from transplant.distill import align_chunks, align_text
from transplant.vocab import Vocabulary
from transplant.vocab.offsets import token_byte_ends

FAMILIES = {
    "byte_bpe": lambda: byte_level_bpe(600),
    "byte_bpe_other": lambda: byte_level_bpe(900, start=2000),
    "sentencepiece": lambda: sentencepiece_bpe(700),
    "wordpiece": lambda: wordpiece(600),
}
WORDS = [w for line in lines(0, 200) for w in line.split()][:2000]


@pytest.fixture(scope="module")
def vocabs():
    return {name: Vocabulary.from_tokenizer(build()) for name, build in FAMILIES.items()}


def text_strategy():
    piece = st.one_of(st.sampled_from(WORDS), st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\u2581"), max_size=5))
    return st.lists(piece, min_size=1, max_size=12).map(" ".join)


def test_byte_ends_of_split_characters_are_exact(vocabs):
    vocab = vocabs["byte_bpe"]
    text = "Größe über 日本 😀"
    encoding = vocab.tokenizer.backend_tokenizer.encode(text, add_special_tokens=False)
    ends = token_byte_ends(vocab, text, encoding.ids, encoding.offsets)
    # byte-level BPE without a normalizer: each token ends where its bytes end
    cumulative, total = [], 0
    for token_id in encoding.ids:
        total += len(vocab.surface(token_id))
        cumulative.append(total)
    assert ends == cumulative


@settings(max_examples=60, deadline=None)
@given(text=text_strategy(), pair=st.sampled_from([(a, b) for a in FAMILIES for b in FAMILIES]))
def test_chunks_partition_both_sides_in_order(vocabs, text, pair):
    teacher, student = vocabs[pair[0]], vocabs[pair[1]]
    teacher_ids, student_ids, chunks = align_text(text, teacher, student)
    teacher_cursor = student_cursor = 0
    previous_end = -1
    for chunk in chunks:
        assert chunk.teacher[0] == teacher_cursor and chunk.student[0] == student_cursor
        assert chunk.teacher[1] > chunk.teacher[0] and chunk.student[1] > chunk.student[0]
        assert chunk.byte_end > previous_end
        teacher_cursor, student_cursor, previous_end = chunk.teacher[1], chunk.student[1], chunk.byte_end
    assert teacher_cursor <= len(teacher_ids) and student_cursor <= len(student_ids)
    if text.strip() and pair[0] == pair[1]:
        assert [c.teacher for c in chunks] == [c.student for c in chunks]  # same tokenizer: 1 token a chunk
        assert teacher_cursor == len(teacher_ids)


@settings(max_examples=60, deadline=None)
@given(text=text_strategy())
def test_explicit_space_families_align_to_the_end(vocabs, text):
    # byte-level BPE and SentencePiece both keep every byte: every token is in some chunk
    teacher, student = vocabs["byte_bpe"], vocabs["byte_bpe_other"]
    teacher_ids, student_ids, chunks = align_text(text, teacher, student)
    if teacher_ids:
        assert chunks[-1].teacher[1] == len(teacher_ids) and chunks[-1].student[1] == len(student_ids)
        assert chunks[-1].byte_end == len(text.encode("utf-8"))
        for chunk in chunks:  # each chunk's bytes spell the same text on both sides
            t = b"".join(teacher.surface(i) for i in teacher_ids[chunk.teacher[0] : chunk.teacher[1]])
            s = b"".join(student.surface(i) for i in student_ids[chunk.student[0] : chunk.student[1]])
            assert t == s


def test_align_chunks_two_pointers():
    chunks = align_chunks([2, 3, 5, 8], [3, 4, 5, 6, 8, 9])
    assert [(c.teacher, c.student, c.byte_end) for c in chunks] == [((0, 2), (0, 1), 3), ((2, 3), (1, 3), 5), ((3, 4), (3, 5), 8)]
