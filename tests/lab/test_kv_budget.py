"""KV budget during decoding, on the real SmolLM2-135M: positions, invariants, bad input.

The spans here come from a plain sentence regex (fast); the compressor's own units are used by
tests/lab/test_kv_eval.py through the CLI.  The reader is pinned to fp32 so tolerances do not
depend on the CPU (bf16 where AMX is present).
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

from semtoken_rag.errors import ConfigError

POLICIES = ("semtoken", "semtoken-cos", "streaming", "snapkv")


def sentence_spans(context: str, question: str) -> np.ndarray:
    """Character spans of the sentences of ``context`` (a test span source)."""
    return np.array([m.span() for m in re.finditer(r"[^.!?]+[.!?]?", context) if m.group().strip()])


@pytest.fixture(scope="module")
def reader(local_reader):
    return local_reader(device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def gen(reader):
    from semtoken_lab.reader.kv_generation import BudgetedGeneration

    return BudgetedGeneration(reader, spans=sentence_spans)


@pytest.fixture(scope="module")
def case(gen, narrativeqa):
    """One NarrativeQA prompt (~320 tokens), prefilled once with 32 recorded queries, and 24
    tokens to feed (a sentence of its context, so the continuation is natural text)."""
    ex = narrativeqa[0]
    feed = gen.reader.tokenizer(ex["context"][:200], add_special_tokens=False)["input_ids"][:24]
    lay = gen.layout(ex["question"], ex["context"], reserve=len(feed))
    with gen.attached(*POLICIES):
        pre = gen.prefill(lay, rows=32)
    return SimpleNamespace(ex=ex, lay=lay, pre=pre, feed=[int(t) for t in feed])


def kv(budget, policy, **kw):
    from semtoken_lab.reader.kv_budget import KVBudget

    return KVBudget(budget, policy, **kw)


@pytest.mark.slow
def test_layout_locates_instruction_context_and_question(gen, case):
    lay, tok = case.lay, gen.reader.tokenizer
    prefix = tok.decode(list(lay.ids[: lay.context_start]))
    suffix = tok.decode(list(lay.ids[lay.context_end :]))
    assert prefix.rstrip().endswith("Context:")
    assert case.ex["question"] in suffix and suffix.endswith("assistant\n")
    assert list(lay.ids) == gen.reader.prompt_ids(case.ex["question"], case.ex["context"])
    assert lay.n_spans > 3 and np.all(np.diff(lay.token_span) >= 0)  # spans in order
    assert lay.span_text(0).startswith(case.ex["context"][:20])


@pytest.fixture(scope="module")
def unbounded(gen, case):
    """The first 8 fed tokens scored without eviction."""
    with gen.attached():
        return gen.teacher_force(case.pre, case.feed[:8], kv(1.0, "none"))


@pytest.mark.slow
@pytest.mark.parametrize("policy", POLICIES)
def test_budget_covering_the_prompt_changes_nothing(gen, case, unbounded, policy):
    """A budget >= prompt + answer never evicts: every logit equals the unbounded run exactly."""
    base = unbounded
    with gen.attached(*POLICIES):
        same = gen.teacher_force(case.pre, case.feed[:8], kv(case.lay.prompt_tokens + 64, policy))
    assert same.logprobs == base.logprobs
    assert same.trace.evictions == () and same.trace.kv_bytes == base.trace.kv_bytes


@pytest.mark.slow
def test_stepwise_loglik_matches_one_forward_pass(reader, case, unbounded):
    """Teacher forcing through the cache equals the reader's single-pass scoring (positions)."""
    answer = reader.tokenizer.decode(case.feed[:8])
    stepwise = unbounded
    ref = reader.answer_loglik(case.ex["question"], case.ex["context"], answer)
    assert ref.n_tokens == 8
    assert stepwise.total == pytest.approx(ref.total, rel=1e-3, abs=1e-2)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["streaming", "semtoken-cos"])
