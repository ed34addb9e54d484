"""What the reader measures on compressed contexts: the gold answer's log-likelihood (every run)
and a generated answer with its task metrics and timings (runs with ``generate``).

Why both: the log-likelihood is cheap and smooth, so it separates methods on a few examples;
generation gives the task metrics of the literature (F1, ROUGE-L, accuracy) and the costs a user
sees (prefill, time to first token, KV bytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from semtoken_lab.eval.data import Example
from semtoken_lab.eval.metrics import (
    exact_match_score,
    mc_accuracy_score,
    qa_f1_score,
    rouge_l_score,
    score,
)

#: Tokens generated per task family.
MAX_NEW_TOKENS = {"qa": 32, "multiple_choice": 8, "summarization": 128}


def answer_logliks(
    reader: Any, ex: Example, texts: Sequence[str], max_answer_words: int
) -> list[Any]:
    """The gold answer's log-likelihood under the reader given each of ``texts``.

    Args:
        reader: Has ``answer_loglik_batch`` (``LocalReader`` API).
        ex: The example (question, answers, task family).
        texts: Compressed contexts, one per (method, ratio).
        max_answer_words: The gold answer is cut to this many words.

    Returns:
        One reader log-likelihood (``per_token``, ``total``) per text; all ``None`` when the
        example has no gold answer.
    """
    gold = " ".join((ex.answers[0] if ex.answers else "").split()[:max_answer_words])
    if not gold.strip():
        return [None] * len(texts)
    # Methods often return the same context (ablations that change nothing here, the full text
    # at a loose budget): score each distinct context once, shortest first in small batches so
    # little compute goes to padding.
    unique = sorted(set(texts), key=len)
    scored = reader.answer_loglik_batch(
        [ex.question] * len(unique),
        unique,
        [gold] * len(unique),
        task=ex.task_family,
        batch_size=2,
    )
    by_text = dict(zip(unique, scored))
    return [by_text[t] for t in texts]


def generate_answer(reader: Any, ex: Example, text: str) -> dict[str, Any]:
    """Answer ``ex`` from ``text`` and score the prediction.

    Returns:
        The generation fields of :class:`~semtoken_lab.eval.records.ExampleRecord`: the
        prediction, its task metrics (best over the gold answers) and the reader's timings.
    """
    ans = reader.answer(
        ex.question,
        text,
        max_new_tokens=MAX_NEW_TOKENS.get(ex.task_family, 32),
        task=ex.task_family,
        options=list(ex.options) or None,
    )
    pred = ans.text
    kw = {"options": ex.options, "all_classes": ex.all_classes}
    best = lambda fn: max((fn(pred, a, **kw) for a in ex.answers), default=0.0)  # noqa: E731
    return {
        "prediction": pred,
        "score": score(ex.metric, pred, ex.answers, dataset=ex.dataset, **kw),
        "f1": best(qa_f1_score),
        "em": best(exact_match_score),
        "rouge_l": best(rouge_l_score),
        "accuracy": best(mc_accuracy_score) if ex.options else None,
        "prompt_tokens": ans.prompt_tokens,
        "prefill_ms": ans.prefill_ms,
        "ttft_ms": ans.ttft_ms,
        "decode_ms_per_token": ans.decode_ms_per_token,
        "new_tokens": ans.new_tokens,
        "kv_bytes": ans.kv_bytes,
    }
