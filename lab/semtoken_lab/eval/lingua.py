"""LongLLMLingua (PyPI ``llmlingua``) run offline with the local reader as its scorer.

Three problems of ``llmlingua`` 0.2.2 are handled here, without touching the package:

1. **tiktoken download**: ``PromptCompressor`` builds a GPT tokenizer with tiktoken, which
   fetches ``cl100k_base`` from the network.  llama-index-core bundles that file in its
   ``_static/tiktoken_cache`` (named by the sha1 of the URL, as tiktoken expects), so that file
   is copied into the cache folder tiktoken reads before the first use (no environment variable
   is set: it would hold for the whole process and its children).
2. **new transformers cache** (microsoft/LLMLingua#210): ``get_ppl`` indexes
   ``past_key_values[0][0]`` and slices it as a list of ``[k, v]`` pairs; transformers 5 returns a
   ``DynamicCache``.  :class:`OfflinePromptCompressor` overrides ``get_ppl`` to hand the model a
   ``DynamicCache`` and give llmlingua back the legacy list it manipulates.
3. **budget in GPT tokens**: its ``rate`` is counted in tiktoken tokens and overshoots (56% kept
   at rate 0.5 measured); :class:`LongLLMLingua` steers the rate (a few secant/bisection steps)
   until the achieved ratio in *reader* tokens is within ``tol`` of the target, and trims the
   tail as a last resort so it never exceeds the budget by more than ``tol``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from semtoken_rag.core.segment import find_units, find_words
from semtoken_rag.protocols import Counter as WordCoster

logger = logging.getLogger(__name__)

#: Words per pseudo-document when a single context is split for the coarse (document) filter.
SEGMENT_WORDS = 100


def tiktoken_cache_dir() -> Path | None:
    """The tiktoken cache bundled with llama-index-core (holds cl100k_base), if installed."""
    import importlib.util

    spec = importlib.util.find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "_static" / "tiktoken_cache"
    return folder if folder.is_dir() else None


#: Where tiktoken downloads ``cl100k_base`` from; its cache names the file by this URL's sha1.
_CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


def tiktoken_read_cache() -> Path | None:
    """The folder tiktoken reads cached files from, by its own rule
    (``tiktoken.load.read_file_cached``), or ``None`` when the user disabled caching."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return Path(os.environ[var]) if os.environ[var] else None
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def ensure_tiktoken_offline() -> None:
    """Copy the bundled ``cl100k_base`` into tiktoken's cache folder unless it is there.

    Why a copy and not ``TIKTOKEN_CACHE_DIR``: the variable would switch every later tiktoken
    user in this process and its children to the bundled folder; a file in tiktoken's own cache
    is what a first download would have left there (tiktoken checks its hash on every read).
    """
    bundled, cache = tiktoken_cache_dir(), tiktoken_read_cache()
    if bundled is None or cache is None:
        return
    name = hashlib.sha1(_CL100K_URL.encode()).hexdigest()
    source, target = bundled / name, cache / name
    if not source.is_file() or target.is_file():
        return
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


