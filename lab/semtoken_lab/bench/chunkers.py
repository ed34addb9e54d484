"""The splitters of the splitters benchmark, as the frameworks cut real documents (offline).

Each splitter returns :class:`Cut` chunks: the chunk text, its document, where it truly starts
in that document (for the benchmark's own alignment check) and the hint the framework gives
(:class:`~semtoken_rag.fingerprints.ChunkSource`: LangChain ``metadata["source"]`` and
``start_index`` from ``add_start_index=True``; LlamaIndex ``ref_doc_id`` and
``start_char_idx``).

Token splitters: LangChain's ``TokenTextSplitter.from_huggingface_tokenizer`` only sets the
*length function*; the splitting itself still tokenizes with tiktoken's ``gpt2``, which must be
downloaded (not possible offline).  :class:`HFTokenSplitter` runs LangChain's own token
algorithm (``split_text_on_tokens``, the body of ``TokenTextSplitter.split_text``) on a Hugging
Face tokenizer instead: SmolLM2's byte-level BPE (chunks are substrings of the document) or
MiniLM's WordPiece (reported apart: its decode lowercases and re-spaces the text, so its chunks
are not substrings and no store can serve them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from semtoken_lab.bench.realdocs import RealDoc


@dataclass(frozen=True)
class Cut:
    """A chunk: text, document index, true start (``None`` if not a substring), hint."""

    text: str
    doc: int
    start: int | None
    source: Any


def _source(name: str, start: int | None) -> Any:
    from semtoken_rag.fingerprints import ChunkSource

    return ChunkSource(document=name, start=start if start is not None and start >= 0 else None)


def _true_start(text: str, chunk: str, hint: int | None, after: int) -> int | None:
    """Where ``chunk`` starts in ``text``: the hint when it is right, else the next occurrence
    from ``after`` (then from 0); ``None`` when it is not a substring."""
    if hint is not None and hint >= 0 and text.startswith(chunk, hint):
        return hint
    found = text.find(chunk, after)
    found = text.find(chunk) if found < 0 else found
    return None if found < 0 else found


def _langchain_cuts(splitter: Any, docs: Sequence[RealDoc]) -> list[Cut]:
    out = []
    for i, d in enumerate(docs):
        after = 0
        for c in splitter.create_documents([d.text], metadatas=[{"source": d.name}]):
            hint = c.metadata.get("start_index")
            start = _true_start(d.text, c.page_content, hint, after)
            after = start if start is not None else after
            out.append(Cut(c.page_content, i, start, _source(c.metadata["source"], hint)))
    return out


def recursive(size: int) -> Callable[[Sequence[RealDoc]], list[Cut]]:
    """LangChain ``RecursiveCharacterTextSplitter`` (``size`` characters, 10% overlap)."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=size, chunk_overlap=size // 10, add_start_index=True
    )
    return lambda docs: _langchain_cuts(splitter, docs)


def hf_token_splitter(tokenizer: Any, size: int) -> Any:
    """LangChain's token splitting on a Hugging Face tokenizer (see the module docstring)."""
    from langchain_text_splitters import TextSplitter, TokenTextSplitter
    from langchain_text_splitters.base import Tokenizer, split_text_on_tokens

    class HFTokenSplitter(TokenTextSplitter):
        def __init__(self, **kwargs: Any) -> None:
            TextSplitter.__init__(self, **kwargs)  # no tiktoken

        def split_text(self, text: str) -> list[str]:
            tok = Tokenizer(
                chunk_overlap=self._chunk_overlap, tokens_per_chunk=self._chunk_size,
                decode=tokenizer.decode,
                encode=lambda s: tokenizer.encode(s, add_special_tokens=False),
            )  # fmt: skip
            return split_text_on_tokens(text=text, tokenizer=tok)

    return HFTokenSplitter(chunk_size=size, chunk_overlap=size // 10, add_start_index=True)


def token(tokenizer: Any, size: int) -> Callable[[Sequence[RealDoc]], list[Cut]]:
    """LangChain token splitting (``size`` tokens of ``tokenizer``, 10% overlap)."""
    splitter = hf_token_splitter(tokenizer, size)
    return lambda docs: _langchain_cuts(splitter, docs)


def sentence(tokenizer: Any, size: int) -> Callable[[Sequence[RealDoc]], list[Cut]]:
    """LlamaIndex ``SentenceSplitter`` (``size`` tokens of ``tokenizer``, 10% overlap)."""
    from llama_index.core import Document
    from llama_index.core.node_parser import SentenceSplitter

    splitter = SentenceSplitter(
        chunk_size=size, chunk_overlap=size // 10,
        tokenizer=lambda s: tokenizer.encode(s, add_special_tokens=False),
    )  # fmt: skip

    def cut(docs: Sequence[RealDoc]) -> list[Cut]:
        index = {d.name: i for i, d in enumerate(docs)}
        nodes = splitter.get_nodes_from_documents([Document(text=d.text, id_=d.name)
                                                   for d in docs])  # fmt: skip
        out = []
        for node in nodes:
            n: Any = node  # TextNode (text, start_char_idx)
            i = index[str(n.ref_doc_id)]
            start = _true_start(docs[i].text, n.text, n.start_char_idx, 0)
            out.append(Cut(n.text, i, start, _source(str(n.ref_doc_id), n.start_char_idx)))
        return out

    return cut


def verbatim(words: int = 256, overlap: int = 32) -> Callable[[Sequence[RealDoc]], list[Cut]]:
    """``semtoken-rag ingest``'s word windows (the reference: these are ingested as documents)."""
    from semtoken_rag.ingestion.chunking import chunk_words

    def cut(docs: Sequence[RealDoc]) -> list[Cut]:
        out = []
        for i, d in enumerate(docs):
            after = 0
            for c in chunk_words(d.text, words, overlap):
                start = _true_start(d.text, c, None, after)
                after = start if start is not None else after
                out.append(Cut(c, i, start, _source(d.name, start)))
        return out

    return cut


def splitters(smollm2: Any, minilm: Any, quick: bool) -> dict[tuple[str, int], Any]:
    """``(name, size) -> cut`` of every splitter of the benchmark."""
    sizes = {"recursive-chars": (500, 1500), "token-smollm2": (256, 1024),
             "sentence-llamaindex": (256, 1024), "token-minilm": (256,)}  # fmt: skip
    if quick:
        sizes = {k: v[:1] for k, v in sizes.items()}
    makers: dict[str, Callable[[int], Any]] = {
        "recursive-chars": recursive,
        "token-smollm2": lambda n: token(smollm2, n),
        "sentence-llamaindex": lambda n: sentence(smollm2, n),
        "token-minilm": lambda n: token(minilm, n),
    }
    return {(name, n): makers[name](n) for name, ns in sizes.items() for n in ns}
