"""Local LLM reader: answers from (compressed) context and measures what reading cost.

Not imported by ``import semtoken_rag`` (it pulls in torch and transformers).
"""

from __future__ import annotations

from semtoken_lab.reader.loading import load_reader_tokenizer
from semtoken_lab.reader.prompts import PROMPTS, PromptTemplate
from semtoken_lab.reader.reader import LocalReader
from semtoken_lab.reader.results import AnswerLoglik, ReaderAnswer

__all__ = [
    "PROMPTS",
    "AnswerLoglik",
    "LocalReader",
    "PromptTemplate",
    "ReaderAnswer",
    "load_reader_tokenizer",
]