class _CacheCompatiblePpl:
    """The perplexity methods :class:`OfflinePromptCompressor` overrides in ``PromptCompressor``.

    ``get_ppl`` speaks both cache formats (LLMLingua#210).  ``get_condition_ppl`` (the coarse,
    rate-independent document ranking) is memoised per (text, question), so the rate-steering
    steps after the first skip it.

    Why a mixin: ``PromptCompressor`` comes from ``llmlingua``, which imports torch and
    transformers; the overrides are defined here and joined to it at first use
    (:func:`_make_compressor_class`), so this module imports without them.
    """

    # Set by ``PromptCompressor.__init__``.
    tokenizer: Any
    model: Any
    device: Any
    max_position_embeddings: int
    _ppl_memo: dict[tuple[str, str, str, str], Any]

    def get_condition_ppl(
        self,
        text: str,
        question: str,
        condition_in_question: str = "none",
        granularity: str = "sentence",
    ) -> Any:
        memo = self.__dict__.setdefault("_ppl_memo", {})
        key = (text, question, condition_in_question, granularity)
        if key not in memo:
            if len(memo) > 4096:
                memo.clear()
            memo[key] = super().get_condition_ppl(  # type: ignore[misc]
                text, question, condition_in_question, granularity
            )
        return memo[key]

    def get_ppl(
        self,
        text: str,
        granularity: str = "sentence",
        input_ids: Any = None,
        attention_mask: Any = None,
        past_key_values: Any = None,
        return_kv: bool = False,
        end: int | None = None,
        condition_mode: str = "none",
        condition_pos_id: int = 0,
    ) -> Any:
        if input_ids is None:
            tok = self.tokenizer(text, return_tensors="pt")
            input_ids = tok["input_ids"].to(self.device)
            attention_mask = tok["attention_mask"].to(self.device)
        past_length = past_key_values[0][0].shape[2] if past_key_values is not None else 0
        if end is None:
            end = input_ids.shape[1]
        end = min(end, past_length + self.max_position_embeddings)
        response, legacy = _forward_with_legacy_cache(
            self.model, input_ids[:, past_length:end], attention_mask[:, :end], past_key_values
        )
        loss = _next_token_losses(
            response.logits,
            input_ids[..., past_length + 1 : end],
            attention_mask[:, past_length:end],
        )
        if condition_mode == "before":
            loss = loss[:condition_pos_id]
        elif condition_mode == "after":
            loss = loss[condition_pos_id:]
        res = loss.mean() if granularity == "sentence" else loss
        return (res, legacy) if return_kv else res


def _make_compressor_class() -> type:
    """``OfflinePromptCompressor``: ``llmlingua.PromptCompressor`` with the overrides of
    :class:`_CacheCompatiblePpl`."""
    from llmlingua import PromptCompressor

    class OfflinePromptCompressor(_CacheCompatiblePpl, PromptCompressor):  # type: ignore[misc]
        """``PromptCompressor`` run offline: see :class:`_CacheCompatiblePpl`."""

    return OfflinePromptCompressor


def _forward_with_legacy_cache(
    model: Any, input_ids: Any, attention_mask: Any, past_key_values: Any
) -> tuple[Any, list[list[Any]]]:
    """One forward pass of ``model`` that takes and gives back llmlingua's legacy cache.

    Why: llmlingua 0.2.2 indexes and slices the cache as a list of ``[k, v]`` pairs, while
    transformers 5 takes and returns a ``DynamicCache`` (LLMLingua#210).

    Returns:
        The model output and its cache as ``[[keys, values], ...]``, one pair per layer.
    """
    import torch
    from transformers import DynamicCache

    from semtoken_lab.reader.decoding import cache_argument, output_cache

    cache = (
        DynamicCache(ddp_cache_data=[(k, v) for k, v in past_key_values])
        if past_key_values is not None
        else None
    )
    with torch.no_grad():
        response = model(
            input_ids,
            attention_mask=attention_mask,
            use_cache=True,
            **{cache_argument(model): cache},
        )
    legacy = [[layer.keys, layer.values] for layer in output_cache(response).layers]
    return response, legacy


def _next_token_losses(logits: Any, labels: Any, attention_mask: Any) -> Any:
    """Cross-entropy of each attended next token: llmlingua's ``get_ppl`` arithmetic, unchanged.

    Args:
        logits: ``(1, n, vocab)`` logits of the ``n`` tokens fed to the model.
        labels: ``(1, n - 1)`` ids of the tokens each logit predicts.
        attention_mask: ``(1, n)`` mask of the fed tokens.

    Returns:
        ``(n_attended,)`` losses, in order.
    """
    import torch

    shift_logits = logits[..., :-1, :].contiguous()
    shift_labels = labels.contiguous()
    active = (attention_mask == 1)[..., :-1].view(-1)
    active_logits = shift_logits.view(-1, shift_logits.size(-1))[active]
    active_labels = shift_labels.view(-1)[active]
    return torch.nn.CrossEntropyLoss(reduction="none")(active_logits, active_labels)


