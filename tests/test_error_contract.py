"""The Python API's error contract, method by method (issue 24).

Every public method of the engine, the seed facade, the store, ingestion, the Ray options, both
framework adapters and the lab's run configuration is called with malformed arguments (None, a
string where a list is expected, bytes, a mapping, a list holding an int, NaN, inf, -1, 0, True
where a number is expected, huge ints, objects of the wrong type, generators).  Each call ends
in a :class:`~semtoken_rag.errors.SemTokenError` subclass with a one-line message, or in the
documented safe result; never an ``AttributeError``/``TypeError``/``ValueError`` that is not
also a ``SemTokenError``, nor an ``IndexError``/``KeyError``/``AssertionError``.  A generator is
consumed as the sequence it yields (never silently an empty result) or refused.

The engine runs on the fake encoder and word counter (tests/fakes.py), the store in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semtoken_rag import Compressor, SemToken, SemTokenConfig
from semtoken_rag.errors import SemTokenError
from semtoken_rag.fingerprints import ChunkSource
from semtoken_rag.store import FingerprintStore
from tests.fakes import FakeEncoder, WhitespaceCounter

TEXT = "The cat sat on the mat. It was warm there. Dogs bark at night."
TEXTS = [TEXT, "A second chunk about cats and their mats.", "Third: rain falls in spring."]
NAN, INF = float("nan"), float("inf")
HUGE = 10**30


def gen(items: list[Any]) -> Iterator[Any]:
    """A one-shot generator over ``items``."""
    yield from items


class Gen:
    """A generator argument in a table of bad values: each call gets a fresh one."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __repr__(self) -> str:
        return f"generator({self.items!r})"


def fresh(value: Any) -> Any:
    return gen(value.items) if isinstance(value, Gen) else value


class Odd:
    """An object of no relevant type."""

    def __repr__(self) -> str:
        return "Odd()"


def engine(**config: Any) -> Compressor:
    return Compressor(
        SemTokenConfig(**config),
        encoder=FakeEncoder(),
        counter=WhitespaceCounter(),
        store=FingerprintStore(),
    )


@dataclass(frozen=True)
class Case:
    """One call: ``raises`` a SemTokenError, or returns what ``check`` accepts."""

    name: str
    call: Callable[[], Any]
    raises: bool = True
    check: Callable[[Any], bool] | None = None


def refused(name: str, call: Callable[[], Any]) -> Case:
    return Case(name, call)


def safe(name: str, call: Callable[[], Any], check: Callable[[Any], bool] | None = None) -> Case:
    return Case(name, call, raises=False, check=check)


def run_case(case: Case) -> None:
    try:
        result = case.call()
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
    except SemTokenError as exc:
        message = str(exc)
        assert case.raises, f"{case.name}: documented as safe, raised {exc!r}"
        assert message.strip() and "\n" not in message, f"{case.name}: message {message!r}"
        return
    except Exception as exc:  # the contract violation this file exists to find
        pytest.fail(f"{case.name}: untyped {type(exc).__name__}: {exc}")
    assert not case.raises, f"{case.name}: accepted, returned {result!r:.200}"
    if case.check is not None:
        try:
            ok = case.check(result)
        except Exception as exc:
            ok = False
            result = f"{result!r:.150} ({type(exc).__name__}: {exc})"
        assert ok, f"{case.name}: unexpected result {result!r:.200}"


def n_chunks(n: int) -> Callable[[Any], bool]:
    return lambda res: len(res.chunks) == n


# -- the engine ---------------------------------------------------------------------------
BAD_CHUNKS: list[Any] = [
    None,
    b"bytes",
    bytearray(b"x"),
    {"a": "b"},
    ["ok", 1],
    [None],
    5,
    3.5,
    Odd(),
    [b"x"],
    Gen(["ok", 2]),
]
BAD_QUERIES: list[Any] = [b"q", 5, ["q"], {"q": 1}, Odd(), NAN]
BAD_RATIOS: list[Any] = [
    NAN,
    INF,
    -INF,
    -1,
    0,
    0.0,
    1.5,
    True,
    False,
    "0.5",
    "nope",
    HUGE,
    [0.5],
    Odd(),
    np.float64("nan"),
]
BAD_BUDGETS: list[Any] = [0, -1, True, 2.5, NAN, INF, "10", [10], Odd(), np.float64(3.0)]
BAD_SOURCES: list[Any] = [
    "src",
    b"src",
    {"a": 1},
    [1, 2, 3],
    [None],
    ChunkSource("d", 0),
    Gen([None, None, None]),
]


