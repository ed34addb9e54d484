"""``semtoken-rag ask``: compress files for a question, answer with the local reader, show costs.

Why a CLI subcommand: it is the shortest end-to-end demonstration of the project's claim —
fewer reader tokens, a smaller KV cache and a shorter time to first token for the same answer —
on the user's own files.  Printing is fine here (the library logs).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semtoken_rag.cli import args
from semtoken_rag.errors import InvalidInputError


@dataclass(frozen=True)
class _Row:
    label: str
    tokens: int
    compress_ms: float
    answer: Any  # ReaderAnswer


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``ask`` arguments to ``parser``."""
    parser.add_argument("files", nargs="+", type=Path, help="text files used as context chunks")
    parser.add_argument("--question", "-q", required=True, help="the question to answer")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument(
        "--ratio", type=args.ratio_or_auto, default=None,
        help="fraction of reader tokens to keep, in (0, 1], or 'auto' (default: 0.5, lowered to "
        "fit the reader's window)",
    )  # fmt: skip
    budget.add_argument(
        "--budget", type=args.budget, default=None, help=f"token budget, 1 to {args.MAX_COUNT:,}"
    )
    parser.add_argument(
        "--store", type=Path, default=None,
        help="fingerprint store written by `semtoken-rag ingest` (read-only)",
    )  # fmt: skip
    parser.add_argument("--device", default=None, help="encoder device: auto, cpu, cuda, cuda:N")
    parser.add_argument(
        "--compare", action="store_true", help="also answer from the full context and compare"
    )
    parser.add_argument(
        "--reader", default="smollm2", help="reader model: smollm2 (default), hub id or path"
    )
    parser.add_argument(
        "--max-new-tokens", type=args.integer("--max-new-tokens", high=8192), default=32,
        help="answer length limit, 1 to 8192 tokens",
    )  # fmt: skip
    parser.add_argument(
        "--attn", default="auto", help="attention: auto, sdpa, eager, flash_attention_2"
    )
    parser.add_argument(
        "--kv-budget",
        type=_kv_budget,
        default=None,
        help="bound the KV cache while decoding: a fraction of the prompt in (0, 1] (0.5) or a "
        "token count >= 1 (300)",
    )
    parser.add_argument(
        "--kv-policy",
        default=None,
        help="what the KV budget evicts (needs --kv-budget): semtoken (default), semtoken-cos, "
        "semtoken-static, streaming, snapkv, none",
    )


_KV_FRACTION = args.number("--kv-budget", 0.0, 1.0, low_open=True)
_KV_TOKENS = args.integer("--kv-budget", high=args.MAX_COUNT)


def _kv_budget(text: str) -> float | int:
    """``0.5`` -> a fraction of the prompt in (0, 1], ``300`` -> a token count >= 1."""
    try:
        is_fraction = any(c in text for c in ".eE") or not text.strip().lstrip("+-").isdigit()
        return _KV_FRACTION(text) if is_fraction else _KV_TOKENS(text)
    except (ValueError, argparse.ArgumentTypeError):
        msg = (
            "expected a fraction or a token count (a fraction of the prompt in (0, 1], or "
            f"tokens in [1, {args.MAX_COUNT:,}]), got {text!r}"
        )
        raise argparse.ArgumentTypeError(msg) from None


args.mark_numeric(_kv_budget)


def _fmt_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{n} B"


def _table(rows: list[_Row]) -> str:
    head = "| context | tokens | compress ms | prefill ms | TTFT ms | total ms | KV cache |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        a = r.answer
        lines.append(
            f"| {r.label} | {r.tokens} | {r.compress_ms:.1f} | {a.prefill_ms:.1f} | "
            f"{a.ttft_ms:.1f} | {r.compress_ms + a.ttft_ms:.1f} | {_fmt_bytes(a.kv_bytes)} |"
        )
    return "\n".join(lines)


def _kv_lines(label: str, trace: Any, show: int = 8) -> list[str]:
    """What the KV budget did for one answer: bytes held and the spans it evicted."""
    lines = [
        f"KV [{label}]: policy {trace.policy}, budget {trace.budget_tokens} of "
        f"{trace.prompt_tokens} prompt tokens ({trace.protected_tokens} protected); during "
        f"{trace.steps} decoding steps held {_fmt_bytes(round(trace.mean_kv_bytes))} on average "
        f"(peak {_fmt_bytes(trace.peak_kv_bytes)}) = {trace.kv_ratio:.2f} of the unbounded "
        f"cache; prefill {_fmt_bytes(trace.prefill_kv_bytes)}; policy "
        f"{trace.policy_s * 1e3:.1f} ms",
    ]
    kept = trace.span_kept
    gone = trace.evicted_spans
    lines.append(
        f"  spans: {len(gone)} of {len(kept)} evicted everywhere, "
        f"{sum(0.0 < k < 1.0 for k in kept)} in part (policies that choose per layer and head)"
    )
    for i in sorted(range(len(kept)), key=lambda j: (kept[j], j))[:show]:
        if kept[i] >= 1.0:
            break
        text = " ".join(trace.span_texts[i].split())
        lines.append(
            f"  - span {i} ({kept[i]:.0%} of its entries kept): "
            f"{text[:80]}{'...' if len(text) > 80 else ''}"
        )
    return lines


