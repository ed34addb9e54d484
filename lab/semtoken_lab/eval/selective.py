"""Selective Context (Li et al., 2023): drop the units the reader LM finds least informative.

Self-information of a token is ``-log p(token | preceding tokens)`` under a causal LM (here the
reader itself, as the paper uses the target-family LM).  A unit's information is the *sum* over
its tokens (the paper's rule); units are phrases/clauses of at most
:data:`PHRASE_WORDS` words (sentences split at clause punctuation), a stand-in for the paper's
spaCy noun phrases that needs no extra model.  The budget is then spent by the engine, as for
every baseline (:mod:`semtoken_lab.eval.selection`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from semtoken_lab.eval.selection import UnitSelector

logger = logging.getLogger(__name__)

#: Longest unit in words (phrase level).
PHRASE_WORDS = 12
#: LM window; longer chunks are scored in consecutive windows (no cross-window context).
WINDOW_TOKENS = 1024


def model_device(model: Any) -> Any:
    """The device of ``model``'s weights (inputs must be created there)."""
    import torch

    dev = getattr(model, "device", None)
    if isinstance(dev, torch.device):
        return dev
    return next(model.parameters()).device


def token_surprisal(model: Any, tokenizer: Any, text: str) -> tuple[np.ndarray, np.ndarray]:
    """Self-information of every token of ``text``.

    Returns:
        ``(offsets (n_tokens, 2) int64, surprisal (n_tokens,) float64)`` in nats; the first
        token of each window has no left context and gets the window's mean.
    """
    import torch

    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    offs = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
    info = np.zeros(len(ids), dtype=np.float64)
    device = model_device(model)
    for a in range(0, len(ids), WINDOW_TOKENS):
        window = ids[a : a + WINDOW_TOKENS]
        with torch.inference_mode():
            x = torch.tensor([window], dtype=torch.long, device=device)
            logp = torch.log_softmax(model(x).logits[0, :-1].float(), dim=-1)
            nll_t = -logp.gather(1, x[0, 1:].unsqueeze(1)).squeeze(1)
            nll = nll_t.double().cpu().numpy()  # the model may be on CUDA: copy back first
        info[a + 1 : a + len(window)] = nll
        info[a] = float(nll.mean()) if len(nll) else 0.0
    return offs, info


def word_information(model: Any, tokenizer: Any, text: str, word_spans: np.ndarray) -> np.ndarray:
    """Self-information per word: each token charged to the word holding its last character."""
    offs, info = token_surprisal(model, tokenizer, text)
    keep = offs[:, 1] > offs[:, 0]
    widx = np.searchsorted(word_spans[:, 0], offs[keep, 1] - 1, side="right") - 1
    n = len(word_spans)
    return np.bincount(widx.clip(0, max(n - 1, 0)), weights=info[keep], minlength=n)[:n]


class SelectiveContext:
    """The ``selective-context`` method.

    Args:
        model: A causal LM (the reader's) in eval mode.
        tokenizer: Its tokenizer (fast, with offsets).
        selector: The engine's selection at phrase level (``max_unit_words=PHRASE_WORDS``),
            counting the budget in reader tokens.
    """

    def __init__(self, model: Any, tokenizer: Any, selector: UnitSelector) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.selector = selector
        # Surprisal depends on the text only, not on the budget: score each chunk once per run.
        self._info: dict[str, np.ndarray] = {}

    def __call__(self, chunks: Sequence[str], question: str, budget: int) -> str:
        units = self.selector.units(chunks)
        scores = []
        for c in units.chunks:
            if not c.n_words:
                continue
            winfo = self._info.get(c.text)
            if winfo is None or len(winfo) != c.n_words:
                winfo = word_information(self.model, self.tokenizer, c.text, c.word_spans)
                if len(self._info) > 256:
                    self._info.clear()
                self._info[c.text] = winfo
            csum = np.concatenate([[0.0], np.cumsum(winfo)])
            ends = np.append(c.unit_starts[1:], c.n_words)
            scores.append(csum[ends] - csum[c.unit_starts])
        if not scores:
            return ""
        return self.selector.select(units, np.concatenate(scores), budget)