def engine_cases() -> list[Case]:
    c = engine()
    cases: list[Case] = []
    for i, bad in enumerate(BAD_CHUNKS):
        cases += [
            refused(f"compress(chunks={bad!r:.30})#{i}", lambda b=bad: engine().compress(fresh(b))),
            refused(
                f"acompress(chunks={bad!r:.30})#{i}", lambda b=bad: engine().acompress(fresh(b))
            ),
            refused(f"explain(chunks={bad!r:.30})#{i}", lambda b=bad: engine().explain(fresh(b))),
            refused(f"prepare(chunks={bad!r:.30})#{i}", lambda b=bad: engine().prepare(fresh(b))),
            refused(
                f"compress_many([(chunks={bad!r:.30}, q)])#{i}",
                lambda b=bad: engine().compress_many([(fresh(b), "q")]),
            ),
        ]
    for bad in BAD_QUERIES:
        cases += [
            refused(f"compress(query={bad!r})", lambda b=bad: c.compress(TEXTS, b)),
            refused(f"acompress(query={bad!r})", lambda b=bad: c.acompress(TEXTS, b)),
            refused(f"explain(query={bad!r})", lambda b=bad: c.explain(TEXTS, b)),
            refused(f"plan(query={bad!r})", lambda b=bad: c.plan(c.prepare(TEXTS), b)),
        ]
    for bad in BAD_RATIOS:
        cases += [
            refused(f"compress(ratio={bad!r})", lambda b=bad: c.compress(TEXTS, ratio=b)),
            refused(
                f"compress_many(ratio={bad!r})",
                lambda b=bad: c.compress_many([(TEXTS, None)], ratio=b),
            ),
            refused(f"plan(ratio={bad!r})", lambda b=bad: c.plan(c.prepare(TEXTS), ratio=b)),
        ]
    for bad in BAD_BUDGETS:
        cases += [
            refused(f"compress(budget={bad!r})", lambda b=bad: c.compress(TEXTS, budget=b)),
            refused(f"explain(budget={bad!r})", lambda b=bad: c.explain(TEXTS, budget=b)),
            refused(f"plan(budget={bad!r})", lambda b=bad: c.plan(c.prepare(TEXTS), budget=b)),
        ]
    for bad in BAD_SOURCES:
        cases += [
            refused(
                f"compress(sources={bad!r:.30})", lambda b=bad: c.compress(TEXTS, sources=fresh(b))
            ),
            refused(
                f"prepare(sources={bad!r:.30})", lambda b=bad: c.prepare(TEXTS, sources=fresh(b))
            ),
            refused(
                f"fingerprints(sources={bad!r:.30})", lambda b=bad: c.fingerprints(TEXTS, fresh(b))
            ),
        ]
    cases += [
        # documented safe results
        safe("compress(one str)", lambda: c.compress(TEXT), n_chunks(1)),
        safe("compress(generator)", lambda: c.compress(gen(TEXTS)), n_chunks(3)),
        safe("compress(tuple)", lambda: c.compress(tuple(TEXTS)), n_chunks(3)),
        safe("compress([])", lambda: c.compress([]), n_chunks(0)),
        safe("compress(blank query)", lambda: c.compress(TEXTS, "  "), n_chunks(3)),
        safe("compress(budget=huge)", lambda: c.compress(TEXTS, budget=HUGE), n_chunks(3)),
        safe("compress(budget=np.int64)", lambda: c.compress(TEXTS, budget=np.int64(5))),
        safe("compress(ratio=np.float32)", lambda: c.compress(TEXTS, ratio=np.float32(0.5))),
        safe("compress(ratio=1)", lambda: c.compress(TEXTS, ratio=1), n_chunks(3)),
        safe("compress(sources=[None]*3)", lambda: c.compress(TEXTS, sources=[None] * 3)),
        safe("acompress(generator)", lambda: c.acompress(gen(TEXTS)), n_chunks(3)),
        safe(
            "compress_many(generator of pairs)",
            lambda: c.compress_many(gen([(TEXTS, "q"), (TEXT, None)])),
            lambda out: len(out) == 2,
        ),
        safe("compress_many([])", lambda: c.compress_many([]), lambda out: out == []),
        safe(
            "fingerprints(generator)",
            lambda: c.fingerprints(gen(TEXTS)),
            lambda out: len(out[0]) == 3,
        ),
        safe("prepare(generator)", lambda: c.prepare(gen(TEXTS)), lambda p: len(p) == 3),
        safe("count_tokens('')", lambda: c.count_tokens(""), lambda n: n == 0),
        # requests
        refused("compress_many(None)", lambda: c.compress_many(None)),
        refused("compress_many(str)", lambda: c.compress_many("abc")),
        refused("compress_many(bytes)", lambda: c.compress_many(b"abc")),
        refused("compress_many(dict)", lambda: c.compress_many({"a": "b"})),
        refused("compress_many([str])", lambda: c.compress_many(["abc"])),
        refused("compress_many([(chunks,)])", lambda: c.compress_many([(TEXTS,)])),
        refused("compress_many([4-tuple])", lambda: c.compress_many([(TEXTS, None, None, 1)])),
        refused("compress_many([5])", lambda: c.compress_many([5])),
        refused("compress_many(Odd)", lambda: c.compress_many(Odd())),
        refused("compress_many(explain=str)", lambda: c.compress_many([(TEXT, None)], explain="x")),
        refused(
            "compress_many(explain=tuple)", lambda: c.compress_many([(TEXT, None)], explain=())
        ),
        # plan and render
        refused("plan(None)", lambda: c.plan(None)),
        refused("plan(str)", lambda: c.plan(TEXT)),
        refused("plan(list)", lambda: c.plan(TEXTS)),
        refused("plan(result)", lambda: c.plan(c.compress(TEXT))),
        refused("plan(scores=str)", lambda: c.plan(c.prepare(TEXT), scores="abc")),
        refused("plan(scores=nan)", lambda: c.plan(c.prepare(TEXT), scores=[NAN] * 50)),
        refused("plan(scores=dict)", lambda: c.plan(c.prepare(TEXT), scores={"a": 1})),
        refused("plan(on_stage=5)", lambda: c.plan(c.prepare(TEXT), on_stage=5)),
        refused("render(None)", lambda: c.render(None)),
        refused("render(str)", lambda: c.render("plan")),
        refused("render(prepared)", lambda: c.render(c.prepare(TEXT))),
        # fingerprints, count_tokens
        refused("fingerprints(str)", lambda: c.fingerprints(TEXT)),
        refused("fingerprints(None)", lambda: c.fingerprints(None)),
        refused("fingerprints([1])", lambda: c.fingerprints([1])),
        refused("fingerprints(bytes)", lambda: c.fingerprints(b"abc")),
        refused(
            "fingerprints(str) without a store",
            lambda: Compressor(
                SemTokenConfig(cache_embeddings=False),
                encoder=FakeEncoder(),
                counter=WhitespaceCounter(),
            ).fingerprints(TEXT),
        ),
        refused("count_tokens(None)", lambda: c.count_tokens(None)),
        refused("count_tokens(5)", lambda: c.count_tokens(5)),
        refused("count_tokens(bytes)", lambda: c.count_tokens(b"abc")),
        refused("count_tokens([])", lambda: c.count_tokens([])),
        refused("count_tokens(list)", lambda: c.count_tokens(["a b", "c"])),
        # ingest
        refused("ingest(None)", lambda: engine().ingest(None)),
        refused("ingest(bytes)", lambda: engine().ingest(b"doc")),
        refused("ingest(dict)", lambda: engine().ingest({"a": "b"})),
        refused("ingest([1])", lambda: engine().ingest(["ok", 1])),
        refused("ingest(5)", lambda: engine().ingest(5)),
        refused("ingest(options=str)", lambda: engine().ingest(TEXTS, "fast")),
        refused("ingest(options=dict)", lambda: engine().ingest(TEXTS, {"batch_size": 2})),
        refused(
            "ingest without a store",
            lambda: Compressor(
                SemTokenConfig(), encoder=FakeEncoder(), counter=WhitespaceCounter()
            ).ingest(TEXTS),
        ),
        safe(
            "ingest(generator)",
            lambda: engine().ingest(gen(TEXTS)),
            lambda r: r.documents == 3 and r.encoded == 3,
        ),
        safe("ingest(one str)", lambda: engine().ingest(TEXT), lambda r: r.documents == 1),
        # the constructor
        refused("Compressor(config=str)", lambda: Compressor("fast")),
        refused("Compressor(config=dict)", lambda: Compressor({"compression_ratio": 0.5})),
        refused(
            "Compressor(encoder=str)",
            lambda: Compressor(encoder="minilm", counter=WhitespaceCounter()),
        ),
        refused("Compressor(store=str)", lambda: Compressor(encoder=FakeEncoder(), store="dir")),
        refused("Compressor(counter=int)", lambda: Compressor(encoder=FakeEncoder(), counter=5)),
    ]
    return cases