def _budget(ns: argparse.Namespace, comp: Any, reader: Any, texts: list[str]) -> dict[str, Any]:
    """The compression call's ``ratio``/``budget``, never above what the reader's window holds
    beside the instruction, the question and the answer (else the reader would cut the
    compressed context in the middle)."""
    room = reader.context_room(ns.question, reserve=ns.max_new_tokens)
    total = sum(comp.count_tokens(t) for t in texts)
    if ns.ratio == "auto":
        return {"ratio": "auto"} if room >= total else {"budget": room}
    want = ns.budget if ns.budget is not None else round((ns.ratio or 0.5) * total)
    if want > room:
        print(f"note: budget lowered from {want} to {room} tokens to fit the reader's window")
    return {"budget": max(1, min(want, room))}


def _compressor(ns: argparse.Namespace, stack: Any) -> Any:
    from semtoken_rag import Compressor, SemTokenConfig

    options: dict[str, Any] = {"count_tokenizer": ns.reader}
    if ns.device:
        options["device"] = ns.device
    if ns.ratio == "auto":
        options["compression_ratio"] = "auto"
    store = None
    if ns.store is not None:
        from semtoken_rag.store import FingerprintStore

        store = stack.enter_context(FingerprintStore(ns.store, read_only=True))
    return Compressor(SemTokenConfig(**options), store=store)


def _answers(ns: argparse.Namespace, texts: list[str], stack: Any) -> list[_Row]:
    from semtoken_lab.reader import LocalReader
    from semtoken_lab.reader.kv_layout import CompressorSpans

    comp = _compressor(ns, stack)
    reader = LocalReader(
        ns.reader, attn=ns.attn, kv_budget=ns.kv_budget, kv_policy=ns.kv_policy or "semtoken",
        kv_spans=CompressorSpans(comp),
    )  # fmt: skip
    reader.warmup()
    res = comp.compress(texts, query=ns.question, **_budget(ns, comp, reader, texts))
    answer = reader.answer(ns.question, res.joined(), max_new_tokens=ns.max_new_tokens)
    rows = [_Row(f"compressed ({res.ratio:.2f})", res.kept_tokens, res.timings.total_ms, answer)]
    if ns.compare:
        full = reader.answer(ns.question, "\n\n".join(texts), max_new_tokens=ns.max_new_tokens)
        rows.insert(0, _Row("full", res.original_tokens, 0.0, full))
    return rows


def _check_kv_policy(ns: argparse.Namespace) -> None:
    """Refuse a policy without a budget (it was ignored) or of an unknown name (refused only
    after the reader loaded), before anything loads; ``None`` is the default policy."""
    if ns.kv_policy is None:
        return
    if ns.kv_budget is None:
        raise InvalidInputError(f"--kv-policy {ns.kv_policy} needs --kv-budget (what it bounds)")
    from semtoken_lab.reader.kv_budget import KV_POLICIES

    if ns.kv_policy not in KV_POLICIES:
        raise InvalidInputError(
            f"unknown --kv-policy {ns.kv_policy!r}; choose one of {', '.join(sorted(KV_POLICIES))}"
        )


def run(ns: argparse.Namespace) -> int:
    """Compress the files for the question, answer, print the answer(s) and a cost table.

    Raises:
        SemTokenError: a bad file, model, option or store (one ``error:`` line, status 2).
    """
    from contextlib import ExitStack

    from semtoken_rag.cli.files import read_text_file

    _check_kv_policy(ns)
    # The engine's rule for files: UTF-8 with undecodable bytes replaced, or a typed error.
    texts = [read_text_file(p) for p in ns.files]
    with ExitStack() as stack:
        rows = _answers(ns, texts, stack)
    for r in rows:
        print(f"answer [{r.label}]: {r.answer.text}")
    print()
    print(_table(rows))
    for r in rows:
        if r.answer.kv_trace is not None:
            print()
            print("\n".join(_kv_lines(r.label, r.answer.kv_trace)))
    a = rows[-1].answer
    print(
        f"\nreader {ns.reader} on {a.device}, attention {a.attn_implementation}; "
        f"tokens are the reader's (context only); TTFT includes prompt building"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m semtoken_lab.cli.ask``) until ``cli.main`` has it."""
    parser = argparse.ArgumentParser(prog="semtoken-rag ask", description=__doc__)
    register(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