def test_positions_after_eviction_match_a_masked_full_cache(reader, gen, case, policy):
    """After eviction, each step equals the unbounded cache with the evicted entries masked out
    (true absolute positions); feeding the cache length as position instead does not."""
    import torch
    from transformers import DynamicCache

    model, P = reader.model, case.lay.prompt_tokens
    with gen.attached(policy):
        sess = gen.session(case.pre, kv(0.5, policy))
        ref_cache = DynamicCache(config=model.config)
        with torch.inference_mode():
            model(input_ids=torch.tensor([case.lay.ids]), cache=ref_cache, use_cache=True)
            for k, tok in enumerate(case.feed[:6]):
                kept_before = set(sess.cache.positions[0, 0].tolist())
                logits = sess.step(tok)
                mask = torch.zeros(1, P + k + 1, dtype=torch.long)
                mask[0, sorted(kept_before)] = 1
                mask[0, P + k] = 1  # the token itself
                ref = model(
                    input_ids=torch.tensor([[tok]]),
                    attention_mask=mask,
                    position_ids=torch.tensor([[P + k]]),
                    cache=ref_cache,
                    use_cache=True,
                ).logits[0, -1]
                assert torch.allclose(logits, ref, atol=2e-3), (k, (logits - ref).abs().max())
            assert sess.trace().evictions, "the budget never evicted: the test proves nothing"
            wrong = sess.cache.clone()
            tok = case.feed[6]
            bad = model(
                input_ids=torch.tensor([[tok]]),
                position_ids=torch.tensor([[wrong.n_entries]]),  # cache length, not P + 6
                cache=wrong,
                use_cache=True,
            ).logits[0, -1]
            good = sess.step(tok)
    assert (bad - good).abs().max() > 1e-2


@pytest.mark.slow
@pytest.mark.parametrize("policy", POLICIES)
def test_budget_respected_and_protected_entries_kept(gen, case, policy):
    """Every step: at most ``budget`` entries per row, equal rows, instruction / question /
    recent tokens present; once the context is gone the oldest generated tokens go."""
    lay = case.lay
    budget = lay.protected_tokens + 12
    cfg = kv(budget, policy, recent=4, chunk=4)
    prefix = set(range(lay.context_start))
    suffix = set(range(lay.context_end, lay.prompt_tokens))
    feed = case.feed[:18]  # more than the 12 free entries
    with gen.attached(policy):
        sess = gen.session(case.pre, cfg)
        for k, tok in enumerate(feed):
            sess.step(tok)
            pos = sess.cache.positions
            assert pos.shape[-1] == sess.cache.n_entries <= budget
            assert sess.cache.kv_layers[0].keys.shape[2] == pos.shape[-1]
            recent = set(
                range(max(lay.prompt_tokens, lay.prompt_tokens + k - 3), lay.prompt_tokens + k + 1)
            )
            for row in pos.reshape(-1, pos.shape[-1]).tolist():
                held = set(row)
                assert prefix | suffix | recent <= held, (
                    k,
                    sorted(prefix | suffix | recent - held),
                )
    trace = sess.trace()
    assert max(trace.entries) <= budget and trace.kv_ratio < 0.5
    ctx_left = [p for p in pos[0, 0].tolist() if lay.context_start <= p < lay.context_end]
    assert ctx_left == []  # 18 new tokens for 12 free entries: all context evicted
    assert min(p for p in pos[0, 0].tolist() if p >= lay.prompt_tokens) > lay.prompt_tokens


def _held(lay, row):
    """Entries of each span held in one row of positions."""
    row = np.asarray(row)
    ctx = row[(row >= lay.context_start) & (row < lay.context_end)] - lay.context_start
    return np.bincount(lay.token_span[ctx], minlength=lay.n_spans)


@pytest.mark.slow
def test_semtoken_evicts_spans_as_units(gen, case):
    """semtoken-cos: whole spans, the same in every row; semtoken: per row, whole spans but the
    last one of an eviction; snapkv: different entries per row."""
    lay = case.lay
    size = np.bincount(lay.token_span, minlength=lay.n_spans)
    with gen.attached(*POLICIES):
        cos = gen.session(case.pre, kv(0.5, "semtoken-cos"))
        sem = gen.session(case.pre, kv(0.5, "semtoken"))
        snap = gen.session(case.pre, kv(0.5, "snapkv"))
    held = _held(lay, cos.cache.positions[0, 0])
    assert np.all((held == 0) | (held == size)) and (held == 0).any()
    assert cos.trace().evicted_spans == tuple(int(i) for i in np.flatnonzero(held == 0))
    assert (
        len({tuple(r) for r in cos.cache.positions.reshape(-1, cos.cache.n_entries).tolist()}) == 1
    )
    rows = sem.cache.positions.reshape(-1, sem.cache.n_entries).tolist()
    for row in rows:
        h = _held(lay, row)
        assert ((h > 0) & (h < size)).sum() <= 1 and (h == 0).any()
    assert len({tuple(r) for r in rows}) > 1
    rows = {tuple(r) for r in snap.cache.positions.reshape(-1, snap.cache.n_entries).tolist()}
    assert len(rows) > 1