def seed_cases() -> list[Case]:
    def seed() -> SemToken:
        st = SemToken()
        st.compressor = engine()
        return st

    cases = [
        refused(f"tokenize({bad!r:.30})", lambda b=bad: seed().tokenize(fresh(b)))
        for bad in [None, 5, b"text", ["a", "b"], {"a": 1}, Gen(["a"])]
    ]
    cases += [
        refused(f"batch_process({bad!r:.30})", lambda b=bad: seed().batch_process(b))
        for bad in [None, "text", b"text", {"a": "b"}, ["ok", 1], 5, Odd()]
    ]
    cases += [
        refused("tokenize(query=5)", lambda: seed().tokenize(TEXT, query=5)),
        refused("batch_process(query=bytes)", lambda: seed().batch_process(TEXTS, query=b"q")),
        refused("SemToken(config=dict)", lambda: SemToken({"compression_ratio": 0.5})),
        refused("SemToken(tokenizer=5)", lambda: SemToken(tokenizer=5)),
        safe("tokenize(str)", lambda: seed().tokenize(TEXT), lambda d: "compressed_text" in d),
        safe("batch_process([])", lambda: seed().batch_process([]), lambda out: out == []),
        safe(
            "batch_process(tuple)",
            lambda: seed().batch_process(tuple(TEXTS)),
            lambda out: len(out) == 3,
        ),
    ]
    # A generator is not a sequence: refused (never an empty result).
    cases.append(refused("batch_process(generator)", lambda: seed().batch_process(gen(TEXTS))))
    return cases


