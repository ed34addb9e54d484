"""Markdown of ``semtoken-rag bench --store-scale`` (the table of docs/store.md, "At scale")."""

from __future__ import annotations

import json
from typing import Any


def _lookup_cells(r: Any, kind: str) -> str:
    x = r.lookups[kind]
    return (
        f"{x['fresh_p50_ms']:.2f} / {x['fresh_p99_ms']:.2f} | "
        f"{x['warm_p50_ms']:.2f} / {x['warm_p99_ms']:.2f}"
    )


_TAGGED = " and, from a chunk's second copy on, every fourth word tagged (distinct shingles)"


def _header(info: dict[str, Any]) -> list[str]:
    return [
        f"Workload: {info['chunks']:,} distinct real chunks (mean {info['mean_chunk_words']:.0f} "
        f"words, {info['mean_chunk_tokens']:.0f} encoder tokens), recycled with a unique marker "
        f"word{_TAGGED if info.get('distinct_texts') else ''}; codes from "
        f"{info['pool_vectors']:,} real MiniLM fingerprints of "
        f"{info['pool_chunks']} chunks, encoded once with the store's {info['codec']} codebook "
        f"(trained on {info['train_docs']} documents in {info['train_s']:.1f} s, cosine "
        f"{info['train_cos']:.3f}). The writer receives encoded documents: the largest N "
        "measures the writer and the lookups, not N PQ encodes. *KB written / doc*: bytes the "
        "writer passed to write calls (WAL and checkpoints) per document.",
        "",
    ]


def _main_table(rows: list[Any]) -> list[str]:
    pragmas = {json.dumps(r.pragmas, sort_keys=True) for r in rows if r.pragmas}
    lines = [f"Experiment: writer PRAGMAs {', '.join(sorted(pragmas))}.", ""] if pragmas else []
    lines += [
        "| documents | codec | copies / chunk | B on disk / doc | B / 1k tok | batch | "
        "write docs/s | write words/s | KB written / doc | close s | "
        "open ms (quick_check / none) | peak RSS MiB write / read |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.documents:,} | {r.codec} | {r.copies_per_chunk:.1f} | {r.bytes_per_doc:,.0f} | "
            f"{r.bytes_per_1k_tokens:,.0f} | {r.batch} | {r.write_docs_per_s:,.0f} | "
            f"{r.write_words_per_s:,.0f} | {r.written_bytes_per_doc / 1e3:,.0f} | "
            f"{r.close_s:.1f} | "
            f"{r.open_ms_verify:,.0f} / {r.open_ms_no_verify:.1f} | "
            f"{r.peak_rss_writer_mib:.0f} / {r.peak_rss_lookup_mib:.0f} |"
        )
    return lines


def _lookup_table(rows: list[Any]) -> list[str]:
    lines = [
        "",
        "Lookups of 10 chunks (200 queries of random documents), ms p50 / p99: *exact* = the "
        "documents' own texts (found by key), *sliced* = the same documents minus their first "
        "and last 10-30 words (found by shingles, every word verified); *fresh* = page cache "
        "dropped before each query.",
        "",
        "| documents | exact fresh | exact warm | sliced fresh | sliced warm | hit rate exact / "
        "sliced |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.documents:,} | {_lookup_cells(r, 'exact')} | {_lookup_cells(r, 'sliced')} | "
            f"{r.lookups['exact']['hit_rate']:.3f} / {r.lookups['sliced']['hit_rate']:.3f} |"
        )
    return lines


def _eviction_lines(rows: list[Any]) -> list[str]:
    lines = []
    for r in rows:
        e = r.eviction
        if e is None:
            continue
        lines += [
            "",
            f"Eviction ({e.written:,} documents written into max_bytes = {e.max_bytes:,}, half "
            f"their payload): {e.documents_after:,} documents kept, payload "
            f"{e.payload_after:,} B, {e.bytes_on_disk:,} B on disk, {e.write_docs_per_s:,.0f} "
            f"docs/s; oldest tenth present {e.oldest_tenth_present:.2f}, newest tenth "
            f"{e.newest_tenth_present:.2f}.",
        ]
    return lines


def _table_lines(rows: list[Any]) -> list[str]:
    lines = []
    for r in rows:
        if r.tables:
            big = [f"{name} {size / r.documents:,.0f}" for name, size in r.tables.items()
                   if size >= 0.005 * r.bytes_on_disk]  # fmt: skip
            lines.append(f"* {r.documents:,} documents: " + ", ".join(big))
    if not lines:
        return []
    return ["", "Pages per table/index (dbstat), bytes per document, over 0.5% of the file:", "",
            *lines]  # fmt: skip


def markdown(rows: list[Any], info: dict[str, Any]) -> list[str]:
    """The report's lines: workload, sizes and writer, lookups, eviction, tables."""
    return [*_header(info), *_main_table(rows), *_lookup_table(rows), *_eviction_lines(rows),
            *_table_lines(rows)]  # fmt: skip