@pytest.mark.slow
def test_semtoken_rescoring_follows_the_decoding_query(gen, case):
    """Attention scores are updated from the current query every ``recompute_every`` steps."""
    import torch

    with gen.attached("semtoken"):
        sess = gen.session(case.pre, kv(0.5, "semtoken", recompute_every=4))
        seen = [sess.policy.attention.clone()]
        for tok in case.feed[:5]:
            sess.step(tok)
            seen.append(sess.policy.attention.clone())
    assert seen[0].shape[:2] == sess.cache.positions.shape[:2]
    changed = [not bool((a[..., : b.shape[-1]] == b).all()) for a, b in zip(seen[1:], seen)]
    assert changed == [True, False, False, False, True]  # steps 0 and 4 re-scored
    with gen.attached("semtoken-static"):  # the "w/o AR-budget" ablation never re-scores
        static = gen.session(case.pre, kv(0.5, "semtoken-static", recompute_every=1))
        before = static.policy.attention.clone()
        for tok in case.feed[:2]:
            static.step(tok)
    assert torch.equal(before, static.policy.attention)


@pytest.mark.slow
def test_reader_with_kv_budget_reports_trace(reader, gen, case, monkeypatch):
    """``LocalReader.answer`` routes through the budget when the reader has one (its
    constructor path is exercised by ``semtoken-rag ask --kv-budget`` in test_kv_eval.py)."""
    from semtoken_lab.reader.kv_generation import BudgetedGeneration

    full = reader.answer(case.ex["question"], case.ex["context"], max_new_tokens=8)
    assert full.kv_trace is None
    monkeypatch.setattr(
        reader, "kv", BudgetedGeneration(reader, kv(0.5, "semtoken"), spans=sentence_spans)
    )
    ans = reader.answer(case.ex["question"], case.ex["context"], max_new_tokens=8)
    trace = ans.kv_trace
    assert trace is not None and trace.policy == "semtoken" and ans.text
    assert trace.budget_tokens == round(0.5 * ans.prompt_tokens)
    assert max(trace.entries) <= trace.budget_tokens and trace.kv_ratio <= 0.55
    assert min(trace.span_kept) < 1.0 and trace.prefill_kv_bytes > ans.kv_bytes == trace.kv_bytes[0]


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("budget", [0, 0.0, -1, 1.5, float("nan"), True, "0.5", None])
def test_bad_budget_values(budget):
    with pytest.raises(ConfigError, match="kv_budget"):
        kv(budget, "semtoken")


def test_bad_policy_and_options():
    with pytest.raises(ConfigError, match="unknown kv_policy 'h2o'"):
        kv(0.5, "h2o")
    with pytest.raises(ConfigError, match="recompute_every"):
        kv(0.5, "semtoken", recompute_every=0)
    with pytest.raises(ConfigError, match="pool_kernel"):
        kv(0.5, "snapkv", pool_kernel=4)


@pytest.mark.slow
def test_budget_below_instruction_and_question(gen, case):
    lay = case.lay
    with gen.attached("semtoken"), pytest.raises(ConfigError) as err:
        gen.session(case.pre, kv(lay.protected_tokens, "semtoken"))
    msg = str(err.value)
    assert str(lay.protected_tokens + 1) in msg and str(lay.context_start) in msg
    assert str(lay.prompt_tokens - lay.context_end) in msg


def _tiny(kind: str):
    from transformers import GPT2Config, GPT2LMHeadModel, MistralConfig, MistralForCausalLM

    if kind == "mistral-sliding":
        cfg = MistralConfig(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            sliding_window=8,
        )
        return MistralForCausalLM(cfg)
    cfg = GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=64)
    cfg.bos_token_id = cfg.eos_token_id = 0
    return GPT2LMHeadModel(cfg)


def test_unsupported_models_name_their_class():
    from semtoken_lab.reader.kv_generation import BudgetedGeneration

    sliding = SimpleNamespace(model=_tiny("mistral-sliding"), device="cpu")
    with pytest.raises(ConfigError, match=r"MistralForCausalLM.*DynamicSlidingWindowLayer"):
        BudgetedGeneration(sliding, kv(0.5, "streaming"))
    gpt2 = SimpleNamespace(model=_tiny("gpt2"), device="cpu")
    with pytest.raises(ConfigError, match="GPT2LMHeadModel"):
        BudgetedGeneration(gpt2, kv(0.5, "semtoken"))
    BudgetedGeneration(gpt2, kv(0.5, "streaming"))  # no queries needed: accepted


@pytest.mark.slow
def test_query_policy_needs_recorded_queries(gen, case):
    from dataclasses import replace

    from semtoken_rag.errors import InvalidInputError

    bare = replace(case.pre, queries=None)  # a prefill made with rows=0
    with gen.attached("snapkv"), pytest.raises(InvalidInputError, match="rows=32"):
        gen.session(bare, kv(0.5, "snapkv"))
    with pytest.raises(RuntimeError, match="outside attached"):
        gen.session(case.pre, kv(0.5, "semtoken"))