# -- the store ----------------------------------------------------------------------------
def _fps(texts: list[str]) -> list[Any]:
    return FakeEncoder().encode_texts(texts)


def _closed() -> FingerprintStore:
    s = FingerprintStore()
    s.close()
    return s


def store_cases(tmp: Any) -> list[Case]:
    s = FingerprintStore()
    enc = "fake|dim32"
    a_file = tmp / "a-file"
    a_file.write_bytes(b"not a store")
    cases = [
        refused(f"FingerprintStore(path={bad!r:.30})", lambda b=bad: FingerprintStore(b))
        for bad in [5, b"dir", Odd(), ["dir"], "", "a\x00b"]
    ]
    # Named without its temporary path: test ids must be the same in every collecting process.
    cases.append(refused("FingerprintStore(path=<a file>)", lambda: FingerprintStore(a_file)))
    cases += [
        refused(f"FingerprintStore(codec={bad!r})", lambda b=bad: FingerprintStore(codec=b))
        for bad in [5, "nope", b"pq64", ["pq64"]]
    ]
    cases += [
        refused(f"FingerprintStore(max_bytes={bad!r})", lambda b=bad: FingerprintStore(max_bytes=b))
        for bad in [0, -1, NAN, True, "1", 2.5]
    ]
    cases += [
        refused(f"FingerprintStore({kw}={bad!r})", lambda k=kw, b=bad: FingerprintStore(**{k: b}))
        for kw in ("touch_interval", "lock_timeout")
        for bad in ["x", NAN, -1, INF, None, True]
    ]
    cases += [
        refused("FingerprintStore(read_only, memory)", lambda: FingerprintStore(read_only=True)),
        refused(
            "FingerprintStore(verify_on_open=str)",
            lambda: FingerprintStore(tmp / "v", verify_on_open="yes"),
        ),
    ]
    for bad in [TEXT, None, b"x", [1], {"a": "b"}, 5]:
        cases += [
            refused(f"lookup({bad!r:.20})", lambda b=bad: s.lookup(b, enc)),
            refused(f"contains({bad!r:.20})", lambda b=bad: s.contains(b)),
            refused(f"put(texts={bad!r:.20})", lambda b=bad: s.put(b, _fps([TEXT]), enc)),
        ]
    for bad in [None, "", 5, b"id", ["id"]]:
        cases += [
            refused(f"lookup(encoder_id={bad!r})", lambda b=bad: s.lookup([TEXT], b)),
            refused(f"put(encoder_id={bad!r})", lambda b=bad: s.put([TEXT], _fps([TEXT]), b)),
        ]
    cases += [
        refused("lookup(sources=str)", lambda: s.lookup([TEXT], enc, "doc")),
        refused("lookup(sources=wrong length)", lambda: s.lookup([TEXT], enc, [None, None])),
        refused("put(fingerprints=str)", lambda: s.put([TEXT], "fp", enc)),
        refused("put(fingerprints=wrong length)", lambda: s.put([TEXT, "b c"], _fps([TEXT]), enc)),
        refused("put(fingerprints=[1])", lambda: s.put([TEXT], [1], enc)),
        refused("write(None)", lambda: s.write(None)),
        refused("write(str)", lambda: s.write("docs")),
        refused("write([1])", lambda: s.write([1])),
        refused("add_names(None)", lambda: s.add_names(None)),
        refused("add_names(str)", lambda: s.add_names("names")),
        refused("add_names({k: str})", lambda: s.add_names({"k": "name"})),
        refused("add_names({5: [...]})", lambda: s.add_names({5: ["a"]})),
        refused("add_names({k: [1]})", lambda: s.add_names({"k": [1]})),
    ]
    cases += [
        refused(f"codec_set({bad!r})", lambda b=bad: s.codec_set(b))
        for bad in [0, -1, True, "8", 2.5, NAN, None]
    ]
    cases += [
        safe(
            "lookup(generator)",
            lambda: s.lookup(gen([TEXT, "x y"]), enc),
            lambda out: out == [None, None],
        ),
        safe("contains(generator)", lambda: s.contains(gen(["k1", "k2"])), lambda o: o == set()),
        safe("write([])", lambda: s.write([]), lambda n: n == 0),
        safe("add_names({})", lambda: s.add_names({})),
        safe("stats()", lambda: s.stats(), lambda st: st.documents >= 0),
        safe("verify()", lambda: s.verify(), lambda problems: problems == []),
        safe("flush()", lambda: s.flush()),
        safe("close() twice", lambda: (_closed().close(), None)[1]),
        safe("flush() when closed", lambda: _closed().flush()),
    ]
    for name, call in [
        ("lookup", lambda st: st.lookup([TEXT], enc)),
        ("contains", lambda st: st.contains(["k"])),
        ("put", lambda st: st.put([TEXT], _fps([TEXT]), enc)),
        ("add_names", lambda st: st.add_names({"k": ["n"]})),
        ("codec_set", lambda st: st.codec_set(32)),
        ("stats", lambda st: st.stats()),
        ("verify", lambda st: st.verify()),
        ("len", lambda st: len(st)),
    ]:
        cases.append(refused(f"closed store: {name}", lambda f=call: f(_closed())))
    return cases


