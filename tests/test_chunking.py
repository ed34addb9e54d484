"""``chunk_words``: word windows that are verbatim slices of the text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semtoken_rag.core.segment import find_words
from semtoken_rag.errors import InvalidInputError
from semtoken_rag.ingestion.chunking import chunk_words


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text("abc xyz.,\n", min_size=1, max_size=8), max_size=60).map(" ".join),
    st.integers(1, 12),
    st.integers(0, 11),
)
def test_chunk_words_properties(text, size, overlap):
    """Verbatim slices; 1..size words each; together (less the overlaps) exactly the text's
    words in order; consecutive windows share ``overlap`` words."""
    overlap = min(overlap, size - 1)
    chunks = chunk_words(text, size, overlap)
    words = [text[a:b] for a, b in find_words(text).tolist()]
    assert bool(chunks) == bool(words)
    covered: list[str] = []
    previous: list[str] = []
    for i, c in enumerate(chunks):
        assert c in text and c == c.strip()
        cw = [c[a:b] for a, b in find_words(c).tolist()]
        assert 1 <= len(cw) <= size
        if i:
            assert cw[:overlap] == previous[len(previous) - overlap :]
            assert i == len(chunks) - 1 or len(previous) == size
        covered.extend(cw if i == 0 else cw[overlap:])
        previous = cw
    assert covered == words


def test_chunk_words_examples():
    text = "one two  three\nfour five six seven"
    assert chunk_words(text, 3) == ["one two  three", "four five six", "seven"]
    assert chunk_words(text, 3, 1) == ["one two  three", "three\nfour five", "five six seven"]
    assert chunk_words(text, 10) == [text]
    assert chunk_words("   \n ", 4) == [] and chunk_words("", 4) == []


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (-1, 0), (3, 3), (3, -1), (3, 4)])
def test_chunk_words_rejects_bad_sizes(size, overlap):
    with pytest.raises(InvalidInputError):
        chunk_words("a b", size, overlap)
