"""The document store serves any chunk cut from a stored document: whatever the splitter, the
whitespace or a cut word; never an edited chunk, another encoder's vectors, a case variant or a
non-finite vector.  Fast tests use the fake encoder over real NarrativeQA prose; the last test
runs the real MiniLM with real LangChain and LlamaIndex splitters."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import numpy as np
import pytest

from semtoken_rag.core.segment import find_words
from semtoken_rag.errors import InvalidInputError
from semtoken_rag.fingerprints import ChunkFingerprints, ChunkSource, fingerprint_key
from semtoken_rag.ingestion import DocumentEncodingError, SourceDocument
from semtoken_rag.ingestion.chunking import chunk_words
from semtoken_rag.store import (
    CodebookChangedError,
    DocumentFingerprints,
    FingerprintStore,
    encode_documents,
)
from tests.fakes import FakeEncoder
from tests.store_helpers import (
    GUARANTEED_WORDS,
    SMALL_PQ,
    close_enough,
    encoded,
    expected_slice,
    fill,
    long_texts,
    narrative_documents,
    same_exactly,
    word_index,
    words_slice,
)


@pytest.fixture(scope="module")
def corpus(shared_data):
    """Ten real documents, the fake encoder, each document's fingerprints (the reference)."""
    docs = narrative_documents(shared_data, 10)
    enc = FakeEncoder()
    return docs, enc, enc.encode_texts(docs)


@pytest.fixture
def stored(corpus):
    """A float32 store holding the ten documents (served vectors are then bit-exact)."""
    docs, enc, _ = corpus
    with FingerprintStore(codec="float32") as s:
        fill(s, enc, docs)
        yield s


def _check_served(
    store: FingerprintStore,
    enc: FakeEncoder,
    refs: Sequence[ChunkFingerprints],
    cuts: Sequence[tuple[int, int, str]],
    sources: Sequence[ChunkSource | None] | None = None,
) -> tuple[int, int]:
    """Look up chunks ``(document, first word, text)``; every served chunk must be exactly the
    document's vectors for its words, and every chunk of at least ``GUARANTEED_WORDS`` words
    must be served.  Returns ``(served, guaranteed)``."""
    got = store.lookup([c for _, _, c in cuts], enc.cache_id, sources)
    guaranteed = served = 0
    for (doc, first, chunk), g in zip(cuts, got, strict=True):
        n = len(find_words(chunk))
        if n >= GUARANTEED_WORDS:
            guaranteed += 1
            assert g is not None, f"not served: {chunk[:60]!r}"
        if g is not None:
            served += 1
            assert same_exactly(g, expected_slice(refs[doc], first, chunk)), chunk[:60]
    return served, guaranteed


# -- splitters ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["plain", "start_index", "start_index_as_source"])
def test_recursive_character_splitter_chunks_are_served(corpus, stored, mode):
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    docs, enc, refs = corpus
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=500, chunk_overlap=80, add_start_index=mode != "plain"
    )
    cuts, sources = [], []
    for d in splitter.create_documents(docs, [{"doc": i} for i in range(10)]):
        doc = docs[d.metadata["doc"]]
        start = d.metadata.get("start_index", doc.find(d.page_content))
        assert doc[start : start + len(d.page_content)] == d.page_content
        cuts.append((d.metadata["doc"], word_index(doc, start), d.page_content))
        sources.append(ChunkSource(start=start))
    served, guaranteed = _check_served(
        stored, enc, refs, cuts, sources if mode == "start_index_as_source" else None
    )
    assert guaranteed >= 70 and served >= guaranteed
    assert stored.stats().hits == served and stored.stats().misses == len(cuts) - served


@pytest.mark.parametrize(("size", "overlap"), [(50, 10), (120, 30), (19, 18)])
def test_word_window_chunks_are_served(corpus, stored, size, overlap):
    docs, enc, refs = corpus
    cuts = []
    for i, doc in enumerate(docs):
        n = len(find_words(doc))
        for lo in range(0, n, size - overlap):
            cuts.append((i, lo, words_slice(doc, lo, min(lo + size, n))))
            if lo + size >= n:
                break
    assert [c for i, _, c in cuts if i == 0] == chunk_words(docs[0], size, overlap)
    served, guaranteed = _check_served(stored, enc, refs, cuts)
    assert served >= guaranteed >= len(cuts) - 3 * len(docs)  # only tail windows may be short