# -- ingestion ----------------------------------------------------------------------------
def ingestion_cases() -> list[Case]:
    from semtoken_rag.ingestion import IngestOptions, LocalRunner, SourceDocument, ingest
    from semtoken_rag.ingestion.chunking import chunk_words

    def run(documents: Any = TEXTS, store: Any = None, runner: Any = None, options: Any = None):
        return ingest(
            documents,
            FingerprintStore() if store is None else store,
            LocalRunner(FakeEncoder()) if runner is None else runner,
            options,
        )

    cases = [
        refused(f"ingest(documents={bad!r:.30})", lambda b=bad: run(fresh(b)))
        for bad in [None, b"doc", {"a": "b"}, ["ok", 1], 5, Odd(), Gen(["ok", None])]
    ]
    cases += [
        refused(f"ingest(store={bad!r:.30})", lambda b=bad: run(store=b))
        for bad in ["dir", 5, Odd(), {"a": 1}]
    ]
    cases += [
        refused(f"ingest(runner={bad!r:.30})", lambda b=bad: run(runner=b))
        for bad in ["local", 5, Odd(), FakeEncoder()]
    ]
    cases += [
        refused(f"ingest(options={bad!r:.30})", lambda b=bad: run(options=b))
        for bad in ["fast", {"batch_size": 2}, 5]
    ]
    for field in ("batch_size", "max_batch_words"):
        cases += [
            refused(
                f"IngestOptions({field}={bad!r})", lambda f=field, b=bad: IngestOptions(**{f: b})
            )
            for bad in [0, -1, True, 2.5, NAN, INF, "8", None, HUGE * 1.0]
        ]
    cases += [
        refused(f"IngestOptions(on_error={bad!r})", lambda b=bad: IngestOptions(on_error=b))
        for bad in ["ignore", None, 5, ["raise"], b"raise"]
    ]
    cases += [
        refused(f"IngestOptions(on_commit={bad!r})", lambda b=bad: IngestOptions(on_commit=b))
        for bad in ["print", 5]
    ]
    cases += [
        refused(f"SourceDocument(text={bad!r})", lambda b=bad: SourceDocument(b))
        for bad in [None, b"text", 5, ["text"]]
    ]
    cases += [
        refused(f"SourceDocument(names={bad!r})", lambda b=bad: SourceDocument(TEXT, b))
        for bad in ["name", None, 5, [1], ("a", None), b"name", {"a": "b"}]
    ]
    cases += [
        safe(
            "SourceDocument(names=list)",
            lambda: SourceDocument(TEXT, ["a", "b"]),
            lambda d: d.names == ("a", "b"),
        ),
        safe(
            "SourceDocument(names=generator)",
            lambda: SourceDocument(TEXT, gen(["a"])),
            lambda d: d.names == ("a",),
        ),
        safe("ingest(generator)", lambda: run(gen(TEXTS)), lambda r: r.encoded == 3),
        safe(
            "ingest(SourceDocument)", lambda: run(SourceDocument(TEXT)), lambda r: r.documents == 1
        ),
        safe("ingest([])", lambda: run([]), lambda r: r.documents == 0),
        safe("IngestOptions(max_batch_words=huge)", lambda: IngestOptions(max_batch_words=HUGE)),
    ]
    cases += [
        refused(f"chunk_words({args!r:.40})", lambda a=args: chunk_words(*a))
        for args in [
            (None, 5),
            (b"a b", 2),
            (["a b"], 2),
            ("a b c", "5"),
            ("a b c", 2.5),
            ("a b c", True),
            ("a b c", 5, None),
            ("a b c", NAN),
            ("a b c", 0),
            ("a b c", 3, 3),
            ("a b c", 3, -1),
        ]
    ]
    cases += [
        safe(
            "chunk_words(huge size)",
            lambda: chunk_words("a b c", HUGE),
            lambda out: out == ["a b c"],
        ),
        safe(
            "chunk_words(np.int64)",
            lambda: chunk_words("a b c", np.int64(2)),
            lambda out: out == ["a b", "c"],
        ),
    ]
    return cases


