"""Ingestion into a fingerprint store: planning (duplicates, blanks, stored documents), input
and option checks, batches, failures, and the codec's training by the sample batch."""

from __future__ import annotations

import pytest

from semtoken_rag.errors import ConfigError, InvalidInputError, StoreError
from semtoken_rag.fingerprints import ChunkSource, fingerprint_key
from semtoken_rag.ingestion import (
    DocumentEncodingError,
    IngestOptions,
    IngestReport,
    LocalRunner,
    SourceDocument,
    ingest,
)
from semtoken_rag.store import FingerprintStore
from tests.fakes import FakeEncoder, WhitespaceCounter
from tests.store_helpers import SMALL_PQ, close_enough, fill, long_texts, words_slice


def test_a_rerun_skips_stored_documents():
    enc = FakeEncoder()
    docs = long_texts(10)
    with FingerprintStore(codec="float32") as s:
        first = fill(s, enc, docs[:6])
        assert (first.documents, first.encoded, first.already_stored) == (6, 6, 0)
        assert first.words == 6 * 60 and first.pending == 0 and first.failed == []
        assert first.cache_id == enc.cache_id and first.workers == 1
        second = fill(s, enc, docs)
        assert (second.documents, second.encoded, second.already_stored) == (10, 4, 6)
        assert enc.calls == 10 and len(s) == 10
        third = fill(s, enc, docs)
        assert (third.encoded, third.already_stored, third.batches) == (0, 10, 0)
        assert enc.calls == 10


def test_blank_and_duplicate_documents():
    enc = FakeEncoder()
    doc = long_texts(1)[0]
    with FingerprintStore(codec="float32") as s:
        report = fill(
            s, enc, ["", "  \n\t ", doc, SourceDocument(doc, ("a",)), SourceDocument(doc, ("b",))]
        )
        assert (report.documents, report.blank, report.encoded) == (1, 2, 1)
        assert enc.calls == 1 and len(s) == 1
        chunk = words_slice(doc, 5, 50)
        for name in ("a", "b"):  # the duplicates' names were merged
            assert s.lookup([chunk], enc.cache_id, [ChunkSource(name)])[0] is not None
        assert fill(s, enc, ["", " "]).blank == 2 and len(s) == 1


@pytest.mark.parametrize("single", ["text", "source-document"])
def test_a_single_str_is_one_document(single):
    enc = FakeEncoder()
    doc = long_texts(1)[0]
    with FingerprintStore(codec="float32") as s:
        report = fill(s, enc, doc if single == "text" else SourceDocument(doc, ("one",)))
        assert report.documents == report.encoded == 1 and len(s) == 1 and enc.calls == 1
        assert s.lookup([doc], enc.cache_id)[0].n_words == 60


@pytest.mark.parametrize(
    "bad",
    [b"bytes are not text", bytearray(b"x"), {"text": "a mapping"}, ["fine", 3], ["ok", b"x"],
     None, 42, [None], [{"text": "x"}]],
    ids=["bytes", "bytearray", "dict", "list-with-int", "list-with-bytes", "none", "int",
         "list-with-none", "list-with-dict"],
)  # fmt: skip
def test_invalid_inputs_are_typed_errors(bad):
    enc = FakeEncoder()
    with FingerprintStore(codec="float32") as s:
        with pytest.raises(InvalidInputError):
            fill(s, enc, bad)
        assert len(s) == 0 and enc.calls == 0


@pytest.mark.parametrize(
    ("text", "names"),
    [(b"bytes", ()), (None, ()), (3, ()), ("text", "a-name-not-a-tuple"), ("text", ("ok", 3))],
)
def test_a_source_document_of_bad_fields_is_a_typed_error(text, names):
    with pytest.raises(InvalidInputError):
        SourceDocument(text, names)


@pytest.mark.parametrize("field", ["batch_size", "max_batch_words"])
@pytest.mark.parametrize("value", [0, -1, True, 1.5, "8", None])
def test_bad_batch_options_are_typed_errors(field, value):
    with pytest.raises(InvalidInputError, match=field):
        IngestOptions(**{field: value})


@pytest.mark.parametrize("value", ["x", "", "RAISE", None])
def test_bad_on_error_is_a_typed_error(value):
    with pytest.raises(InvalidInputError, match="on_error"):
        IngestOptions(on_error=value)


def test_batches_and_commit_callbacks():
    enc = FakeEncoder()
    docs = long_texts(10)
    seen: list[tuple[int, int]] = []

    def on_commit(report: IngestReport) -> None:
        seen.append((report.batches, report.encoded))

    with FingerprintStore(codec="float32") as s:
        report = fill(s, enc, docs, batch_size=3, on_commit=on_commit)
        assert report.batches == 4 and seen == [(1, 3), (2, 6), (3, 9), (4, 10)]
    with FingerprintStore(codec="float32") as s:  # a word budget closes batches first
        assert fill(s, enc, docs, max_batch_words=130).batches == 5
    with FingerprintStore(codec="float32") as s:  # a document above the budget: its own batch
        assert fill(s, enc, docs, max_batch_words=10).batches == 10