@pytest.mark.parametrize(
    "reshape",
    [
        lambda c: c.replace("\n", " "),
        lambda c: " ".join(c.split()),
        lambda c: "  ".join(c.split()),
        lambda c: "\n".join(c.split()),
        lambda c: "\t " + "\n\n".join(c.split(" ")) + " \r\n",
        lambda c: "\u00a0".join(c.split()),  # no-break spaces
    ],
    ids=["newlines-to-spaces", "single-spaces", "double-spaces", "a-word-per-line",
         "paragraphs-and-padding", "no-break-spaces"],
)  # fmt: skip
def test_chunks_whose_whitespace_differs_are_served(corpus, stored, reshape):
    docs, enc, refs = corpus
    cuts = [(i, lo, reshape(words_slice(d, lo, lo + 60))) for i, d in enumerate(docs)
            for lo in (0, 37, 140)]  # fmt: skip
    assert any(c != words_slice(docs[i], lo, lo + 60) for i, lo, c in cuts)
    served, guaranteed = _check_served(stored, enc, refs, cuts)
    assert served == guaranteed == len(cuts)


def test_chunks_cut_inside_words_serve_the_whole_words(corpus, stored):
    """A character window (a token or character splitter) cuts its first and last word; each
    fragment is served the vector of the whole word it was cut from."""
    docs, enc, refs = corpus
    cuts = []
    for i, doc in enumerate(docs):
        spans = find_words(doc)
        for w in range(3, len(spans) - 80, 45):
            a = int(spans[w, 0]) + 1  # inside word w
            b = int(spans[w + 60, 1]) - 1  # inside word w + 60
            if spans[w, 1] - spans[w, 0] > 1 and spans[w + 60, 1] - spans[w + 60, 0] > 1:
                cuts.append((i, w, doc[a:b]))
    assert len(cuts) > 50
    got = stored.lookup([c for _, _, c in cuts], enc.cache_id)
    for (i, w, chunk), g in zip(cuts, got, strict=True):
        ref = expected_slice(refs[i], w, chunk)
        assert ref.n_words == 61 and same_exactly(g, ref), chunk[:40]
        np.testing.assert_array_equal(g.vectors[0], refs[i].vectors[w])  # the whole word's


def test_character_windows_of_every_offset_are_served(corpus, stored):
    """Fixed windows of 400 characters every 333: starts and ends fall anywhere (inside words,
    on spaces, on punctuation)."""
    docs, enc, refs = corpus
    cuts = [(i, word_index(d, a), d[a : a + 400]) for i, d in enumerate(docs)
            for a in range(0, len(d) - 400, 333)]  # fmt: skip
    served, guaranteed = _check_served(stored, enc, refs, cuts)
    assert served == guaranteed == len(cuts)


@pytest.mark.parametrize("hint", [False, True], ids=["no-hint", "name-and-start"])
@pytest.mark.parametrize("edge", ["first", "last"])
def test_an_edited_document_ingested_again_serves_its_own_edge_words(corpus, edge, hint):
    """An edit that shortens a chunk's first word ("25" -> "5") or last ("15000" -> "150")
    leaves the chunk inside the old version, cut inside a word as a token splitter cuts.  Once
    the new version is ingested too (same name), its whole words are served, not the old
    version's (stored first, so it used to win the tie); before, the old words' vectors were
    the only ones to serve, as docs/store.md says."""
    docs, enc, _ = corpus
    text = words_slice(docs[5], 0, 300)
    spans = find_words(text).tolist()

    def edited(first_word: str, last_word: str) -> str:
        (a, b), (c, d) = spans[40], spans[140]
        return text[:a] + first_word + text[b:c] + last_word + text[d:]

    v1, v2 = edited("25", "15000"), edited("5", "150")
    first, last = (40, 100) if edge == "first" else (80, 141)
    chunk = words_slice(v2, first, last)
    assert chunk.startswith("5 ") if edge == "first" else chunk.endswith(" 150")
    source = [ChunkSource("report.txt", v2.index(chunk))] if hint else None
    with FingerprintStore(codec="float32") as s:
        fill(s, enc, [SourceDocument(v1, names=("report.txt",))])
        (before,) = s.lookup([chunk], enc.cache_id, source)
        assert same_exactly(before, expected_slice(enc.encode_texts([v1])[0], first, chunk))
        fill(s, enc, [SourceDocument(v2, names=("report.txt",))])
        (after,) = s.lookup([chunk], enc.cache_id, source)
    assert same_exactly(after, expected_slice(enc.encode_texts([v2])[0], first, chunk))


@pytest.mark.parametrize("hint", ["none", "name", "name-and-start"])
def test_a_chunk_of_an_edited_document_ingested_again_is_served_from_its_new_version(corpus, hint):
    """A chunk ending just before an edited word reads the same in both versions, but its
    fingerprints are contextual: once the new version is ingested (same name), its vectors are
    served, not the old version's (stored first, it used to win every tie)."""
    docs, enc, _ = corpus
    v1 = words_slice(docs[6], 0, 300)
    a, b = find_words(v1)[100].tolist()
    v2 = v1[:a] + "zeppelin" + v1[b:]
    chunk = words_slice(v2, 40, 100)
    assert chunk == words_slice(v1, 40, 100)
    sources = {
        "none": None,
        "name": [ChunkSource("report.txt")],
        "name-and-start": [ChunkSource("report.txt", v2.index(chunk))],
    }[hint]
    with FingerprintStore(codec="float32") as s:
        fill(s, enc, [SourceDocument(v1, names=("report.txt",))])
        fill(s, enc, [SourceDocument(v2, names=("report.txt",))])
        (got,) = s.lookup([chunk], enc.cache_id, sources)
    old, new = (expected_slice(enc.encode_texts([v])[0], 40, chunk) for v in (v1, v2))
    assert not same_exactly(old, new) and same_exactly(got, new)