def ray_cases() -> list[Case]:
    from semtoken_rag.distributed import RayOptions

    cases = [
        refused(f"RayOptions(actors={bad!r})", lambda b=bad: RayOptions(actors=b))
        for bad in [0, -1, True, 2.5, "2", None, NAN]
    ]
    for field in ("gpus_per_actor", "cpus_per_actor", "connect_timeout"):
        cases += [
            refused(f"RayOptions({field}={bad!r})", lambda f=field, b=bad: RayOptions(**{f: b}))
            for bad in [-1, NAN, INF, True, "1", None]
        ]
    cases += [
        refused(f"RayOptions({field}=0)", lambda f=field: RayOptions(**{f: 0}))
        for field in ("cpus_per_actor", "connect_timeout")
    ]
    cases += [
        refused(f"RayOptions(address={bad!r})", lambda b=bad: RayOptions(address=b))
        for bad in [6379, b"h:1", ["h:1"]]
    ]
    cases += [
        safe("RayOptions(gpus_per_actor=0)", lambda: RayOptions(gpus_per_actor=0)),
        safe("RayOptions(address=str)", lambda: RayOptions(address="ray://h:10001")),
    ]
    return cases


# -- the adapters -------------------------------------------------------------------------
def langchain_cases() -> list[Case]:
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document
    from langchain_semtoken import SemTokenCompressor, SemTokenIngestor

    docs = [Document(page_content=t, metadata={"source": f"d{i}"}) for i, t in enumerate(TEXTS)]
    comp = SemTokenCompressor.from_engine(engine(), drop_empty=False)
    ing = SemTokenIngestor.from_engine(engine())
    bad_docs: list[Any] = [
        None,
        TEXT,
        b"x",
        {"a": "b"},
        [docs[0], 1],
        docs[0],
        TEXTS,
        5,
        Gen([docs[0], "x"]),
    ]
    cases: list[Case] = []
    for i, bad in enumerate(bad_docs):
        cases += [
            refused(
                f"compress_documents({bad!r:.30})#{i}",
                lambda b=bad: comp.compress_documents(fresh(b), "q"),
            ),
            refused(
                f"acompress_documents({bad!r:.30})#{i}",
                lambda b=bad: comp.acompress_documents(fresh(b), "q"),
            ),
            refused(
                f"transform_documents({bad!r:.30})#{i}",
                lambda b=bad: ing.transform_documents(fresh(b)),
            ),
        ]
    for bad in [5, b"q", ["q"], {"q": 1}]:
        cases.append(
            refused(
                f"compress_documents(query={bad!r})", lambda b=bad: comp.compress_documents(docs, b)
            )
        )
    cases += [
        safe(
            "compress_documents(generator)",
            lambda: comp.compress_documents(gen(docs), "q"),
            lambda out: len(out) == 3,
        ),
        safe(
            "acompress_documents(generator)",
            lambda: comp.acompress_documents(gen(docs), "q"),
            lambda out: len(out) == 3,
        ),
        safe(
            "compress_documents([])",
            lambda: comp.compress_documents([], "q"),
            lambda out: list(out) == [],
        ),
        safe(
            "compress_documents(query=None)",
            lambda: comp.compress_documents(docs, None),
            lambda out: len(out) == 3,
        ),
        safe(
            "transform_documents(generator)",
            lambda: ing.transform_documents(gen(docs)),
            lambda out: list(out) == docs,
        ),
        refused(
            "SemTokenCompressor(compression_ratio=nan)",
            lambda: SemTokenCompressor(compression_ratio=NAN),
        ),
        refused(
            "SemTokenCompressor(compression_ratio='x')",
            lambda: SemTokenCompressor(compression_ratio="x"),
        ),
        refused(
            "SemTokenCompressor(budget_scope='x')", lambda: SemTokenCompressor(budget_scope="x")
        ),
        refused("SemTokenCompressor(store='dir')", lambda: SemTokenCompressor(store="dir")),
        refused(
            "SemTokenCompressor(engine_options='x')", lambda: SemTokenCompressor(engine_options="x")
        ),
        refused("SemTokenIngestor() without a store", lambda: SemTokenIngestor()),
    ]
    return cases