class FailingEncoder(FakeEncoder):
    """The fake encoder, raising for any batch holding a text with ``boom``."""

    def encode_texts(self, texts):
        if any("boom" in t for t in texts):
            self.calls += len(texts)
            raise RuntimeError("the encoder exploded")
        return super().encode_texts(texts)


def test_a_failing_document_is_reported_or_raised_and_the_rest_committed():
    enc = FailingEncoder()
    docs = long_texts(5)
    bad = "boom " + long_texts(1, "b")[0]
    with FingerprintStore(codec="float32") as s:
        report = fill(s, enc, [*docs[:2], bad, *docs[2:]], on_error="skip", batch_size=4)
        assert report.encoded == 5 and len(report.failed) == 1 and len(s) == 5
        failed = report.failed[0]
        assert failed.key == fingerprint_key(bad, enc.cache_id)
        assert "RuntimeError" in failed.error and "exploded" in failed.error
    with FingerprintStore(codec="float32") as s:
        with pytest.raises(DocumentEncodingError, match="exploded") as info:
            fill(s, enc, [*docs[:2], bad, *docs[2:]], batch_size=4)
        assert info.value.report.encoded == 3 and len(s) == 3  # its batch's others committed
        assert [f.key for f in info.value.failed] == [fingerprint_key(bad, enc.cache_id)]
        again = fill(s, enc, docs)  # a re-run completes what was left
        assert (again.already_stored, again.encoded) == (3, 2) and len(s) == 5


def test_compressor_ingest_is_the_same_ingestion(tmp_path):
    from semtoken_rag import Compressor, SemTokenConfig

    enc = FakeEncoder()
    with FingerprintStore(tmp_path, codec="float32") as s:
        comp = Compressor(SemTokenConfig(), encoder=enc, store=s, counter=WhitespaceCounter())
        report = comp.ingest(long_texts(4), IngestOptions(progress=False, batch_size=2))
        assert (report.encoded, report.batches, len(s)) == (4, 2, 4)
        with pytest.raises(InvalidInputError):
            comp.ingest(b"bytes")


# -- the codec's training ------------------------------------------------------------------------
def test_a_large_ingestion_trains_the_codec_with_its_sample_batch(tmp_path):
    enc = FakeEncoder()
    docs = long_texts(60)  # 3,600 words; the small PQ trains on 1,024
    with FingerprintStore(tmp_path, codec=SMALL_PQ) as s:
        report = ingest(docs, s, LocalRunner(enc), IngestOptions(progress=False, batch_size=8))
        assert report.trained and report.encoded == 60
        st = s.stats()
        assert st.trained and st.staged_words == 0 and st.words == 3600
        assert s.verify() == []
        got = s.lookup(docs, enc.cache_id)
        assert all(close_enough(g, r, 0.8) for g, r in zip(got, enc.encode_texts(docs)))
        # the sample (the first 18 documents: 1,080 words) is one batch, the rest batches of 8
        assert report.batches == 1 + 6


def test_an_ingestion_smaller_than_train_min_stays_staged_then_trains(tmp_path):
    enc = FakeEncoder()
    with FingerprintStore(tmp_path, codec=SMALL_PQ) as s:
        small = fill(s, enc, long_texts(10, "a"))  # 600 words
        assert not small.trained
        st = s.stats()
        assert not st.trained and st.staged_words == st.words == 600
    with FingerprintStore(tmp_path) as s:  # reopened: still staged, then the next run trains
        more = fill(s, enc, long_texts(10, "b"))
        assert more.trained and s.stats().trained and s.stats().staged_words == 0
        got = s.lookup(long_texts(10, "a"), enc.cache_id)
        refs = enc.encode_texts(long_texts(10, "a"))
        assert all(close_enough(g, r, 0.8) for g, r in zip(got, refs, strict=True))
        assert s.verify() == []


def test_the_report_says_trained_when_a_later_write_of_the_run_trains(tmp_path):
    """Too few words for a sample, so the run writes staged; another store object (another
    process) then stages more, and the run's next write trains the codec: the report said it
    did not, the store that it did."""
    enc = FakeEncoder()
    other = long_texts(15, "o")  # 900 words: with the run's first 120, past train_min 1,024

    def on_commit(r: IngestReport) -> None:
        if r.encoded == 2:
            with FingerprintStore(tmp_path) as o:
                assert not fill(o, enc, other).trained  # 120 + 900 staged: still short

    with FingerprintStore(tmp_path, codec=SMALL_PQ) as s:
        report = fill(s, enc, long_texts(6, "r"), batch_size=2, on_commit=on_commit)
        assert report.encoded == 6 and s.stats().trained and s.verify() == []
        assert report.trained