# -- what must not be served ----------------------------------------------------------------------
def test_an_edited_chunk_is_never_served(corpus, stored):
    docs, enc, _ = corpus
    chunk = words_slice(docs[3], 40, 120)
    words = chunk.split(" ")
    changed = [*words[:30], "zeppelin", *words[31:]]
    inserted = [*words[:30], "zeppelin", *words[30:]]
    deleted = [*words[:30], *words[31:]]
    swapped = [*words[:30], words[31], words[30], *words[32:]]
    first_word = ["Zeppelin", *words[1:]]  # not a fragment of the stored first word
    last_word = [*words[:-1], "zeppelin"]
    spliced = words_slice(docs[3], 40, 80) + " " + words_slice(docs[4], 40, 80)  # two documents
    variants = [" ".join(v) for v in (changed, inserted, deleted, swapped, first_word, last_word)]
    assert stored.lookup([chunk], enc.cache_id)[0] is not None
    assert stored.lookup([*variants, spliced], enc.cache_id) == [None] * 7


def test_a_case_difference_is_not_served(corpus, stored):
    docs, enc, _ = corpus
    chunk = words_slice(docs[2], 10, 90)
    assert stored.lookup([chunk], enc.cache_id)[0] is not None
    assert (
        stored.lookup([chunk.upper(), chunk.lower(), chunk.swapcase()], enc.cache_id) == [None] * 3
    )


def test_chunks_found_nowhere_are_misses_never_errors(corpus, stored):
    docs, enc, _ = corpus
    one_word = words_slice(docs[0], 50, 51)
    three_words = words_slice(docs[0], 50, 53)  # shorter than a shingle
    odd = ["", "   \n\t", one_word, three_words, "?!", "\ud800 lone surrogate \udfff",
           "words that appear in no stored document at all, not one of them " * 3,
           "ＡＢＣ", "\x00\x1f control", "x" * 5000]  # fmt: skip
    got = stored.lookup(odd, enc.cache_id, [None, ChunkSource("nowhere", 10**9)] + [None] * 8)
    assert got[0] is None and got[1] is None
    assert all(g is None for g in got[4:])
    for text, g in zip(odd[2:4], got[2:4], strict=True):  # no shingle to find them by
        assert g is None or g.n_words == len(find_words(text))


def test_short_chunks_are_served_once_the_engine_puts_them(corpus, stored):
    """Chunks too short to be found inside a document are stored by the engine as documents of
    their own when encoded, and served by their exact text afterwards."""
    docs, enc, _ = corpus
    short = [words_slice(docs[0], 50, 51), words_slice(docs[0], 50, 53), "?!", "ＡＢＣ"]
    stored.put(short, enc.encode_texts(short), enc.cache_id)
    got = stored.lookup(short, enc.cache_id)
    assert all(same_exactly(g, fp) for g, fp in zip(got, enc.encode_texts(short), strict=True))


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_an_empty_chunk_is_served_once_put(text):
    """A chunk without words has the empty fingerprints; once the engine put them the store
    must serve them (as format 2 did) instead of a miss that makes a warm compressor call the
    encoder again for every empty chunk."""
    enc = FakeEncoder()
    with FingerprintStore(codec="float32") as s:
        s.put([text], enc.encode_texts([text]), enc.cache_id)
        got = s.lookup([text], enc.cache_id)[0]
        assert got is not None and got.vectors.shape == (0, 32) and got.n_words == 0