def llama_index_cases() -> list[Case]:
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import Document, NodeWithScore, QueryBundle, TextNode
    from llama_index.postprocessor.semtoken import SemTokenFingerprinter, SemTokenNodePostprocessor

    nodes = [
        NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=1.0) for i, t in enumerate(TEXTS)
    ]
    documents = [Document(text=t, id_=f"d{i}") for i, t in enumerate(TEXTS)]
    pp = SemTokenNodePostprocessor.from_engine(engine(), drop_empty=False)
    fp = SemTokenFingerprinter.from_engine(engine())
    bad_nodes: list[Any] = [
        None,
        TEXT,
        b"x",
        {"a": "b"},
        [nodes[0], 1],
        nodes[0],
        [n.node for n in nodes],
        5,
        Gen([nodes[0], "x"]),
    ]
    cases: list[Case] = []
    for i, bad in enumerate(bad_nodes):
        cases.append(
            refused(
                f"postprocess_nodes({bad!r:.30})#{i}",
                lambda b=bad: pp.postprocess_nodes(fresh(b), query_str="q"),
            )
        )
    for i, bad in enumerate(
        [None, TEXT, b"x", {"a": "b"}, [documents[0], 1], documents[0], 5, Gen([documents[0], "x"])]
    ):
        cases.append(refused(f"fingerprinter({bad!r:.30})#{i}", lambda b=bad: fp(fresh(b))))
    for bad in [5, b"q", ["q"], Odd()]:
        cases.append(
            refused(
                f"postprocess_nodes(query_bundle={bad!r:.20})",
                lambda b=bad: pp.postprocess_nodes(nodes, b),
            )
        )
    cases += [
        refused("postprocess_nodes(query_str=5)", lambda: pp.postprocess_nodes(nodes, query_str=5)),
        refused(
            "postprocess_nodes(QueryBundle(5))",
            lambda: pp.postprocess_nodes(nodes, QueryBundle(query_str=5)),
        ),
        safe(
            "postprocess_nodes(query_bundle=str)",
            lambda: pp.postprocess_nodes(nodes, "q"),
            lambda out: len(out) == 3,
        ),
        safe(
            "postprocess_nodes(generator)",
            lambda: pp.postprocess_nodes(gen(nodes), query_str="q"),
            lambda out: len(out) == 3,
        ),
        safe(
            "postprocess_nodes([])",
            lambda: pp.postprocess_nodes([], query_str="q"),
            lambda out: out == [],
        ),
        safe(
            "postprocess_nodes(no query)",
            lambda: pp.postprocess_nodes(nodes),
            lambda out: len(out) == 3,
        ),
        safe(
            "fingerprinter(generator)",
            lambda: fp(gen(documents)),
            lambda out: list(out) == documents,
        ),
        refused(
            "SemTokenNodePostprocessor(max_ratio=2)", lambda: SemTokenNodePostprocessor(max_ratio=2)
        ),
        refused("SemTokenFingerprinter() without a store", lambda: SemTokenFingerprinter()),
    ]
    return cases