def test_a_sample_short_of_a_failed_document_is_topped_up_before_the_rest(tmp_path):
    """A failing document in the sample leaves the staged words short of ``train_min``: another
    sample makes up the difference, so the codec trains before the other batches are encoded
    (none of them is left in float16) and the report says it trained."""
    enc = FailingEncoder()
    docs = long_texts(60)  # 3,600 words; the small PQ trains on 1,024
    docs[0] = "boom " + docs[0]
    with FingerprintStore(tmp_path, codec=SMALL_PQ) as s:
        report = fill(s, enc, docs, batch_size=8, on_error="skip")
        assert report.trained and report.encoded == 59 and len(report.failed) == 1
        st = s.stats()
        assert st.trained and st.words == 59 * 60 and st.staged_words == 0 and s.verify() == []


def test_a_second_dimension_trains_its_own_codebook_with_a_sample(tmp_path):
    """Training is per dimension: a store already trained for one encoder trains another
    encoder's dimension with that encoder's own sample batch."""
    with FingerprintStore(tmp_path, codec=SMALL_PQ) as s:
        assert fill(s, FakeEncoder(dim=32), long_texts(20, "a"), batch_size=8).trained
        report = fill(s, FakeEncoder(dim=16), long_texts(60, "b"), batch_size=8)
        assert report.trained and report.encoded == 60
        assert report.batches == 1 + 6  # the sample (18 documents), then batches of 8
        assert s.stats().staged_words == 0 and s.verify() == []


def test_a_read_only_store_is_refused_before_anything_is_encoded(tmp_path):
    enc = FakeEncoder()
    with FingerprintStore(tmp_path, codec="float32") as s:
        fill(s, enc, long_texts(2, "a"))
    with FingerprintStore(tmp_path, read_only=True) as s:
        with pytest.raises(StoreError, match="read-only: nothing can be ingested"):
            fill(s, enc, long_texts(3, "b"))
        assert len(s) == 2 and enc.calls == 2


@pytest.mark.parametrize("missing", ["store", "runner"])
def test_ingest_without_a_store_or_runner_is_a_typed_error(missing):
    store = None if missing == "store" else FingerprintStore(codec="float32")
    runner = None if missing == "runner" else LocalRunner(FakeEncoder())
    with pytest.raises(ConfigError, match=f"ingest needs a {missing}, got None"):
        ingest(long_texts(1), store, runner)


def test_an_encoder_returning_too_few_results_fails_its_documents_not_the_run():
    """A custom encoder that returns fewer fingerprints than texts: which text got which is
    unknown, so the batch is retried document by document and the failures are reported."""

    class ShortEncoder(FakeEncoder):
        def encode_texts(self, texts):
            return super().encode_texts(texts)[: max(len(texts) - 1, 0)]

    with FingerprintStore(codec="float32") as s:
        report = fill(s, ShortEncoder(), long_texts(3), on_error="skip")
        assert report.encoded == 0 and len(report.failed) == 3 and len(s) == 0
        assert all("returned 0 results for 1 texts" in f.error for f in report.failed)


class TokenizerLikeEncoder(FakeEncoder):
    """The fake encoder, refusing a lone surrogate as a fast tokenizer does."""

    def encode_texts(self, texts):
        if any(any("\ud800" <= ch <= "\udfff" for ch in t) for t in texts):
            raise TypeError("TextEncodeInput must be Union[TextInputSequence, ...]")
        return super().encode_texts(texts)


def test_lone_surrogates_in_a_text_or_a_name_are_stored_and_served():
    """Broken PDF extraction and file names that are not UTF-8 carry lone surrogates: the
    encoder reads them as U+FFFD (as at query time: it failed every such document) and names
    are recorded and matched so (SQLite refused them, losing the whole batch)."""
    enc = TokenizerLikeEncoder()
    text = words_slice(long_texts(1)[0], 0, 30) + " broken \ud800 extraction"
    name = "caf\udce9.txt"
    others = long_texts(2, "o")
    with FingerprintStore(codec="float32") as s:
        report = fill(s, enc, [SourceDocument(text, (name,)), *others], on_error="skip")
        assert report.failed == [] and report.encoded == 3 and len(s) == 3
        s.add_names({fingerprint_key(text, enc.cache_id): ["other\udc80name"]})
        chunk = words_slice(text, 12, 32)
        for hint in (ChunkSource(name, 40), ChunkSource("other\udc80name")):
            got = s.lookup([chunk], enc.cache_id, [hint])[0]
            assert got is not None and len(got.word_spans) == len(chunk.split())
        assert s.contains(["\udc80"]) == set()


@pytest.mark.slow
def test_a_text_with_a_lone_surrogate_is_ingested_with_the_real_encoder(real_compressor):
    from semtoken_rag import Compressor

    text = "Broken \ud800 surrogate text here. Another sentence follows about cats."
    with FingerprintStore(codec="float32") as s:
        comp = Compressor(real_compressor.config, encoder=real_compressor.encoder, store=s)
        report = comp.ingest([text], IngestOptions(progress=False))
        assert report.encoded == 1 and len(s) == 1
        assert comp.compress([text], "cats").encoder_calls == 0
