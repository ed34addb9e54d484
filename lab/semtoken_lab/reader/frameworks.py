"""The local reader as the LLM of a LangChain chain or a LlamaIndex query engine.

Why reuse the frameworks' own Hugging Face wrappers: ``langchain_huggingface`` and
``llama-index-llms-huggingface`` both accept an already loaded model and tokenizer object, so the
reader's weights (converted once, loaded once) are shared and nothing touches the hub.  Both
wrappers apply the tokenizer's chat template, which small instruction models need to answer.
The imports are lazy: ``import semtoken_rag`` never pulls in either framework.

The functions take any object with a reader's loaded model and tokenizer
(:class:`LoadedReader`), which :class:`~semtoken_lab.reader.LocalReader` is; so this module never
imports the reader, and the reader's ``as_langchain_llm`` / ``as_llama_index_llm`` can call it.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class LoadedReader(Protocol):
    """What the framework wrappers read of a reader: its model, tokenizer and limits."""

    model: Any
    tokenizer: Any
    model_name: str
    device: str
    max_context_tokens: int

    @property
    def eos_token_ids(self) -> frozenset[int]:
        """Token ids that end the assistant's turn."""
        ...


def text_generation_pipeline(
    reader: LoadedReader, *, max_new_tokens: int = 64, **pipeline_kwargs: Any
) -> Any:
    """A greedy transformers ``text-generation`` pipeline over the reader's model, on its device.

    Why ``device=`` explicitly: without it ``pipeline()`` places the model on its default
    device (``cuda:0`` when CUDA exists), moving the *shared* reader model off the CPU or off
    ``cuda:1`` under the reader's feet.  The model's own device is passed, so nothing moves.
    """
    from transformers import pipeline

    kwargs: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "do_sample": False,
        "return_full_text": False,
    }
    kwargs.update(pipeline_kwargs)
    kwargs.setdefault("device", reader.model.device)
    return pipeline("text-generation", model=reader.model, tokenizer=reader.tokenizer, **kwargs)


def as_langchain_llm(
    reader: LoadedReader, *, max_new_tokens: int = 64, chat: bool = True, **pipeline_kwargs: Any
) -> Any:
    """A LangChain model backed by ``reader.model`` / ``reader.tokenizer`` (greedy).

    Args:
        reader: A loaded :class:`~semtoken_lab.reader.LocalReader`.
        max_new_tokens: Generation limit per call.
        chat: Return a ``ChatHuggingFace`` chat model (applies the chat template; default) or
            the bare ``HuggingFacePipeline`` text LLM.
        **pipeline_kwargs: Extra ``transformers.pipeline`` generation arguments.

    Returns:
        ``ChatHuggingFace`` or ``HuggingFacePipeline``; use it as the LLM of any runnable chain.
    """
    from langchain_huggingface import HuggingFacePipeline

    pipe = text_generation_pipeline(reader, max_new_tokens=max_new_tokens, **pipeline_kwargs)
    model_id = str(getattr(reader.model, "name_or_path", reader.model_name))
    llm = HuggingFacePipeline(pipeline=pipe, model_id=model_id)
    if not chat:
        return llm
    return local_chat_class()(llm=llm, tokenizer=reader.tokenizer, model_id=model_id)


@functools.cache
def local_chat_class() -> type:
    """``ChatHuggingFace`` whose async generation runs the local pipeline in a worker thread.

    Why: upstream ``ChatHuggingFace._agenerate`` refuses a local pipeline ("async generation is
    not supported with HuggingFacePipeline"), so ``await chain.ainvoke(...)`` failed; the sync
    path in a thread is what LangChain's own ``BaseLLM`` does for models without async support.
    """
    from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
    from langchain_core.messages import BaseMessage
    from langchain_core.outputs import ChatResult
    from langchain_core.runnables.config import run_in_executor
    from langchain_huggingface import ChatHuggingFace

    class LocalChatHuggingFace(ChatHuggingFace):  # type: ignore[misc]
        async def _agenerate(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: AsyncCallbackManagerForLLMRun | None = None,
            stream: bool | None = None,
            **kwargs: Any,
        ) -> ChatResult:
            sync = run_manager.get_sync() if run_manager is not None else None
            return await run_in_executor(None, self._generate, messages, stop, sync, **kwargs)

    return LocalChatHuggingFace


def as_llama_index_llm(
    reader: LoadedReader, *, max_new_tokens: int = 64, context_window: int | None = None
) -> Any:
    """A LlamaIndex ``HuggingFaceLLM`` backed by ``reader.model`` / ``reader.tokenizer`` (greedy).

    It is a chat model whose prompts go through the tokenizer's chat template (plain
    completions are wrapped as one user turn), stopping at the model's end-of-turn tokens.
    """
    from llama_index.llms.huggingface import HuggingFaceLLM

    tokenizer = reader.tokenizer
    name = str(getattr(reader.model, "name_or_path", reader.model_name))

    def completion_to_prompt(text: str) -> str:
        return str(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
            )
        )

    return HuggingFaceLLM(
        model=reader.model,
        tokenizer=tokenizer,
        model_name=name,
        tokenizer_name=name,
        context_window=context_window or reader.max_context_tokens,
        max_new_tokens=max_new_tokens,
        device_map=reader.device,
        stopping_ids=sorted(reader.eos_token_ids),
        generate_kwargs={"do_sample": False},
        is_chat_model=True,
        completion_to_prompt=completion_to_prompt,
    )