# -- Unicode ---------------------------------------------------------------------------------
def test_unicode_compatibility_forms_are_served(corpus):
    """Chunks that differ from the document only by NFKC (ligatures, composed vs decomposed
    accents, full-width letters) are served the document's vectors, in either direction."""
    docs, enc, _ = corpus
    body = words_slice(docs[5], 0, 60)
    stored_docs = [
        f"The ﬁrst ﬂight of the café crew: {body} and the ﬁnal ﬁsh.",
        unicodedata.normalize("NFD", f"Naïve résumé of Zoë at the crème brûlée stand. {body}"),
        f"Ｆｕｌｌ ｗｉｄｔｈ ＡＢＣ letters close it: {body} done.",
    ]
    with FingerprintStore(codec="float32") as s:
        fill(s, enc, stored_docs)
        refs = enc.encode_texts(stored_docs)
        variants = [
            (0, stored_docs[0].replace("ﬁ", "fi").replace("ﬂ", "fl")),
            (1, unicodedata.normalize("NFC", stored_docs[1])),
            (2, unicodedata.normalize("NFKC", stored_docs[2])),
        ]
        for doc, text in variants:
            assert text != stored_docs[doc] and len(find_words(text)) >= GUARANTEED_WORDS
            g = s.lookup([text], enc.cache_id)[0]
            assert same_exactly(g, expected_slice(refs[doc], 0, text)), text[:30]
    # the other direction: the document plain, the chunk with ligatures and decomposed accents
    plain = f"The first flight of the café crew: {body} and the final fish."
    with FingerprintStore(codec="float32") as s:
        fill(s, enc, [plain])
        fancy = unicodedata.normalize("NFD", plain.replace("fi", "ﬁ"))
        g = s.lookup([fancy], enc.cache_id)[0]
        assert same_exactly(g, expected_slice(enc.encode_texts([plain])[0], 0, fancy))
        assert s.lookup([plain.upper()], enc.cache_id) == [None]


# -- boilerplate -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def boilerplate(corpus):
    """300 documents, each its own 40-word opening, a shared 120-word paragraph, its own
    60-word close; in a float32 store, with each document named ``doc-<k>``."""
    docs, enc, _ = corpus
    para = words_slice(docs[0], 0, 120)
    pool = [w for d in docs[1:] for w in d.split()]
    out = []
    for k in range(300):
        own = pool[(k * 97) % (len(pool) - 100) :][:100]
        out.append(
            f"Record {k}. {' '.join(own[:40])}\n\n{para}\n\nClosing {k}: {' '.join(own[40:])}"
        )
    with FingerprintStore(codec="float32") as s:
        fill(s, enc, [SourceDocument(t, (f"doc-{k}",)) for k, t in enumerate(out)])
        yield s, enc, out, para


def test_a_boilerplate_chunk_is_served_from_some_copy(boilerplate):
    s, enc, docs, para = boilerplate
    chunk = words_slice(para, 20, 100)
    ref = enc.encode_texts([docs[0]])[0]
    first = len(find_words(docs[0][: docs[0].index(para)])) + 20
    got = s.lookup([chunk, para], enc.cache_id)
    assert same_exactly(got[0], expected_slice(ref, first, chunk))  # every copy has these
    assert got[1] is not None and got[1].n_words == 120


@pytest.mark.parametrize("k", [3, 150, 299])
def test_a_chunk_of_boilerplate_and_own_text_is_served_with_its_name(boilerplate, k):
    s, enc, docs, para = boilerplate
    doc = docs[k]
    at = len(find_words(doc[: doc.index(para)]))
    chunk = words_slice(doc, at - 30, at + 40)  # 30 own words, then 40 of the shared paragraph
    ref = enc.encode_texts([doc])[0]
    got = s.lookup([chunk], enc.cache_id, [ChunkSource(document=f"doc-{k}")])[0]
    assert same_exactly(got, expected_slice(ref, at - 30, chunk))


@pytest.mark.parametrize("k", [3, 150, 299])
def test_a_chunk_of_boilerplate_and_own_text_is_served_without_a_name(boilerplate, k):
    """The chunk occurs in exactly one document (its own 30 words are in no other): it must be
    served whatever the number of documents sharing the paragraph.  (The locator reads at most
    64 rows per shingle hash and verifies the 4 best-voted alignments: when more than 64
    documents share the paragraph, the shared shingles out-vote the chunk's own.)"""
    s, enc, docs, para = boilerplate
    doc = docs[k]
    at = len(find_words(doc[: doc.index(para)]))
    chunk = words_slice(doc, at - 30, at + 40)
    assert sum(chunk in d for d in docs) == 1
    ref = enc.encode_texts([doc])[0]
    got = s.lookup([chunk], enc.cache_id)[0]
    assert same_exactly(got, expected_slice(ref, at - 30, chunk))


def test_chunks_of_repetitive_text_are_served():
    """Text over a small vocabulary (tables, logs, forms) repeats its 4-word shingles across
    documents.  A chunk of 25 words holds a shingle its document kept (the winnowing guarantee
    from 19 words), so it must be served, however many other documents share some of its
    shingles.  (Today the locator verifies only the 4 best-voted alignments, ties broken by
    document id: alignments voted for by one shared shingle each out-rank the true one.)"""
    import random

    enc = FakeEncoder()
    vocab = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "river",
        "stone",
        "ledger",
        "clause",
        "party",
        "notice",
        "harbour",
    ]
    rng = random.Random(0)
    docs = [
        f"record {i}: " + " ".join(rng.choice(vocab) for _ in range(rng.randint(30, 300)))
        for i in range(120)
    ]
    refs = enc.encode_texts(docs)
    with FingerprintStore(codec="float32") as s:
        fill(s, enc, docs)
        chunks = [words_slice(d, 3, 28) for d in docs]
        got = s.lookup(chunks, enc.cache_id)
        wrong = [i for i, (g, r, c) in enumerate(zip(got, refs, chunks, strict=True))
                 if not same_exactly(g, expected_slice(r, 3, c))]  # fmt: skip
        assert all(got[i] is None for i in wrong)  # never a wrong vector...
        assert wrong == []  # ...and never a miss


