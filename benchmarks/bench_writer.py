"""Writer breakdown (issue 25 point 2): raw PQ encode (FAISS / BLAS), fidelity guard, building
the documents, SQLite write, and the single-process insert against the raw encode; ``pq64``
and ``pq128x4`` (see :mod:`semtoken_lab.bench.writer`).

    python benchmarks/bench_writer.py --out bench_out/writer            # full (~400k words)
    python benchmarks/bench_writer.py --out bench_out/writer --quick    # smoke (~1 minute)

The real MiniLM fingerprints are cached under ``--cache`` (default ``OUT/cache``); pass the
same folder as ``bench_splitters.py --cache`` to encode the documents once for both.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    from semtoken_lab.bench.writer import CODECS, markdown, run_writer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="a few documents, one repeat")
    parser.add_argument("--data", type=Path, default=None, help="data root (../shared/data)")
    parser.add_argument("--cache", type=Path, default=None, help="fingerprint cache folder")
    parser.add_argument("--per-source", type=int, default=None, help="documents per source")
    parser.add_argument("--codecs", default=",".join(CODECS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64, help="documents per store.write")
    parser.add_argument("--threads", type=int, default=None, help="BLAS/torch/FAISS threads")
    args = parser.parse_args(argv)
    limiter = _limit_threads(args.threads) if args.threads else None
    quick: dict[str, Any] = {"sources": ("narrativeqa", "essays"), "per_source": 4, "repeats": 1,
             "train_min": 2048} if args.quick else {"repeats": args.repeats,
                                            "per_source": args.per_source}  # fmt: skip
    res = run_writer(
        args.out,
        data_root=args.data,
        codecs=args.codecs.split(","),
        batch=args.batch,
        cache=args.cache,
        **quick,
    )
    from semtoken_lab.bench.writer import WriterRow

    rows = [WriterRow(**r) for r in res["rows"]]
    print("\n".join(markdown(res["workload"], rows)))
    print(f"wrote {args.out / 'writer.json'} and {args.out / 'writer.md'}")
    del limiter
    return 0


def _limit_threads(n: int) -> object:
    """BLAS and torch (threadpoolctl) and FAISS's OpenMP to ``n`` threads; keep the result."""
    import faiss
    from semtoken_lab.bench.timing import limit_threads

    faiss.omp_set_num_threads(n)
    return limit_threads(n)


if __name__ == "__main__":
    raise SystemExit(main())
