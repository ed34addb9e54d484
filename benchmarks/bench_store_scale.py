"""The fingerprint store at corpus scale (issue 25 point 4); the same measurement as
``semtoken-rag bench --store-scale N[,N...]`` (see :mod:`semtoken_lab.bench.store_scale`),
with the options of a store-only run.

    python benchmarks/bench_store_scale.py --out bench_out/store_scale --sizes 10000,100000,1000000
    python benchmarks/bench_store_scale.py --out bench_out/store_scale --quick        # smoke
    # experiment: bigger write transactions and the writer PRAGMAs the report discusses
    python benchmarks/bench_store_scale.py --out bench_out/store_scale_b1024 --sizes 100000 \\
        --batch 1024 --pragmas cache_size=-262144,wal_autocheckpoint=100000
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _pragmas(text: str) -> dict[str, int]:
    pairs = (p.split("=", 1) for p in text.split(",") if p.strip())
    return {k.strip(): int(v) for k, v in pairs}


def main(argv: list[str] | None = None) -> int:
    from semtoken_lab.bench.store_scale import BATCH, run_store_scale

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="documents per store")
    parser.add_argument("--quick", action="store_true", help="300 and 1,000 documents (smoke)")
    parser.add_argument("--codec", default=None, help="store codec (default: the library's)")
    parser.add_argument("--pool-chunks", type=int, default=240, help="chunks encoded by MiniLM")
    parser.add_argument("--batch", type=int, default=BATCH, help="documents per store.write")
    parser.add_argument("--pragmas", default="", help="experiment: NAME=VALUE,... on the writer")
    parser.add_argument(
        "--distinct-texts", action="store_true", help="tag recycled copies: distinct shingles"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the writer's writes")
    parser.add_argument("--data", type=Path, default=None, help="data root (../shared/data)")
    parser.add_argument("--work", type=Path, default=None, help="folder of the temporary stores")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    extra: dict[str, int] = {}
    if args.quick:
        sizes, extra = [300, 1000], {"pool_chunks": 20, "train_min": 4096}
    run_store_scale(
        sizes, args.out, codec=args.codec, data_root=args.data, work=args.work,
        batch=args.batch, profile=args.profile, pragmas=_pragmas(args.pragmas),
        distinct=args.distinct_texts,
        **{"pool_chunks": args.pool_chunks, **extra},
    )  # fmt: skip
    print((args.out / "store_scale.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
