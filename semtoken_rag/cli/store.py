"""``semtoken-rag store info|migrate DIR``: inspect a fingerprint store, or re-encode it.

``info`` opens the store read-only: it never takes the lock, moves, repairs or creates
anything.  A damaged store is reported as damaged with exit status 1 (and "check ok" is
printed only when ``--check`` found nothing).  ``migrate`` re-encodes in place, crash-safely
(see :mod:`semtoken_rag.store.migrate`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``semtoken-rag store``."""
    from semtoken_rag.store.codecs import CODECS

    sub = parser.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    info = sub.add_parser("info", help="print the statistics of a store (read-only)")
    info.add_argument("dir", type=Path, help="store directory")
    info.add_argument("--check", action="store_true", help="verify every entry (slow)")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    mig = sub.add_parser(
        "migrate", help="re-encode a store in place (format 1 -> 2, or another codec)"
    )
    mig.add_argument("dir", type=Path, help="store directory")
    mig.add_argument(
        "--codec",
        choices=sorted(CODECS),
        default=None,
        help="target codec (default: pq64 for a format-1 store, else the store's own)",
    )
    mig.add_argument("--no-vacuum", action="store_true", help="keep the freed pages in the file")
    mig.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the action."""
    return int(ACTIONS[args.store_command](args))


def _info(args: argparse.Namespace) -> int:
    """Print the store's statistics; exit 1 when it is damaged or ``--check`` finds problems."""
    from semtoken_rag.store import FingerprintStore, StoreDamagedError
    from semtoken_rag.store.store import DB_NAME, VERIFY_MAX_BYTES

    db_file = args.dir / DB_NAME
    quick = db_file.is_file() and db_file.stat().st_size <= VERIFY_MAX_BYTES
    try:
        # SQLite's quick_check on open up to 1 GiB (the store's default); --check reads all.
        with FingerprintStore(args.dir, read_only=True) as store:
            stats = store.stats()
            problems = store.verify() if args.check else []
    except StoreDamagedError as exc:
        return _report_damage(args, str(exc))
    if args.json:
        print(json.dumps({**dataclasses.asdict(stats), "problems": problems}, indent=2))
    else:
        print(f"store {args.dir}")
        print(f"  codec            {stats.codec}{'' if stats.trained else ' (not trained yet)'}")
        print(f"  entries          {stats.entries} ({stats.staged_entries} in float16)")
        print(f"  vectors          {stats.vectors}")
        print(f"  payload bytes    {stats.payload_bytes}")
        print(f"  bytes on disk    {stats.bytes_on_disk}")
        print(f"  quick_check      {'ok' if quick else 'skipped (over 1 GiB: use --check)'}")
        if args.check:
            print(f"  check            {'ok' if not problems else f'{len(problems)} problems'}")
            for p in problems[:20]:
                print(f"    {p}")
    return 1 if problems else 0


def _report_damage(args: argparse.Namespace, message: str) -> int:
    if args.json:
        print(json.dumps({"damaged": True, "problems": [message]}, indent=2))
    else:
        print(f"store {args.dir}: DAMAGED")
        print(f"  {message}")
    return 1


def _migrate(args: argparse.Namespace) -> int:
    """Re-encode the store; print what changed."""
    from tqdm.auto import tqdm

    from semtoken_rag.store.migrate import migrate

    bar: Any = tqdm(desc="migrate", unit="entry", disable=args.no_progress, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        report = migrate(args.dir, args.codec, vacuum=not args.no_vacuum, on_progress=progress)
    finally:
        bar.close()
    if report.entries < 0:
        print(f"store {args.dir} already uses codec {report.codec}: nothing to do")
        return 0
    print(
        f"migrated {args.dir}: format {report.source_format} ({report.source_codec}) -> "
        f"format 2 ({report.codec}), {report.entries} entries"
        + (f", {report.damaged} damaged entries dropped" if report.damaged else "")
        + (" (resumed)" if report.resumed else "")
        + f"; {report.bytes_before / 2**20:.1f} MiB -> {report.bytes_after / 2**20:.1f} MiB "
        f"in {report.seconds:.1f} s"
    )
    return 0


ACTIONS = {"info": _info, "migrate": _migrate}