# -- encoders, names, start offsets ---------------------------------------------------------------
class OtherEncoder(FakeEncoder):
    """Same dimension, another identity and other vectors (the fake's, negated)."""

    def __init__(self) -> None:
        super().__init__(32)
        self.cache_id = "other-fake|dim32"

    def encode_query_words(self, texts):
        return [ChunkFingerprints(-fp.vectors, fp.word_spans)
                for fp in super().encode_query_words(texts)]  # fmt: skip


def test_documents_of_another_encoder_are_never_served(corpus):
    docs, a, refs = corpus
    b = OtherEncoder()
    with FingerprintStore(codec="float32") as s:
        fill(s, a, docs[:2])
        fill(s, b, docs[1:3])
        chunks = [words_slice(d, 30, 110) for d in docs[:3]]
        got_a = s.lookup(chunks, a.cache_id)
        got_b = s.lookup(chunks, b.cache_id)
        assert same_exactly(got_a[0], expected_slice(refs[0], 30, chunks[0]))
        assert same_exactly(got_a[1], expected_slice(refs[1], 30, chunks[1]))
        assert got_a[2] is None and got_b[0] is None
        other = b.encode_texts([docs[1]])[0]
        assert same_exactly(got_b[1], expected_slice(other, 30, chunks[1]))
        assert s.lookup(chunks, FakeEncoder(16).cache_id) == [None] * 3
        assert s.lookup(docs[:3], "never stored") == [None] * 3


def test_names_narrow_the_search_and_a_wrong_name_still_finds_the_chunk(corpus):
    docs, enc, refs = corpus
    with FingerprintStore(codec="float32") as s:
        fill(
            s,
            enc,
            [SourceDocument(d, (f"doc-{i}", f"/data/{i}.txt")) for i, d in enumerate(docs[:4])],
        )
        chunk = words_slice(docs[2], 25, 105)
        want = expected_slice(refs[2], 25, chunk)
        for name in ("doc-2", "/data/2.txt", "doc-0", "unknown", None):
            got = s.lookup([chunk], enc.cache_id, [ChunkSource(document=name)])[0]
            assert same_exactly(got, want), name
        key = fingerprint_key(docs[2], enc.cache_id)
        s.add_names({key: ["alias-2"], "no such key": ["ignored"]})
        got = s.lookup([chunk], enc.cache_id, [ChunkSource(document="alias-2")])[0]
        assert same_exactly(got, want)
        assert fill(s, enc, [SourceDocument(docs[2], ("late-name",))]).already_stored == 1
        got = s.lookup([chunk], enc.cache_id, [ChunkSource(document="late-name")])[0]
        assert same_exactly(got, want)


def _twice(corpus, gap: int) -> tuple[str, str]:
    """A document holding one 50-word passage twice, ``gap`` other words between the copies."""
    docs, _, _ = corpus
    passage = words_slice(docs[6], 0, 50)
    middle = " ".join(w for d in docs[7:] for w in d.split())
    middle = " ".join(middle.split()[:gap])
    return f"Opening words here. {passage} Middle part {middle} and {passage} end.", passage


@pytest.mark.parametrize("gap", [200, 40], ids=["copies-in-other-blocks", "copies-in-one-block"])
def test_the_start_offset_picks_the_copy_nearest_to_it(corpus, gap):
    """A passage that occurs twice in a document, with other neighbours: the fake encoder's
    edge vectors differ between the copies (as a real encoder's do), and the start offset
    (LangChain ``start_index``, LlamaIndex ``start_char_idx``) chooses which is served, as
    semtoken_rag/store/locate.py documents, wherever the copies lie."""
    _, enc, _ = corpus
    doc, passage = _twice(corpus, gap)
    ref = enc.encode_texts([doc])[0]
    first, second = doc.index(passage), doc.rindex(passage)
    a = expected_slice(ref, word_index(doc, first), passage)
    b = expected_slice(ref, word_index(doc, second), passage)
    assert not np.array_equal(a.vectors, b.vectors)
    with FingerprintStore(codec="float32") as s:
        fill(s, enc, [SourceDocument(doc, ("twice",))])
        assert any(same_exactly(s.lookup([passage], enc.cache_id)[0], w) for w in (a, b))
        for start, want in ((first, a), (second, b), (second - 30, b), (first + 5, a)):
            for name in (None, "twice"):
                got = s.lookup([passage], enc.cache_id, [ChunkSource(name, start)])[0]
                assert same_exactly(got, want), (start, name)