# -- the lab ------------------------------------------------------------------------------
def lab_cases() -> list[Case]:
    pytest.importorskip("semtoken_lab")
    from semtoken_lab.eval.rereport import report_only
    from semtoken_lab.eval.run_config import RunConfig

    def cfg(**kw: Any) -> Any:
        return RunConfig(**{"data": ("x.jsonl",), "out": "out", **kw})

    bad: dict[str, list[Any]] = {
        "data": ["x.jsonl", None, b"x", (), [1], {"a": 1}, 5],
        "out": [None, 5, "", b"out"],
        "fmt": ["csv", None, 5],
        "mode": ["both", None],
        "methods": ["semtoken", (), ("nope",), [1], None],
        "ratios": [0.5, "0.5", (), (NAN,), (0.0,), (1.5,), (True,), ("0.5",), None],
        "budget": [0, -1, True, 2.5, NAN, "10"],
        "limit": [0, -1, True, 2.5, "3"],
        "per_doc": [0, -1, True, "3"],
        "workers": [0, -1, True, None, 2.5],
        "top_k": [0, -1, None],
        "chunk_size": [0, -1, None],
        "chunk_overlap": [-1, 120, 500, None],
        "max_context_tokens": [0, -1, "x"],
        "max_answer_words": [0, -1, None],
        "seed": ["x", None, 2.5, -1],
        "reader": [None, 5, ""],
    }
    cases = [
        refused(f"RunConfig({field}={value!r:.20})", lambda f=field, v=value: cfg(**{f: v}))
        for field, values in bad.items()
        for value in values
    ]
    cases += [
        refused(f"report_only({value!r:.20})", lambda v=value: report_only(v))
        for value in [None, 5, b"out", "", "no/such/folder"]
    ]
    cases += [
        refused(
            f"report_only({kw}={value!r:.20})",
            lambda k=kw, v=value: report_only("no/such/folder", **{k: v}),
        )
        for kw, value in [
            ("methods", "semtoken"),
            ("methods", [1]),
            ("ratios", "0.5"),
            ("ratios", 0.5),
            ("ratios", [NAN]),
        ]
    ]
    cases += [
        safe("RunConfig(defaults)", lambda: cfg()),
        safe(
            "RunConfig(data=list of str and Path)",
            lambda: cfg(data=["a.jsonl", Path("b")]),
            lambda c: c.data == ("a.jsonl", "b"),
        ),
        safe("RunConfig(out=Path)", lambda: cfg(out=Path("o")), lambda c: c.out == "o"),
        safe("RunConfig(ratios=auto)", lambda: cfg(ratios=(-1.0, 0.25))),
        safe("RunConfig(budget)", lambda: cfg(budget=500)),
    ]
    return cases


GROUPS: dict[str, Callable[..., list[Case]]] = {
    "engine": engine_cases,
    "seed": seed_cases,
    "store": store_cases,
    "ingestion": ingestion_cases,
    "ray": ray_cases,
    "langchain": langchain_cases,
    "llama_index": llama_index_cases,
    "lab": lab_cases,
}


def _build(group: str, tmp: Path) -> list[Case]:
    build = GROUPS[group]
    return build(tmp) if group == "store" else build()


def _collect() -> list[Any]:
    """``(group, index)`` of every case, with the case's name as the test id."""
    import tempfile

    params = []
    with tempfile.TemporaryDirectory() as tmp:
        for group in GROUPS:
            try:
                cases = _build(group, Path(tmp))
            except pytest.skip.Exception as exc:  # an optional framework is not installed
                params.append(
                    pytest.param(
                        group, -1, id=f"{group}: skipped", marks=pytest.mark.skip(reason=str(exc))
                    )
                )
                continue
            names = [c.name for c in cases]
            duplicates = {n for n in names if names.count(n) > 1}
            assert not duplicates, f"{group}: repeated case names {duplicates}"
            params += [pytest.param(group, i, id=f"{group}: {c.name}") for i, c in enumerate(cases)]
    return params


CASES = _collect()


def test_every_group_has_cases() -> None:
    groups = {p.values[0] for p in CASES}
    assert groups == set(GROUPS)
    assert len(CASES) > 600, len(CASES)


@pytest.mark.parametrize(("group", "index"), CASES)
def test_error_contract(group: str, index: int, tmp_path: Path) -> None:
    """One call with a malformed argument (its objects built afresh for this test)."""
    run_case(_build(group, tmp_path)[index])
