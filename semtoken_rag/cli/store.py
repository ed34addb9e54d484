"""``semtoken-rag store info DIR``: what a fingerprint store holds (and, with --check, verify)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from semtoken_rag.errors import StoreError


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``semtoken-rag store``."""
    sub = parser.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    info = sub.add_parser("info", help="print the statistics of a store")
    info.add_argument("dir", type=Path, help="store directory")
    info.add_argument("--check", action="store_true", help="verify every entry (slow)")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    """Print the store's statistics; exit status 1 when ``--check`` finds problems."""
    from semtoken_rag.store import FingerprintStore
    from semtoken_rag.store.store import DB_NAME

    if not (args.dir / DB_NAME).is_file():
        raise StoreError(f"no fingerprint store at {args.dir} (missing {DB_NAME})")
    with FingerprintStore(args.dir) as store:
        stats = store.stats()
        problems = store.verify() if args.check else []
    if args.json:
        print(json.dumps({**dataclasses.asdict(stats), "problems": problems}, indent=2))
    else:
        print(f"store {args.dir}")
        print(f"  entries          {stats.entries}")
        print(f"  vectors          {stats.vectors}")
        print(f"  payload bytes    {stats.payload_bytes}")
        print(f"  bytes on disk    {stats.bytes_on_disk}")
        if args.check:
            print(f"  check            {'ok' if not problems else f'{len(problems)} problems'}")
            for p in problems[:20]:
                print(f"    {p}")
    return 1 if problems else 0
