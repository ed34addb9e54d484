"""Where the instruction, the context spans and the question sit in the reader's prompt tokens.

Why: a KV budget must know which cached entries it may evict.  The chat-template prefix (the
instruction, the system turn) and everything after the context (the question, the task wording,
the assistant header) are always kept; the context is evictable, in units of the compressor's
sentence spans.  The spans come with character offsets in the context string
(:attr:`semtoken_rag.results.Explanation.unit_char_spans`); the reader tokenizer's
``offset_mapping`` over the rendered prompt turns them into token positions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from semtoken_rag.errors import ConfigError, InvalidInputError

from semtoken_lab.reader.prompts import build_prompt

#: ``(context, question) -> (U, 2) int array`` of span character offsets in ``context``.
SpanSource = Callable[[str, str], np.ndarray]


class _PromptReader(Protocol):
    tokenizer: Any
    prompts: Any

    def fit_context(
        self,
        question: str,
        context: str,
        *,
        task: str = ...,
        options: Sequence[str] | None = ...,
        reserve: int = ...,
        limit: int | None = ...,
    ) -> str: ...


class CompressorSpans:
    """The compressor's units (sentences) of a context, as a :data:`SpanSource`.

    Args:
        compressor: A :class:`semtoken_rag.Compressor`; its ``explain`` gives the unit spans.
    """

    def __init__(self, compressor: Any) -> None:
        self.compressor = compressor

    def __call__(self, context: str, question: str) -> np.ndarray:
        _, explanation = self.compressor.explain([context], question or None)
        return np.asarray(explanation.unit_char_spans, dtype=np.int64).reshape(-1, 2)


@dataclass(frozen=True)
class PromptLayout:
    """A prompt's token ids and the role of each position.

    Attributes:
        ids: Prompt token ids (no special tokens added beyond the chat template's).
        context: The context string as it appears in the prompt (after any cut to fit).
        context_start: First token position of the context (= the protected prefix length).
        context_end: One past the last context token; positions from here to the end of the
            prompt (the question, the task wording, the assistant header) are protected.
        token_span: ``(context_end - context_start,)`` span index of each context token.
        span_chars: ``(n_spans, 2)`` character offsets of the spans in :attr:`context`.
    """

    ids: tuple[int, ...]
    context: str
    context_start: int
    context_end: int
    token_span: np.ndarray
    span_chars: np.ndarray

    @property
    def prompt_tokens(self) -> int:
        return len(self.ids)

    @property
    def protected_tokens(self) -> int:
        """Prompt tokens a budget never evicts (instruction prefix + question suffix)."""
        return len(self.ids) - (self.context_end - self.context_start)

    @property
    def n_spans(self) -> int:
        return int(self.span_chars.shape[0])

    def span_text(self, span: int) -> str:
        a, b = self.span_chars[span]
        return self.context[int(a) : int(b)]


def _token_spans(starts: np.ndarray, span_chars: np.ndarray) -> np.ndarray:
    """Span of each context token: the last span starting at or before the token's first char
    (whitespace between spans joins the span before it)."""
    if span_chars.shape[0] == 0:
        return np.zeros(len(starts), dtype=np.int64)
    idx = np.searchsorted(span_chars[:, 0], starts, side="right") - 1
    return np.clip(idx, 0, span_chars.shape[0] - 1).astype(np.int64)


def _tokens_with_offsets(tokenizer: Any, prompt: str) -> tuple[tuple[int, ...], np.ndarray]:
    """``(token ids, (T, 2) int64 character offsets)`` of ``prompt``.

    Raises:
        ConfigError: the tokenizer is a slow one (no offset mapping).
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(
            f"a KV budget maps spans to tokens with offset mappings, which "
            f"{type(tokenizer).__name__} (a slow tokenizer) does not provide; load the "
            "reader with a fast tokenizer"
        )
    enc = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
    ids = tuple(int(i) for i in enc["input_ids"])
    return ids, np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)


def _context_start(
    reader: _PromptReader,
    prompt: str,
    body: str,
    question: str,
    task: str,
    options: Sequence[str] | None,
) -> int:
    """Character offset in ``prompt`` where the template placed the context ``body``.

    Why not ``prompt.find(body)``: the context text can also occur earlier in the prompt (in
    the system turn, the instruction, or a tiny context such as ``"the"``), and the first
    occurrence is then the wrong one.  Instead the prompt is rendered once more with a marker
    (absent from ``prompt``) in place of the context: the text before the marker is exactly
    what the template puts before the context, whatever the context says, so the context
    starts at its length (after any leading whitespace the context kept).  The real prompt
    must start with that prefix followed by ``body``.

    Raises:
        InvalidInputError: the context is not where the marker was (a chat template that
            rewrites message text, or renders it depending on the context itself).
    """
    marker = "<<semtoken-context>>"
    while marker in prompt:
        marker = f"<{marker}>"
    probe = build_prompt(reader.tokenizer, task, question, marker, options, reader.prompts)
    at = probe.find(marker)
    rest = prompt[at:] if at >= 0 and prompt.startswith(probe[:at]) else ""
    lead = len(rest) - len(rest.lstrip())  # a context passed with its leading whitespace
    if not body or not rest[lead:].startswith(body):
        raise InvalidInputError(
            "the context does not appear verbatim in the rendered prompt; a KV budget needs "
            "the chat template to keep message text unchanged"
        )
    return at + lead


def layout_prompt(
    reader: _PromptReader,
    question: str,
    context: str,
    *,
    spans: SpanSource | None = None,
    task: str = "qa",
    options: Sequence[str] | None = None,
    reserve: int = 0,
    limit: int | None = None,
) -> PromptLayout:
    """Build the reader's prompt for ``question``/``context`` and locate its parts.

    Args:
        reader: The reader (its tokenizer, templates and context cut are used).
        spans: Where the context's spans come from; ``None`` makes the whole context one span.
        reserve: Tokens kept free after the prompt (the answer) when cutting the context.
        limit: Longest prompt + reserve (default: the reader's ``max_context_tokens``).

    Raises:
        InvalidInputError: the context cannot be found in the rendered prompt (a chat
            template that rewrites message text).
        ConfigError: the tokenizer is a slow one (no offset mapping).
    """
    fitted = reader.fit_context(
        question, context, task=task, options=options, reserve=reserve, limit=limit
    )
    prompt = build_prompt(reader.tokenizer, task, question, fitted, options, reader.prompts)
    ids, offsets = _tokens_with_offsets(reader.tokenizer, prompt)
    body = fitted.strip()
    if not body:
        return PromptLayout(
            ids, "", len(ids), len(ids), np.zeros(0, np.int64), np.zeros((0, 2), np.int64)
        )
    at = _context_start(reader, prompt, body, question, task, options)
    end = at + len(body)
    inside = (offsets[:, 1] > at) & (offsets[:, 0] < end)
    where = np.flatnonzero(inside)
    start_tok, end_tok = int(where[0]), int(where[-1]) + 1
    chars = (
        np.asarray(spans(body, question), dtype=np.int64).reshape(-1, 2)
        if spans is not None
        else np.array([[0, len(body)]], dtype=np.int64)
    )
    if chars.shape[0] == 0:
        chars = np.array([[0, len(body)]], dtype=np.int64)
    tok_starts = np.maximum(offsets[start_tok:end_tok, 0] - at, 0)
    return PromptLayout(ids, body, start_tok, end_tok, _token_spans(tok_starts, chars), chars)
