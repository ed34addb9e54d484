"""Compression methods compared by the harness: a registry of factories, in report order.

Every method is a callable ``(chunks, question, budget) -> str`` built by a factory from a
:class:`~semtoken_lab.eval.method_env.MethodEnv` (the interface and its resources:
:mod:`semtoken_lab.eval.method_env`); the baselines live in :mod:`semtoken_lab.eval.baselines`,
SemToken and its ablations in :mod:`semtoken_lab.eval.semtoken_variants`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from semtoken_lab.eval.baselines import (
    make_closed_book,
    make_embed_filter,
    make_longllmlingua,
    make_none,
    make_random,
    make_selective_context,
    make_truncate,
    make_truncate_lead,
)
from semtoken_lab.eval.method_env import Method, MethodEnv
from semtoken_lab.eval.semtoken_variants import semtoken_variant

#: The seed's entropy settings (the defaults before the measurements of docs/results.md).
SEED_ENTROPY: dict[str, Any] = {"entropy_weight": 0.1, "entropy_threshold": 0.5}

#: Codecs of the ``semtoken-store-<codec>`` variants (the store's fidelity check, issue 13).
STORE_VARIANT_CODECS = ("pq64", "pq96", "sq4", "float16")


#: Method name -> factory.  Order is the report order.
METHODS: dict[str, Callable[[MethodEnv], Method]] = {
    "none": make_none,
    "closed-book": make_closed_book,
    "truncate": make_truncate,
    "truncate-lead": make_truncate_lead,
    "random": make_random,
    "embed-filter": make_embed_filter,
    "selective-context": make_selective_context,
    "longllmlingua": make_longllmlingua,
    "semtoken": semtoken_variant(),
    # The seed's entropy stage (weight 0.1, collapse below 0.5 x median span entropy), off by
    # default since the measurements of docs/results.md; with it off, merging changes nothing,
    # so the merging ablation is measured with entropy on.
    "semtoken-entropy": semtoken_variant(**SEED_ENTROPY),
    "semtoken-entropy-nomerge": semtoken_variant(similarity_threshold=1.0, **SEED_ENTROPY),
    "semtoken-noquery": semtoken_variant(use_query=False),
    "semtoken-pooled": semtoken_variant(relevance="pooled"),
    "semtoken-relevance": semtoken_variant(objective="relevance"),
    "semtoken-coverage": semtoken_variant(objective="coverage"),
    **{
        f"semtoken-store-{c}": semtoken_variant(store_codec=c, name=f"semtoken-store-{c}")
        for c in STORE_VARIANT_CODECS
    },
    # Fingerprints sliced from whole documents ingested before the first example (issue 23,
    # point 3), against ``semtoken``'s chunks encoded alone.
    "semtoken-docs": semtoken_variant(documents=True, name="semtoken-docs"),
}

#: Methods whose output does not depend on the budget (run once per example, not per ratio).
RATIO_FREE = frozenset({"none", "closed-book"})


def build_method(name: str, env: MethodEnv) -> Method:
    """Instantiate a registered method.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    try:
        factory = METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; choose from {', '.join(METHODS)}") from None
    return factory(env)
