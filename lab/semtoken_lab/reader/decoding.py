"""The reader's forward passes: left-padded batches, greedy decoding and answer log-likelihoods.

Why a hand-written greedy loop instead of ``model.generate``: compression is supposed to save
*reading* time, so prefill time, time to first token, per-token decode time and the KV-cache size
must be measured separately and honestly.  The loop is one prefill forward pass (logits for the
last position only) and one cached forward pass per new token; batches are left-padded with
explicit position ids, so a batched greedy answer equals the single one.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from semtoken_lab.reader.measure import DeviceClock, cache_nbytes


def cache_argument(model: Any) -> str:
    """The name of the cache argument of ``model.forward`` (transformers 5.x renamed
    ``past_key_values`` to ``cache``)."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def output_cache(output: Any) -> Any:
    """The cache a forward pass returned: ``output.cache`` (transformers 5.x; reading the old
    name ``past_key_values`` is deprecated there), else ``output.past_key_values``."""
    if "cache" in output:
        return output["cache"]
    return output.past_key_values


@dataclass
class Generated:
    """The greedy tokens of one batch and what producing them cost."""

    tokens: list[list[int]]
    prefill_s: float
    first_s: float  # from the batch's start to the first token on the host
    decode_s_per_step: float
    kv_bytes: int
    slots: int  # batch * padded length: cached token slots


@dataclass(frozen=True)
class Decoder:
    """A loaded causal LM as the decoding loops drive it.

    Attributes:
        model: The causal LM (eval mode, on ``device``).
        device: Where its inputs go.
        eos: Token ids that end an answer.
        pad_id: Token id left padding is filled with (masked out).
        clock: Times the forward passes on the device.
        cache_kw: The name of the model's cache argument (:func:`cache_argument`).
    """

    model: Any
    device: str
    eos: frozenset[int]
    pad_id: int
    clock: DeviceClock
    cache_kw: str = "past_key_values"

    @classmethod
    def of(cls, model: Any, device: str, eos: frozenset[int], pad_id: int) -> Decoder:
        """The decoder of a loaded model (its cache argument looked up once)."""
        return cls(model, device, eos, pad_id, DeviceClock(device), cache_argument(model))

    def left_pad(self, seqs: Sequence[Sequence[int]]) -> tuple[Any, Any]:
        """``(ids, attention mask)`` of ``seqs`` left-padded to the longest, on the device."""
        import torch

        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            if s:
                ids[i, width - len(s) :] = torch.tensor(list(s), dtype=torch.long)
                mask[i, width - len(s) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def _forward(self, ids: Any, mask: Any, pos: Any, cache: Any) -> Any:
        return self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=pos,
            use_cache=True,
            logits_to_keep=1,
            **{self.cache_kw: cache},
        )

    def greedy(
        self, seqs: Sequence[Sequence[int]], max_new_tokens: int, t_call: float
    ) -> Generated:
        """Prefill + cached greedy decode of left-padded ``seqs``.

        Args:
            seqs: Prompt token ids, one list per example.
            max_new_tokens: Most tokens generated per example.
            t_call: ``time.perf_counter()`` when the caller started (the time to first token
                counts from there).
        """
        import torch
        from transformers import DynamicCache

        ids, mask = self.left_pad(seqs)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        with torch.inference_mode():
            t0 = self.clock.now()
            out = self._forward(ids, mask, pos, cache)
            t1 = self.clock.now()
            nxt = out.logits[:, -1].argmax(-1)
            toks = nxt.tolist()
            t_first = time.perf_counter()
            kv = cache_nbytes(cache)  # filled in place by the forward pass
            generated = [[t] for t in toks]
            steps = self._decode(generated, nxt, mask, pos[:, -1:], cache, max_new_tokens)
            t_end = time.perf_counter()
        return Generated(
            tokens=generated,
            prefill_s=t1 - t0,
            first_s=t_first - t_call,
            decode_s_per_step=(t_end - t_first) / steps if steps else 0.0,
            kv_bytes=kv,
            slots=int(ids.numel()),
        )

    def _decode(
        self,
        generated: list[list[int]],
        nxt: Any,
        mask: Any,
        last: Any,
        cache: Any,
        max_new_tokens: int,
    ) -> int:
        """Cached greedy steps after the prefill, appending to ``generated`` in place until every
        row ended or ``max_new_tokens`` are out; returns the number of steps."""
        import torch

        done = [row[0] in self.eos for row in generated]
        steps = 0
        while not all(done) and steps + 1 < max_new_tokens:
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            last = last + 1
            out = self._forward(nxt[:, None], mask, last, cache)
            nxt = out.logits[:, -1].argmax(-1)
            steps += 1
            for i, t in enumerate(nxt.tolist()):
                if not done[i]:
                    generated[i].append(t)
                    done[i] = t in self.eos
        return steps

    def answer_logits(self, rows: Sequence[Sequence[int]], keep: int) -> Any:
        """Logits of the last ``keep`` positions of left-padded ``rows`` (no cache)."""
        import torch

        ids, mask = self.left_pad(rows)
        with torch.inference_mode():
            return self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                use_cache=False,
                logits_to_keep=keep,
            ).logits


def answer_logprobs(logits: Any, answers: Sequence[Sequence[int]], keep: int) -> list[float]:
    """Total log-probability of each answer, the answers ending their left-padded rows.

    Args:
        logits: ``(batch, keep, vocab)`` logits of the rows' last ``keep`` positions.
        answers: The answer token ids of each row.
        keep: Positions the logits cover (the longest answer + 1).
    """
    import torch

    with torch.inference_mode():
        logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # predicts last keep-1
    totals = []
    for row, ans in enumerate(answers):
        n = len(ans)
        target = torch.tensor(list(ans), device=logp.device)
        lp = logp[row, keep - 1 - n :].gather(-1, target[:, None]).squeeze(-1)
        totals.append(float(lp.sum()))
    return totals
