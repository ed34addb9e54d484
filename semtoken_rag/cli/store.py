"""``semtoken-rag store info DIR``: inspect a fingerprint store.

``info`` opens the store read-only (never locks, moves, repairs or creates); a damaged store exits
1.  A store is derived data: another codec or an older format means ingesting into a new
directory, not migrating (docs/store.md, "Formats and codecs")."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from semtoken_rag.store.types import StoreStats


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``semtoken-rag store``."""
    sub = parser.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    info = sub.add_parser("info", help="print the statistics of a store (read-only)")
    info.add_argument("dir", type=Path, help="store directory")
    info.add_argument("--check", action="store_true", help="verify every entry (slow)")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the action."""
    return int(ACTIONS[args.store_command](args))


def _info(args: argparse.Namespace) -> int:
    """Print the store's statistics; exit 1 when it is damaged or ``--check`` finds problems."""
    from semtoken_rag.store import FingerprintStore, StoreDamagedError
    from semtoken_rag.store.db import VERIFY_MAX_BYTES
    from semtoken_rag.store.recovery import DB_NAME

    db_file = args.dir / DB_NAME
    quick = False
    with contextlib.suppress(OSError):  # unreadable: the store's open says why, in one line
        quick = db_file.is_file() and db_file.stat().st_size <= VERIFY_MAX_BYTES
    try:
        # SQLite's quick_check on open up to 1 GiB (the store's default); --check reads all.
        with FingerprintStore(args.dir, read_only=True) as store:
            stats = store.stats()
            problems = store.verify() if args.check else []
    except StoreDamagedError as exc:
        damaged = {"damaged": True, "problems": [str(exc)]}
        print(json.dumps(damaged, indent=2) if args.json else f"store {args.dir}: DAMAGED\n  {exc}")
        return 1
    if args.json:
        print(json.dumps({**dataclasses.asdict(stats), "problems": problems}, indent=2))
    else:
        print(f"store {args.dir}")
        print(f"  codec            {stats.codec}{'' if stats.trained else ' (not trained yet)'}")
        print(f"  documents        {stats.documents}")
        print(f"  words            {stats.words} ({_in_float16(stats)} in float16)")
        print(f"  payload bytes    {stats.payload_bytes}")
        print(f"  bytes on disk    {stats.bytes_on_disk}")
        print(f"  quick_check      {'ok' if quick else 'skipped (over 1 GiB: use --check)'}")
        if args.check:
            print(f"  check            {'ok' if not problems else f'{len(problems)} problems'}")
            for p in problems[:20]:
                print(f"    {p}")
    return 1 if problems else 0


def _in_float16(stats: StoreStats) -> int:
    """Words kept in float16: all of a ``float16`` store's (its ``staged_words`` are none)."""
    from semtoken_rag.store.codecs import STAGING

    return int(stats.words if stats.codec == STAGING.name else stats.staged_words)


ACTIONS = {"info": _info}
