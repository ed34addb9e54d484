"""Splitter hit rate and latency (issue 23 point 5): documents ingested whole, chunks cut by
LangChain / LlamaIndex splitters served from the store (see
:mod:`semtoken_lab.bench.splitters`).

    python benchmarks/bench_splitters.py --out bench_out/splitters            # ~156 documents
    python benchmarks/bench_splitters.py --out bench_out/splitters --quick    # smoke

``--cache`` (default ``OUT/cache``) holds the real MiniLM fingerprints of the documents; the
writer benchmark uses the same documents, so one folder serves both.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    from semtoken_lab.bench.splitters import SplitRow, run_splitters
    from semtoken_lab.bench.splitters_report import markdown

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="a few documents, one size each")
    parser.add_argument("--data", type=Path, default=None, help="data root (../shared/data)")
    parser.add_argument("--cache", type=Path, default=None, help="fingerprint cache folder")
    parser.add_argument("--per-source", type=int, default=None, help="documents per source")
    args = parser.parse_args(argv)
    extra: dict[str, Any] = {"sources": ("narrativeqa", "essays"), "per_source": 4, "quick": True,
             "train_min": 2048} if args.quick else {"per_source": args.per_source}  # fmt: skip
    res = run_splitters(args.out, data_root=args.data, cache=args.cache, **extra)
    rows = [SplitRow(**r) for r in res["rows"]]
    print("\n".join(markdown(res["workload"], rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
