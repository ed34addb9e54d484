"""LocalReader: a local causal LM that answers from a context and reports what reading cost.

The forward passes (the measured greedy loop, the log-likelihood pass) live in
:mod:`semtoken_lab.reader.decoding`; this module fits prompts to the model, batches examples and
turns the passes' outputs into :class:`~semtoken_lab.reader.results.ReaderAnswer` objects.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from semtoken_rag.errors import InvalidInputError

from semtoken_lab.reader import frameworks
from semtoken_lab.reader.arguments import check_batch, check_count, check_examples
from semtoken_lab.reader.attention import AttentionRuntime, fastest_sdpa_backend, resolve_attention
from semtoken_lab.reader.decoding import Decoder, Generated, answer_logprobs
from semtoken_lab.reader.loading import load_reader_model, load_reader_tokenizer
from semtoken_lab.reader.placement import is_cuda, resolve_device, resolve_dtype
from semtoken_lab.reader.prompts import FIT_MARGIN, PromptTemplate, build_prompt, cut_middle
from semtoken_lab.reader.results import AnswerLoglik, ReaderAnswer

if TYPE_CHECKING:
    from semtoken_lab.reader.kv_budget import KVBudget
    from semtoken_lab.reader.kv_generation import BudgetedGeneration
    from semtoken_lab.reader.kv_layout import SpanSource

logger = logging.getLogger(__name__)


class LocalReader:
    """A local transformers reader with honest cost measurements.

    Args:
        model: ``smollm2`` (default; the packaged SmolLM2-135M-Instruct GGUF, converted once to
            a bf16 folder in the user cache), a hub id, a local folder or a ``.gguf`` path.
        attn: ``auto`` (flash_attention_2 when CUDA + flash-attn; else on CUDA the fastest
            SDPA backend, measured; on a CPU sdpa), ``sdpa``, ``eager`` or
            ``flash_attention_2`` (on CUDA without flash-attn: SDPA's flash kernel, forced; on a
            CPU falls back to sdpa with a warning unless strict).  See
            :mod:`semtoken_lab.reader.attention`.
        dtype: ``auto`` (bf16 on CUDA and bf16-capable CPUs, else fp32) or a dtype name.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        strict: Raise :class:`~semtoken_rag.errors.ConfigError` instead of falling back.
        max_context_tokens: Longest prompt + answer allowed (default: the model's position
            limit); longer contexts are cut in the middle with a warning (LongBench style).
        prompts: Task-family templates (default :data:`~semtoken_lab.reader.prompts.PROMPTS`).
        kv_budget: Bound the KV cache while decoding (opt-in): a fraction of the prompt's
            tokens, a token count, or a :class:`~semtoken_lab.reader.kv_budget.KVBudget`.
            Answers then carry a ``kv_trace``; see ``docs/kv_budget.md``.
        kv_policy: What to evict: ``semtoken`` (query-conditioned spans), ``streaming``,
            ``snapkv`` or ``none``.
        kv_spans: Where the context's spans come from (default: the units of a
            :class:`semtoken_rag.Compressor`, built on first use).

    Raises:
        ModelNotFoundError: the model cannot be found (the message names the fix).
        ConfigError: bad attn/dtype, an unavailable kernel with ``strict``, a bad KV budget,
            or a model whose cache the KV policy cannot bound (named).
    """

    def __init__(
        self,
        model: str = "smollm2",
        *,
        attn: str = "auto",
        dtype: Any = "auto",
        device: str = "auto",
        strict: bool = False,
        max_context_tokens: int | None = None,
        prompts: Mapping[str, PromptTemplate] | None = None,
        kv_budget: float | int | KVBudget | None = None,
        kv_policy: str = "semtoken",
        kv_spans: SpanSource | None = None,
    ) -> None:
        self.model_name = model
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        choice = resolve_attention(attn, self.device, strict=strict)
        # The model first: a GGUF reader is converted once, and its tokenizer then comes from
        # the converted folder instead of being built from the GGUF metadata a second time.
        self.model = load_reader_model(
            model, dtype=self.dtype, attn_implementation=choice.implementation, device=self.device
        )
        self.tokenizer = load_reader_tokenizer(model)
        #: Prefill ms per SDPA backend when ``attn="auto"`` measured them (CUDA), else empty.
        self.attention_timings: dict[str, float | None] = {}
        if choice.tune:
            choice, self.attention_timings = fastest_sdpa_backend(self.model, choice)
        self._attention = AttentionRuntime(choice, strict=strict, cuda=is_cuda(self.device))
        #: The kernel answers run on when it can (each answer reports the one that ran).
        self.attn_implementation = choice.label
        self.prompts = prompts
        limit = getattr(self.model.config, "max_position_embeddings", None)
        self.max_context_tokens = int(max_context_tokens or limit or 1 << 30)
        self._eos = self._eos_ids()
        pad = self.tokenizer.pad_token_id
        pad_id = int(pad if pad is not None else next(iter(self._eos), 0))
        self._decoder = Decoder.of(self.model, self.device, self._eos, pad_id)
        self._clock = self._decoder.clock
        #: KV-budgeted decoding, or ``None`` (the unbounded cache).
        self.kv: BudgetedGeneration | None = None
        if kv_budget is not None:
            from semtoken_lab.reader.kv_budget import KVBudget
            from semtoken_lab.reader.kv_generation import BudgetedGeneration

            cfg = kv_budget if isinstance(kv_budget, KVBudget) else KVBudget(kv_budget, kv_policy)
            self.kv = BudgetedGeneration(self, cfg, spans=kv_spans)
        logger.info(
            "reader %s on %s, dtype %s, attention %s (%s)",
            model,
            self.device,
            self.dtype,
            choice.label,
            choice.reason,
        )

    def __repr__(self) -> str:
        return (
            f"LocalReader({self.model_name!r}, device={self.device!r}, dtype={self.dtype}, "
            f"attn={self.attn_implementation!r})"
        )

    # ---------------------------------------------------------------- prompts
    def _eos_ids(self) -> frozenset[int]:
        ids: set[int] = set()
        gen = getattr(self.model, "generation_config", None)
        for value in (getattr(gen, "eos_token_id", None), self.tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(int(v) for v in value)
        return frozenset(ids)

    @property
    def eos_token_ids(self) -> frozenset[int]:
        """Token ids that end the assistant's turn (generation stops on any of them)."""
        return self._eos

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in the reader's tokenizer (no special tokens)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0

    def _encode(self, prompt: str) -> list[int]:
        return list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def prompt_ids(
        self,
        question: str,
        context: str,
        *,
        task: str = "qa",
        options: Sequence[str] | None = None,
        reserve: int = 0,
    ) -> list[int]:
        """Token ids of the chat-templated prompt, the context cut in the middle to fit.

        Args:
            reserve: Tokens kept free after the prompt (the answer).

        Raises:
            InvalidInputError: the prompt does not fit in ``max_context_tokens - reserve`` even
                with no context (it was cut from its head, or emptied, before).
        """
        return self._fit(question, context, task, options, reserve, None)[1]

    def context_room(self, question: str, *, task: str = "qa", reserve: int = 0) -> int:
        """Tokens left for the context in a prompt for ``question`` that must also hold
        ``reserve`` answer tokens (what a compression budget must stay under to avoid the
        middle cut of :meth:`prompt_ids`)."""
        empty = build_prompt(self.tokenizer, task, question, "", None, self.prompts)
        return max(0, self.max_context_tokens - reserve - len(self._encode(empty)) - FIT_MARGIN)

    def fit_context(
        self,
        question: str,
        context: str,
        *,
        task: str = "qa",
        options: Sequence[str] | None = None,
        reserve: int = 0,
        limit: int | None = None,
    ) -> str:
        """The context as :meth:`prompt_ids` puts it in the prompt (cut in the middle when the
        prompt plus ``reserve`` tokens exceed ``limit``, default ``max_context_tokens``)."""
        return self._fit(question, context, task, options, reserve, limit)[0]

    def _fit(
        self,
        question: str,
        context: str,
        task: str,
        options: Sequence[str] | None,
        reserve: int,
        limit: int | None,
    ) -> tuple[str, list[int]]:
        if not isinstance(question, str) or not isinstance(context, str):
            raise InvalidInputError("question and context must be strings")
        ids = self._encode(
            build_prompt(self.tokenizer, task, question, context, options, self.prompts)
        )
        limit = (limit or self.max_context_tokens) - reserve
        if len(ids) <= limit:
            return context, ids
        ctx = self._encode(context)
        keep = len(ctx) - (len(ids) - limit) - FIT_MARGIN
        logger.warning(
            "prompt of %d tokens exceeds %d; cutting %d context tokens from the middle",
            len(ids),
            limit,
            len(ctx) - max(keep, 0),
        )
        context = cut_middle(self.tokenizer, ctx, keep)
        ids = self._encode(
            build_prompt(self.tokenizer, task, question, context, options, self.prompts)
        )
        if keep <= 0 and len(ids) > limit:  # the prompt does not fit even without its context
            raise InvalidInputError(
                f"the prompt needs {len(ids)} tokens without its context, but a window of "
                f"{limit + reserve} tokens with {reserve} kept for the answer (max_new_tokens) "
                f"leaves {limit}; lower max_new_tokens or shorten the question"
            )
        return context, (ids[-limit:] if len(ids) > limit else ids)

    # ---------------------------------------------------------------- generation
    def _greedy(
        self, seqs: Sequence[Sequence[int]], max_new_tokens: int, t_call: float
    ) -> Generated:
        """Prefill + cached greedy decode of left-padded ``seqs``."""
        return self._decoder.greedy(seqs, max_new_tokens, t_call)

    def _decode(self, tokens: Sequence[int]) -> str:
        body = [t for t in tokens if t not in self._eos]
        return str(self.tokenizer.decode(body, skip_special_tokens=True)).strip()

    def answer(
        self,
        question: str,
        context: str,
        *,
        max_new_tokens: int = 32,
        task: str = "qa",
        options: Sequence[str] | None = None,
    ) -> ReaderAnswer:
        """Greedy answer to ``question`` from ``context`` (``""`` = closed-book), with its cost."""
        return self.answer_batch(
            [question],
            [context],
            max_new_tokens=max_new_tokens,
            task=task,
            options=None if options is None else [options],
            batch_size=1,
        )[0]

    def answer_batch(
        self,
        questions: Sequence[str],
        contexts: Sequence[str],
        *,
        max_new_tokens: int = 32,
        task: str = "qa",
        options: Sequence[Sequence[str] | None] | None = None,
        batch_size: int = 8,
    ) -> list[ReaderAnswer]:
        """Greedy answers for many examples, left-padded batches for throughput.

        Examples are grouped by prompt length (less padding) and returned in input order.  Timing
        fields are those of the example's batch; ``kv_bytes`` is the example's unpadded share.
        With a ``kv_budget`` the examples are decoded one at a time under the budget.
        """
        opts = check_batch(questions, contexts, options, max_new_tokens, batch_size)
        if self.kv is not None:
            return [
                self.kv.generate(q, c, max_new_tokens=max_new_tokens, task=task, options=o)
                for q, c, o in zip(questions, contexts, opts, strict=True)
            ]
        results: list[ReaderAnswer | None] = [None] * len(questions)
        t_call = time.perf_counter()
        seqs = [
            self.prompt_ids(q, c, task=task, options=o, reserve=max_new_tokens)
            for q, c, o in zip(questions, contexts, opts, strict=True)
        ]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            answers = self._answer_padded([seqs[i] for i in idx], max_new_tokens, t_call)
            for i, answer in zip(idx, answers, strict=True):
                results[i] = answer
            t_call = time.perf_counter()  # the next batch's TTFT starts when it starts
        return [r for r in results if r is not None]

    def _answer_padded(
        self, batch: list[list[int]], max_new_tokens: int, t_call: float
    ) -> list[ReaderAnswer]:
        """Greedy answers of one left-padded batch of prompts, with the batch's costs."""
        with self._clock.stream(), self._clock.peak_window() as peak:
            gen, kernel = self._attention.run(
                functools.partial(self._greedy, batch, max_new_tokens, t_call),
                padded=len({len(s) for s in batch}) > 1,
            )
        per_slot = gen.kv_bytes / gen.slots if gen.slots else 0.0
        return [
            ReaderAnswer(
                text=self._decode(gen.tokens[row]),
                prompt_tokens=len(seq),
                prefill_ms=gen.prefill_s * 1e3,
                ttft_ms=gen.first_s * 1e3,
                decode_ms_per_token=gen.decode_s_per_step * 1e3,
                new_tokens=len(gen.tokens[row]),
                kv_bytes=round(per_slot * len(seq)),
                peak_memory_bytes=peak.bytes,
                attn_implementation=kernel,
                device=self.device,
            )
            for row, seq in enumerate(batch)
        ]

    # ---------------------------------------------------------------- log-likelihood
    def answer_loglik(
        self, question: str, context: str, answer: str, *, task: str = "qa"
    ) -> AnswerLoglik:
        """Teacher-forced log-likelihood of ``answer`` as the assistant's reply."""
        return self.answer_loglik_batch([question], [context], [answer], task=task)[0]

    def answer_loglik_batch(
        self,
        questions: Sequence[str],
        contexts: Sequence[str],
        answers: Sequence[str],
        *,
        task: str = "qa",
        batch_size: int = 8,
    ) -> list[AnswerLoglik]:
        """Log-likelihoods of many gold answers; one left-padded forward pass per batch.

        Left padding puts every answer at the end of its row, so only the last
        ``max_answer_tokens + 1`` positions need logits (``logits_to_keep``): no
        ``(batch, length, vocab)`` tensor is ever built.
        """
        for name, values in (
            ("questions", questions),
            ("contexts", contexts),
            ("answers", answers),
        ):
            check_examples(name, values)
        if not len(questions) == len(contexts) == len(answers):
            raise InvalidInputError("questions, contexts and answers must have the same length")
        check_count("batch_size", batch_size)
        items: list[tuple[list[int], list[int]]] = []
        for q, c, a in zip(questions, contexts, answers, strict=True):
            ans = self._encode(a.strip()) if isinstance(a, str) else []
            if not ans:
                raise InvalidInputError("every answer must be a non-empty string")
            items.append((self.prompt_ids(q, c, task=task, reserve=len(ans)), ans))
        out: list[AnswerLoglik] = []
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            rows = [p + a for p, a in chunk]
            keep = max(len(a) for _, a in chunk) + 1
            logits, _ = self._attention.run(
                functools.partial(self._decoder.answer_logits, rows, keep),
                padded=len({len(r) for r in rows}) > 1,
            )
            totals = answer_logprobs(logits, [a for _, a in chunk], keep)
            for (_, ans), total in zip(chunk, totals, strict=True):
                out.append(AnswerLoglik(total=total, per_token=total / len(ans), n_tokens=len(ans)))
        return out

    # ---------------------------------------------------------------- misc
    def warmup(self) -> None:
        """One tiny generation, so the first measured call does not pay one-time setup costs."""
        if self.kv is not None:  # the warm-up prompt is too short for most budgets
            self.kv.warmup()
            return
        self.answer("What is this?", "A warm-up.", max_new_tokens=2)

    def as_langchain_llm(self, **kwargs: Any) -> Any:
        """This reader as a LangChain chat model (see :mod:`semtoken_lab.reader.frameworks`)."""
        return frameworks.as_langchain_llm(self, **kwargs)

    def as_llama_index_llm(self, **kwargs: Any) -> Any:
        """This reader as a LlamaIndex LLM (see :mod:`semtoken_lab.reader.frameworks`)."""
        return frameworks.as_llama_index_llm(self, **kwargs)