def split_segments(text: str, words: int = SEGMENT_WORDS) -> list[str]:
    """Group sentences of one context into ~``words``-word pseudo-documents.

    Why: LongLLMLingua's coarse stage ranks *documents* by question perplexity; a single long
    context would be one document and the stage would do nothing (the paper splits too).
    """
    ws = find_words(text)
    if len(ws) == 0:
        return [text] if text else []
    starts = find_units(text, ws, words)
    segs: list[str] = []
    a = 0
    for s in [*list(starts[1:]), len(ws)]:
        if s - a >= words or s == len(ws):
            segs.append(text[ws[a, 0] : ws[s - 1, 1]])
            a = s
    return segs


class LongLLMLingua:
    """The ``longllmlingua`` method: question-aware coarse-to-fine compression.

    Args:
        model_dir: Local Hugging Face folder of the scorer LM (the reader's converted folder).
        counter: Counts reader tokens (the target ratio is in those).
        tol: Accepted |achieved - target| ratio.
        max_steps: Rate-steering calls of ``compress_prompt`` per example.
        device: Where the scorer LM runs (``cpu``, ``cuda``).
    """

    def __init__(
        self,
        model_dir: str,
        counter: WordCoster,
        *,
        tol: float = 0.03,
        max_steps: int = 5,
        device: str = "cpu",
    ) -> None:
        ensure_tiktoken_offline()
        cls = _make_compressor_class()
        self.compressor = cls(model_name=model_dir, device_map=device)
        self.counter = counter
        self.tol = tol
        self.max_steps = max_steps
        self.last_steps = 0

    def _run(self, docs: list[str], question: str, rate: float) -> str:
        out = self.compressor.compress_prompt(
            docs,
            question=question,
            rate=rate,
            condition_in_question="after_condition",
            reorder_context="original",
            dynamic_context_compression_ratio=0.3,
            condition_compare=True,
            context_budget="+100",
            rank_method="longllmlingua",
            concate_question=False,
        )
        return str(out["compressed_prompt"]).strip()

    def __call__(self, chunks: Sequence[str], question: str, budget: int) -> str:
        full_text = "\n\n".join(chunks)
        full = max(self.counter.count(full_text), 1)
        target = budget / full
        if target >= 1.0:
            return full_text
        docs = list(chunks) if len(chunks) > 1 else split_segments(full_text)
        lo, hi, rate = 0.01, 1.0, target
        best: tuple[float, str] | None = None
        self.last_steps = 0
        for _ in range(self.max_steps):
            self.last_steps += 1
            text = self._run(docs, question, rate)
            achieved = self.counter.count(text) / full
            err = achieved - target
            if best is None or _better(err, best[0], self.tol):
                best = (err, text)
            if abs(err) <= self.tol * 0.66:
                break
            if err > 0:
                hi = rate
            else:
                lo = rate
            guess = rate * target / max(achieved, 1e-3)  # secant through the origin
            rate = guess if lo < guess < hi else (lo + hi) / 2
        assert best is not None
        err, text = best
        if err > self.tol:
            logger.info(
                "longllmlingua overshoots by %.3f after %d steps: trimming", err, self.max_steps
            )
            text = _trim_to(text, budget, self.counter)
        return text


def _better(err: float, old: float, tol: float) -> bool:
    """Prefer results within tolerance, then the smallest |error|, undershoot over overshoot."""
    ok, old_ok = abs(err) <= tol, abs(old) <= tol
    if ok != old_ok:
        return ok
    return abs(err) < abs(old)


def _trim_to(text: str, budget: int, counter: WordCoster) -> str:
    """Drop trailing words until ``text`` fits ``budget`` tokens."""
    ws = find_words(text)
    costs = counter.word_costs(text, ws)
    total = int(costs.sum())
    n = len(ws)
    while n > 0 and total > budget:
        n -= 1
        total -= int(costs[n])
    return text[: ws[n - 1, 1]] if n else ""
