"""Markdown of the splitters benchmark (:mod:`semtoken_lab.bench.splitters`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _size_line(label: str, s: dict[str, Any]) -> str:
    return (
        f"| {label} | {s['documents']:,} | {s['words']:,} | {s['tokens']:,} | "
        f"{s['bytes_per_1k_tokens']:,.0f} | {s['old_format_bytes_per_1k_tokens']:,.0f} | "
        f"{100 * s['overhead_vs_old']:+.1f}% | "
        f"{100 * s['overhead_vs_old_without_codebooks']:+.1f}% | {s['staged_words']:,} |"
    )


def _tables_line(label: str, s: dict[str, Any]) -> str:
    parts = ", ".join(f"{name} {size / 1e3:,.0f}" for name, size in s["tables"].items()
                      if size >= 0.005 * s["disk"])  # fmt: skip
    words = s["words_payload_bytes"] / 1e3
    return f"* {label}: {parts} (KB of pages; words payload {words:,.0f} KB)"


def size_table(info: dict[str, Any]) -> list[str]:
    """The store's size against the previous format's terms (codes + 2 B of spans per word)."""
    lines = [
        "Size on disk (every file after close) per 1k MiniLM tokens, against the same words in "
        "the previous format's terms (codes + 2 bytes of spans per word, no row overhead): the "
        "locator's overhead (words, shingles, names, SQLite). Target: at most +10%.",
        "",
        "| store | documents | words | tokens | B / 1k tok | previous format B / 1k tok | "
        "overhead | overhead without codebooks | staged (float16) words |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    stores = [("whole documents", info["store"])]
    if "reference_store" in info:
        stores.append(("ingested 256-word windows", info["reference_store"]))
    lines += [_size_line(label, s) for label, s in stores]
    lines += ["", "Pages per table/index (dbstat), tables over 0.5% of the file:", ""]
    return lines + [_tables_line(label, s) for label, s in stores]


def markdown(info: dict[str, Any], rows: Sequence[Any]) -> list[str]:
    """Workload, the per-splitter table, the size table."""
    lines = [
        f"{info['documents']} real documents ({', '.join(info['sources'])}) ingested whole into a "
        f"{info['codec']} store (codebook trained on them by ingest's sample batch); chunks cut "
        "by each splitter after ingestion, looked up with `store.lookup` in random 10-chunk "
        "groups (warm). *served*: no encoder pass needed; *shape ok*: one vector per word of "
        "the served chunks; *aligned*: served words whose vectors are the stored document's at "
        "the chunk's true position (a passage several documents share, e.g. an essay's "
        "boilerplate, is served verified words from whichever holds it unless hinted); "
        "*hinted*: with the framework's `ChunkSource(document, start)`; "
        "*served words*: share of all the chunks' words in served chunks (a chunk under 19 "
        "words, shorter than the winnowing guarantee, may miss: headings, short lines); "
        "*bad start hints*: "
        "start offsets the framework reported wrong (LangChain's `add_start_index` with a token "
        "splitter subtracts the overlap in tokens from a character offset: -1 when not found).",
        "",
        "| splitter | size | chunks | mean words | not substrings | bad start hints | served | "
        "served words | served, hinted | shape ok | aligned | aligned, hinted | p50 / p99 ms | "
        "hinted p50 / p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.splitter} | {r.size} | {r.chunks:,} | {r.mean_words:.0f} | "
            f"{r.not_substrings:,} | {r.bad_start_hints:,} | {_pct(r.served)} | "
            f"{_pct(r.served_words)} | "
            f"{_pct(r.served_hinted)} | {_pct(r.shape_ok)} | {_pct(r.aligned)} | "
            f"{_pct(r.aligned_hinted)} | "
            f"{r.warm_p50_ms:.2f} / {r.warm_p99_ms:.2f} | "
            f"{r.hinted_p50_ms:.2f} / {r.hinted_p99_ms:.2f} |"
        )
    return [*lines, "", *size_table(info)]