@pytest.mark.parametrize("sep", [" " * 10, "\n\n    "], ids=["aligned-columns", "indented-code"])
def test_the_start_offset_picks_the_right_copy_in_whitespace_heavy_text(sep):
    """Only block starts are stored: a copy late in a block was placed as if one space
    separated its words, far before its true place in indented code or aligned columns, and
    the other copy (at the next block's start, placed exactly) was served for its offset."""
    enc = FakeEncoder()
    passage = [f"p{i}" for i in range(20)]
    words = [f"a{i}" for i in range(100)] + passage + [f"b{i}" for i in range(8)] + passage
    doc = sep.join(words + [f"c{i}" for i in range(30)])
    ref, spans, chunk = enc.encode_texts([doc])[0], find_words(doc), sep.join(passage)
    with FingerprintStore(codec="float32") as s:
        fill(s, enc, [SourceDocument(doc, ("code",))])
        for first in (100, 128):  # late in block 0; the start of block 1 (128 words a block)
            hint = ChunkSource("code", int(spans[first, 0]))
            got = s.lookup([chunk], enc.cache_id, [hint])[0]
            assert same_exactly(got, expected_slice(ref, first, chunk)), first


# -- non-finite vectors ------------------------------------------------------------------------
class PoisonEncoder(FakeEncoder):
    """The fake encoder, but NaN/inf vectors for texts containing ``poison``/``infinite``."""

    def encode_query_words(self, texts):
        out = []
        for t, fp in zip(texts, super().encode_query_words(texts), strict=True):
            v = fp.vectors.copy()
            if "poison" in t and len(v):
                v[len(v) // 2, 3] = np.nan
            if "infinite" in t and len(v):
                v[0, 0] = np.inf
            out.append(ChunkFingerprints(v, fp.word_spans))
        return out


@pytest.mark.parametrize("codec", ["float32", "pq64"])
def test_non_finite_vectors_are_never_stored(codec):
    enc = PoisonEncoder()
    good = long_texts(16, "ok", words=60)  # 960 words: a small PQ is 64 words short of training
    bad = [f"{t} poison" for t in long_texts(2, "bad")] + [f"infinite {long_texts(1, 'inf')[0]}"]
    with FingerprintStore(codec=SMALL_PQ if codec == "pq64" else codec) as s:
        fill(s, enc, good)
        assert s.stats().trained == (codec == "float32")
        s.put(bad, enc.encode_texts(bad), enc.cache_id)  # the engine's path: logged, not stored
        assert len(s) == 16 and s.lookup(bad, enc.cache_id) == [None] * 3
        report = fill(s, enc, [*bad, *long_texts(4, "more", words=60)], on_error="skip")
        assert report.encoded == 4 and {f.key for f in report.failed} == {
            fingerprint_key(t, enc.cache_id) for t in bad
        }
        assert all("non-finite" in f.error for f in report.failed)
        assert s.stats().trained and len(s) == 20 and s.verify() == []
        with pytest.raises(DocumentEncodingError, match="non-finite") as info:
            fill(s, enc, [long_texts(1, "last")[0], bad[0]], batch_size=8)
        assert info.value.report.encoded == 1 and len(info.value.failed) == 1
        assert len(s) == 21 and s.lookup(bad, enc.cache_id) == [None] * 3
        for g in s.lookup(long_texts(16, "ok", words=60), enc.cache_id):
            assert g is not None and np.isfinite(g.vectors).all()


# -- codebooks -----------------------------------------------------------------------------------
def test_documents_encoded_for_another_store_are_refused(corpus, tmp_path):
    docs, enc, _ = corpus
    with FingerprintStore(tmp_path / "a", codec="float32") as a:
        for_a = encoded(a, enc, docs[:3])
    with FingerprintStore(tmp_path / "b", codec="float32") as b:
        with pytest.raises(CodebookChangedError, match="restart the ingestion"):
            b.write(for_a)
        st = b.stats()
        assert (len(b), st.words, st.payload_bytes) == (0, 0, 0)
        assert b.lookup([docs[0]], enc.cache_id) == [None]


def test_documents_encoded_with_another_trained_codebook_are_refused(tmp_path):
    enc = FakeEncoder()
    stores = []
    for name, tag in (("a", "x"), ("b", "y")):  # trained on different documents
        s = FingerprintStore(tmp_path / name, codec=SMALL_PQ)
        fill(s, enc, long_texts(40, tag))
        assert s.stats().trained
        stores.append(s)
    a, b = stores
    try:
        extra = long_texts(3, "z")
        before = (len(b), b.stats().words)
        with pytest.raises(CodebookChangedError):
            b.write(encoded(a, enc, extra))
        assert (len(b), b.stats().words) == before and b.verify() == []
        assert b.write(encoded(b, enc, extra)) == 3  # its own codebook: written
    finally:
        a.close()
        b.close()


def test_documents_encoded_before_training_are_still_accepted(tmp_path):
    """An encoder that got the store's codec set while it was untrained (float16 staging) may
    commit after another writer trained the codec: the staging codebook is still the store's,
    so the documents are written (and stay in float16)."""
    enc = FakeEncoder()
    with FingerprintStore(tmp_path, codec=SMALL_PQ) as s:
        early = encoded(s, enc, long_texts(3, "early"))
        fill(s, enc, long_texts(40, "bulk"))
        assert s.stats().trained and s.stats().staged_words == 0
        assert s.write(early) == 3
        assert s.stats().staged_words == 3 * 60 and s.verify() == []
        got = s.lookup(long_texts(3, "early"), enc.cache_id)
        refs = enc.encode_texts(long_texts(3, "early"))
        assert all(close_enough(g, r, 0.9999) for g, r in zip(got, refs, strict=True))


def test_a_document_fingerprinted_twice_is_written_once(corpus):
    docs, enc, _ = corpus
    with FingerprintStore(codec="float32") as s:
        first = encoded(s, enc, docs[:2])
        assert s.write(first) == 2 and s.write(first) == 0 and s.write([]) == 0
        assert len(s) == 2 and s.contains([fingerprint_key(d, enc.cache_id) for d in docs[:3]]) == {
            fingerprint_key(d, enc.cache_id) for d in docs[:2]
        }


def test_encode_documents_keeps_the_input_order_and_names(corpus):
    docs, enc, refs = corpus
    with FingerprintStore(codec="float32") as s:
        items = [DocumentFingerprints(fingerprint_key(d, enc.cache_id), d, fp, ("n", "n", "m"))
                 for d, fp in zip(docs[:3], refs[:3], strict=True)]  # fmt: skip
        out = encode_documents(items, s.codec_set(32), encoder=enc.cache_id)
        assert [e.key for e in out] == [i.key for i in items]
        assert all(e.names == ("n", "m") and e.n_words == i.fingerprints.n_words
                   for e, i in zip(out, items, strict=True))  # fmt: skip
        s.write(out)
        got = s.lookup([words_slice(docs[1], 5, 85)], enc.cache_id, [ChunkSource("m")])[0]
        assert same_exactly(got, expected_slice(refs[1], 5, words_slice(docs[1], 5, 85)))


def test_lookup_rejects_sources_of_another_length(stored, corpus):
    _, enc, _ = corpus
    with pytest.raises(InvalidInputError):
        stored.lookup(["a b c"], enc.cache_id, [])


# -- real MiniLM, real splitters ------------------------------------------------------------------
def _reader_tokenizer():
    try:
        from semtoken_rag.readers import load_reader_tokenizer

        return load_reader_tokenizer("smollm2")
    except Exception as exc:  # the reader package or its GGUF is not installed here
        pytest.skip(f"no byte-level BPE tokenizer available offline ({exc})")


@pytest.mark.slow
def test_real_splitters_chunks_are_served_without_encoding(tmp_path, shared_data, real_compressor):
    """Five NarrativeQA documents ingested once with the real MiniLM into a PQ store; chunks
    cut by LangChain's RecursiveCharacterTextSplitter and token splitter (SmolLM2's byte-level
    BPE: MiniLM's WordPiece lowercases when decoding) and LlamaIndex's SentenceSplitter: at
    least 95% are served, each with one vector per word, and compressing the served ones
    encodes nothing."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from langchain_text_splitters.base import Tokenizer, split_text_on_tokens
    from llama_index.core import Document
    from llama_index.core.node_parser import SentenceSplitter

    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.ingestion import IngestOptions
    from semtoken_rag.store import get_codec

    docs = narrative_documents(shared_data, 5)
    tok = _reader_tokenizer()
    real = real_compressor
    splits: dict[str, tuple[list[str], list[ChunkSource | None]]] = {}
    rec = RecursiveCharacterTextSplitter(chunk_size=400, chunk_overlap=60, add_start_index=True)
    lc = rec.create_documents(docs, [{"source": f"nqa-{i}"} for i in range(5)])
    splits["langchain-recursive"] = (
        [d.page_content for d in lc],
        [ChunkSource(d.metadata["source"], d.metadata["start_index"]) for d in lc],
    )
    bpe = Tokenizer(
        chunk_overlap=8, tokens_per_chunk=64, decode=tok.decode,
        encode=lambda t: tok.encode(t, add_special_tokens=False),
    )  # fmt: skip
    token_chunks = [c for d in docs for c in split_text_on_tokens(text=d, tokenizer=bpe)]
    splits["langchain-token-bpe"] = (token_chunks, [None] * len(token_chunks))
    sentence = SentenceSplitter(chunk_size=128, chunk_overlap=20, tokenizer=tok.encode)
    nodes = sentence.get_nodes_from_documents(
        [Document(text=d, doc_id=f"nqa-{i}") for i, d in enumerate(docs)]
    )
    splits["llama-index-sentence"] = (
        [n.get_content() for n in nodes],
        [ChunkSource(n.ref_doc_id, n.start_char_idx) for n in nodes],
    )
    spec = get_codec("pq64").with_options(train_min=1024)
    with FingerprintStore(tmp_path, codec=spec) as s:
        comp = Compressor(SemTokenConfig(), encoder=real.encoder, store=s, counter=real.counter)
        report = comp.ingest(
            [SourceDocument(d, (f"nqa-{i}",)) for i, d in enumerate(docs)],
            IngestOptions(progress=False),
        )
        assert report.encoded == 5 and report.trained and s.stats().trained
        for name, (chunks, sources) in splits.items():
            assert len(chunks) >= 20, name
            got = s.lookup(chunks, real.encoder.cache_id, sources)
            served = [(c, src, g) for c, src, g in zip(chunks, sources, got, strict=True) if g]
            assert len(served) >= 0.95 * len(chunks), (name, len(served), len(chunks))
            for c, _, g in served:
                assert g.n_words == len(find_words(c)) and g.vectors.shape[1] == real.encoder.dim
                np.testing.assert_array_equal(g.word_spans, find_words(c))
            res = comp.compress(
                [c for c, _, _ in served], "Who is the main character?",
                sources=[src for _, src, _ in served],
            )  # fmt: skip
            assert res.encoder_calls == 0, name
        # fidelity: the served vectors are the documents' own (decoded from pq64)
        full = real.encoder.encode_texts(docs)
        for d, src, g in zip(lc, splits["langchain-recursive"][1], s.lookup(
                splits["langchain-recursive"][0], real.encoder.cache_id,
                splits["langchain-recursive"][1]), strict=True):  # fmt: skip
            i = int(d.metadata["source"].split("-")[1])
            ref = expected_slice(full[i], word_index(docs[i], src.start), d.page_content)
            assert float(np.mean(np.sum(g.vectors * ref.vectors, axis=1))) > 0.85


def test_a_short_chunk_is_served_at_its_named_start():
    """A chunk under 19 words may hold no shingle its document kept (a splitter's last
    sentence); with the framework's hints (document name and start offset) its position is
    tried directly, and verified like any other candidate."""
    enc = FakeEncoder()
    doc = " ".join(f"word{i}" for i in range(400)) + ". The end comes here at last."
    with FingerprintStore(codec="float32") as s:
        fill(s, enc, [SourceDocument(doc, ("doc-a",))])
        start = doc.index("The end")
        chunk = doc[start:]
        hint = [ChunkSource(document="doc-a", start=start)]
        got = s.lookup([chunk], enc.cache_id, hint)[0]
        assert got is not None and got.n_words == len(find_words(chunk))
        ref = enc.encode_texts([doc])[0]
        assert np.array_equal(got.vectors, ref.vectors[-got.n_words :])
        assert s.lookup([chunk.replace("end", "END")], enc.cache_id, hint)[0] is None


@pytest.mark.parametrize("chunk", ["charter", "chart", "harte", "a"])
@pytest.mark.parametrize("copies", [1, 60])
def test_a_one_word_chunk_is_a_miss_even_at_its_named_start(chunk: str, copies: int) -> None:
    """docs/store.md: one-word chunks are misses.  With a document name and a start offset the
    position was tried directly and one word "verified" as a substring of the stored word, so
    ``"a"`` at the offset of "charter" was served the vector of "charter" (a word it is not),
    in a document holding the word once or many times."""
    enc = FakeEncoder()
    filler = " ".join(f"word{i}" for i in range(300))
    doc = f"{filler} {'the charter of the town ' * copies}closes here at the end."
    with FingerprintStore(codec="float32") as s:
        fill(s, enc, [SourceDocument(doc, ("doc-a",))])
        at = doc.index("charter")
        hints = [None, ChunkSource(start=at), ChunkSource(document="doc-a")]
        hints += [ChunkSource(document="doc-a", start=p) for p in (at, at + 3, at - 4, 0)]
        assert s.lookup([chunk] * len(hints), enc.cache_id, hints) == [None] * len(hints)
        # The same hint still serves a chunk of two words there, verified.
        two = s.lookup(["the charter"], enc.cache_id, [ChunkSource("doc-a", at - 4)])[0]
        assert two is not None and two.n_words == 2
        # A one-word chunk the engine encoded and put is served by its own key.
        s.put([chunk], enc.encode_texts([chunk]), enc.cache_id)
        got = s.lookup([chunk], enc.cache_id, [ChunkSource(document="doc-a", start=at)])[0]
        assert got is not None and same_exactly(got, enc.encode_texts([chunk])[0])
