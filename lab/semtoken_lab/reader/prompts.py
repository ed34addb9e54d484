"""Prompt templates per task family, always rendered through the model's chat template.

Why a chat template every time: instruction-tuned readers are trained on their chat format; on
extractive NarrativeQA questions SmolLM2-135M answered 10/12 with it and 4/12 with the same words
as raw text.  The template *wording* is per task family and lives in a registry so the evaluation
harness (and users) can swap it without touching the reader.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from semtoken_rag.errors import ConfigError, InvalidInputError

logger = logging.getLogger(__name__)

OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: Tokens of slack left when a context is cut to fit (re-tokenisation at the cut may differ).
FIT_MARGIN = 8


@dataclass(frozen=True)
class PromptTemplate:
    """Wording of one task family.

    Attributes:
        user: User turn with ``{context}``, ``{question}`` and ``{options}`` placeholders.
        closed_book: User turn used when the context is empty (no "Context:" header to confuse
            the model).
        system: System turn; ``None`` keeps the model's default system prompt.
    """

    user: str
    closed_book: str
    system: str | None = None

    def messages(
        self, question: str, context: str, options: Sequence[str] | None = None
    ) -> list[dict[str, str]]:
        """Chat messages for one example.

        Raises:
            InvalidInputError: ``options`` is one string (its characters would become the
                options) or has more entries than there are option letters.
        """
        if isinstance(options, (str, bytes)) or len(options or ()) > len(OPTION_LETTERS):
            got = repr(options)[:60] if isinstance(options, (str, bytes)) else len(options or ())
            raise InvalidInputError(
                f"options must be a sequence of at most {len(OPTION_LETTERS)} option texts "
                f"(one per letter A-Z), got {got}"
            )
        opts = "\n".join(f"{OPTION_LETTERS[i]}. {o}" for i, o in enumerate(options or ()))
        body = self.user if context.strip() else self.closed_book
        content = body.format(context=context.strip(), question=question.strip(), options=opts)
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return [*msgs, {"role": "user", "content": content.strip()}]


#: task family -> template.  Copy and extend (``{**PROMPTS, "mytask": ...}``) to configure.
PROMPTS: dict[str, PromptTemplate] = {
    # Context first, instruction right before the question: on the first 12 NarrativeQA
    # questions SmolLM2-135M (fp32) got 5/12 with this layout, 4/12 with the instruction first,
    # 2/12 with a bare "Answer:" suffix or a longer "story summary" instruction.
    "qa": PromptTemplate(
        user=(
            "Context: {context}\n\n"
            "Answer the question based on the context in a few words.\nQuestion: {question}"
        ),
        closed_book="Answer the question in a few words.\nQuestion: {question}",
    ),
    "summarization": PromptTemplate(
        user="Text: {context}\n\nSummarize the text above. {question}",
        closed_book="{question}",
    ),
    "multiple_choice": PromptTemplate(
        user=(
            "Context: {context}\n\nAnswer the question based on the context with the letter "
            "of the correct option.\nQuestion: {question}\n{options}"
        ),
        closed_book=(
            "Answer the question with the letter of the correct option.\n"
            "Question: {question}\n{options}"
        ),
    ),
}


def get_template(
    task: str, templates: Mapping[str, PromptTemplate] | None = None
) -> PromptTemplate:
    """The template of ``task``.

    Raises:
        ConfigError: unknown task family.
    """
    table = PROMPTS if templates is None else templates
    tpl = table.get(task)
    if tpl is None:
        raise ConfigError(f"unknown reader task {task!r}; choose one of {sorted(table)}")
    return tpl


def render_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """Messages -> prompt text ending where the assistant's reply starts.

    Uses the tokenizer's chat template; a tokenizer without one (a base model) falls back to the
    plain concatenation of the turns, with a warning, because a chat template is what makes
    instruction models answer.
    """
    if getattr(tokenizer, "chat_template", None):
        return str(
            tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        )
    logger.warning("tokenizer has no chat template; using plain text prompts (answers may suffer)")
    return "\n\n".join(m["content"] for m in messages) + "\n\nAnswer:"


def build_prompt(
    tokenizer: Any,
    task: str,
    question: str,
    context: str,
    options: Sequence[str] | None = None,
    templates: Mapping[str, PromptTemplate] | None = None,
) -> str:
    """Prompt text for one example: the task's template rendered through the chat template."""
    return render_prompt(
        tokenizer, get_template(task, templates).messages(question, context, options)
    )


def cut_middle(tokenizer: Any, ids: Sequence[int], keep: int) -> str:
    """The context of token ids ``ids`` with all but ``keep`` tokens cut from its middle.

    Why the middle (LongBench's rule): a long document's opening and ending carry its setting
    and its conclusion; the cut is marked `` ... `` so the reader sees that text is missing.

    Returns:
        ``"head ... tail"``, or ``""`` when ``keep <= 0``.
    """
    if keep <= 0:
        return ""
    head = tokenizer.decode(ids[: keep // 2])
    tail = tokenizer.decode(ids[len(ids) - (keep - keep // 2) :])
    return f"{head} ... {tail}"
