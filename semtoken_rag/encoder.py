"""Contextual word fingerprints from a transformers encoder run over sliding windows.

Each chunk is tokenised once (with offsets) and cut into overlapping windows, all batched through
the encoder; each token takes its state from the window where it is most central (at least
``overlap / 2`` tokens of context each side).  States are mean-pooled to words, L2-normalised.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semtoken_rag import models
from semtoken_rag.core.pooling import l2_normalize, pool_tokens_to_words
from semtoken_rag.core.segment import find_words
from semtoken_rag.encoder_models import load_by_name, load_loaded, weights_digest
from semtoken_rag.errors import ConfigError
from semtoken_rag.fingerprints import ChunkFingerprints
from semtoken_rag.fork_threads import ForkSafeLock, one_thread_after_fork

if TYPE_CHECKING:
    from semtoken_rag.config import SemTokenConfig

logger = logging.getLogger(__name__)
one_thread_after_fork("torch", "set_num_threads")  # a forward in a forked child would hang


@dataclass(frozen=True)
class _Window:
    text_index: int
    token_start: int  # first content token of the window in the text
    take_from: int  # tokens [take_from, take_to) of the text use this window's states
    take_to: int


def window_plan(n_tokens: int, content: int, overlap: int) -> list[tuple[int, int, int]]:
    """Sliding windows over ``n_tokens`` tokens and the tokens each window is responsible for.

    Args:
        n_tokens: Tokens in the text.
        content: Content tokens per window (special tokens excluded).
        overlap: Tokens shared by consecutive windows.

    Returns:
        ``[(window_start, take_from, take_to), ...]``: each token in the window most central to it.
    """
    if n_tokens == 0:
        return []
    stride = content - overlap
    n_windows = 1 if n_tokens <= content else 1 + -(-(n_tokens - content) // stride)
    plan = []
    half = overlap // 2
    for w in range(n_windows):
        start = w * stride
        take_from = 0 if w == 0 else start + half
        take_to = n_tokens if w == n_windows - 1 else start + stride + half
        plan.append((start, take_from, min(take_to, n_tokens)))
    return plan


class TransformerEncoder:
    """Sliding-window contextual fingerprints from any transformers encoder.

    Args:
        model: Encoder id or path (the default's aliases: the packaged files), or a model already
            loaded (``SentenceTransformer``, LangChain's or LlamaIndex's HF embeddings, transformers
            encoder), used in place (``device``/``dtype`` then do not apply).
        window_tokens: Window length in tokens, special tokens included.
        overlap: Tokens shared by consecutive windows.
        batch_size: Windows per forward pass.
        device: ``auto``, ``cpu`` or ``cuda``.
        dtype: ``auto`` (fp16 on CUDA, fp32 on CPU), ``float32``, ``float16``, ``bfloat16``.
        progress: Show a progress bar over batches when there are many.

    ``cache_id`` (in store keys) names the model, a weights digest and the window settings, not the
    path or compute dtype: replaced weights miss, and GPU fp16/bf16 fingerprints serve CPUs too.
    """

    def __init__(
        self,
        model: Any = models.ENCODER_CANONICAL_ID,
        *,
        window_tokens: int = 64,
        overlap: int = 16,
        batch_size: int = 32,
        device: str = "auto",
        dtype: str = "auto",
        progress: bool = False,
    ) -> None:
        import torch

        loaded = (
            load_by_name(model, device, dtype) if isinstance(model, str) else load_loaded(model)
        )
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.model_id = loaded.model_id
        self.device = loaded.device
        self.torch_dtype = loaded.torch_dtype
        if not getattr(self.tokenizer, "is_fast", False):
            raise ConfigError(f"encoder {model!r} has no fast tokenizer (offsets are required)")
        max_len = int(getattr(self.model.config, "max_position_embeddings", 512))
        self.window_tokens = min(window_tokens, max_len)
        self._content = self.window_tokens - 2  # tokens per window besides [CLS] and [SEP]
        self.overlap = overlap
        self.batch_size = batch_size
        self.progress = progress
        self.dim = int(self.model.config.hidden_size)
        # The digest is the identity; the name in front is only for people reading keys.
        self.cache_id = (
            f"{Path(self.model_id).name if Path(self.model_id).is_absolute() else self.model_id}"
            f"|weights:{weights_digest(self.model)[:24]}|win{self.window_tokens}|ov{self.overlap}"
        )
        #: Number of chunk texts encoded so far (the store's saving is measured with this).
        self.calls = 0
        self._lock = ForkSafeLock()
        self._torch = torch
        logger.info(
            "encoder %s on %s (%s), window %d overlap %d",
            self.model_id,
            self.device,
            self.torch_dtype,
            self.window_tokens,
            self.overlap,
        )

    @classmethod
    def from_config(cls, config: SemTokenConfig) -> TransformerEncoder:
        """Build from a :class:`~semtoken_rag.config.SemTokenConfig` (its encoder part)."""
        enc = config.encoder
        return cls(
            enc.model,
            window_tokens=enc.window_tokens,
            overlap=enc.effective_overlap,
            batch_size=enc.batch_size,
            device=enc.device,
            dtype=enc.dtype,
            progress=enc.progress,
        )

    def encode_texts(self, texts: Sequence[str]) -> list[ChunkFingerprints]:
        """Word fingerprints of each text, in order (one batched pass over all windows)."""
        out = self._word_fingerprints(texts)
        self.calls += len(texts)
        return out

    def _word_fingerprints(self, texts: Sequence[str]) -> list[ChunkFingerprints]:
        enc = self.tokenizer(
            list(texts),
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            verbose=False,
        )
        windows = self._windows(enc["input_ids"])
        token_states = [
            np.zeros((len(ids), self.dim), dtype=np.float32) for ids in enc["input_ids"]
        ]
        if windows:
            self._run_windows(enc["input_ids"], windows, token_states)
        out = []
        for text, offsets, states in zip(texts, enc["offset_mapping"], token_states, strict=True):
            offs = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
            wspans = find_words(text)
            keep = offs[:, 1] > offs[:, 0]
            widx = np.searchsorted(wspans[:, 0], offs[keep, 1] - 1, side="right") - 1
            vecs = pool_tokens_to_words(states[keep], widx.clip(0, None), len(wspans))
            out.append(ChunkFingerprints(l2_normalize(vecs), wspans))
        return out

    def _windows(self, input_ids: list[list[int]]) -> list[_Window]:
        windows: list[_Window] = []
        for ti, ids in enumerate(input_ids):
            for start, a, b in window_plan(len(ids), self._content, self.overlap):
                windows.append(_Window(ti, start, a, b))
        return windows

    def _batches(
        self, input_ids: list[list[int]], windows: list[_Window]
    ) -> Iterator[tuple[list[_Window], Any, Any]]:
        """``(windows, input_ids (B, T) long, attention_mask (B, T) long)`` per forward pass."""
        torch = self._torch
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        head = [cls_id] if cls_id is not None else []
        tail = [sep_id] if sep_id is not None else []
        batches = range(0, len(windows), self.batch_size)
        iterator: Any = batches
        if self.progress and len(batches) > 4:
            from tqdm.auto import tqdm

            iterator = tqdm(batches, desc="fingerprints", unit="batch")
        for lo in iterator:
            batch = windows[lo : lo + self.batch_size]
            rows = []
            for w in batch:
                span = input_ids[w.text_index][w.token_start : w.token_start + self._content]
                rows.append(head + list(span) + tail)
            ids, mask = self._padded(rows)
            yield batch, torch.tensor(ids, dtype=torch.long), torch.tensor(mask, dtype=torch.long)

    def window_batches(self, texts: Sequence[str]) -> list[tuple[Any, Any]]:
        """The exact ``(input_ids, attention_mask)`` batches :meth:`encode_texts` would run
        (public so benchmarks can time the raw forward over the same windows)."""
        enc = self.tokenizer(list(texts), add_special_tokens=False, verbose=False)
        windows = self._windows(enc["input_ids"])
        return [(i, m) for _, i, m in self._batches(enc["input_ids"], windows)]

    def _run_windows(
        self, input_ids: list[list[int]], windows: list[_Window], token_states: list[np.ndarray]
    ) -> None:
        torch = self._torch
        n_special_front = 1 if self.tokenizer.cls_token_id is not None else 0
        for batch, ids_t, mask_t in self._batches(input_ids, windows):
            with self._lock, torch.inference_mode():
                hidden = self.model(
                    input_ids=ids_t.to(self.device), attention_mask=mask_t.to(self.device)
                ).last_hidden_state
                hidden_np = hidden.float().cpu().numpy()
            for i, w in enumerate(batch):
                a = w.take_from - w.token_start + n_special_front
                b = w.take_to - w.token_start + n_special_front
                token_states[w.text_index][w.take_from : w.take_to] = hidden_np[i, a:b]

    def encode_query_words(self, queries: Sequence[str]) -> list[ChunkFingerprints]:
        """Word fingerprints of queries, computed exactly like a chunk's (late interaction
        compares like with like); not counted in ``calls``, which counts chunk encodings."""
        return self._word_fingerprints(queries)

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Sentence embeddings of queries (mean of token states, as sentence-transformers does).

        Returns:
            ``(len(queries), dim) float32``, L2-normalised.
        """
        if len(queries) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        torch = self._torch
        ids, mask_rows = self._query_batch(queries)
        attention = torch.tensor(mask_rows, device=self.device)
        with self._lock, torch.inference_mode():
            hidden = self.model(
                input_ids=torch.tensor(ids, device=self.device), attention_mask=attention
            ).last_hidden_state
            mask = attention.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        return l2_normalize(pooled.float().cpu().numpy())

    def _query_batch(self, queries: Sequence[str]) -> tuple[list[list[int]], list[list[int]]]:
        """Query ids (special tokens added, cut to the window keeping a final separator), padded;
        not by the tokenizer's ``truncation``/``padding``, which a fast tokenizer stores on its
        shared Rust object (a chunk another thread tokenised then would be cut too)."""
        sep = self.tokenizer.sep_token_id
        rows = []
        for ids in self.tokenizer(list(queries), verbose=False)["input_ids"]:
            if len(ids) > self.window_tokens:
                tail = 1 if sep is not None and ids[-1] == sep else 0
                ids = ids[: self.window_tokens - tail] + ids[len(ids) - tail :]
            rows.append(list(ids))
        return self._padded(rows)

    def _padded(self, rows: list[list[int]]) -> tuple[list[list[int]], list[list[int]]]:
        """``rows`` right-padded with the pad token to the longest, and their attention mask."""
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id or 0
        return [r + [pad] * (width - len(r)) for r in rows], [
            [1] * len(r) + [0] * (width - len(r)) for r in rows
        ]
