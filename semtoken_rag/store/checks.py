"""Full consistency check of a store (``FingerprintStore.verify``, ``store info --check``).

Reads every row once in one snapshot: SQLite's own ``quick_check``, every codebook's digest,
every row's checksum against its codebook, and the counters in ``meta`` and ``codebooks``
against the rows.  Nothing is changed.
"""

from __future__ import annotations

import sqlite3

from semtoken_rag.store import db
from semtoken_rag.store.codebooks import Codebooks
from semtoken_rag.store.entries import checksum


def verify_database(conn: sqlite3.Connection, books: Codebooks) -> list[str]:
    """The problems found (empty when the store is consistent).

    Raises:
        sqlite3.DatabaseError: SQLite cannot read the file (the caller reports it).
    """
    problems: list[str] = []
    problem = db.health_problem(conn)
    if problem:
        problems.append(f"sqlite: {problem}")
    conn.execute("BEGIN")
    try:
        stored = db.load_codebooks(conn)
        for cid, book in stored.items():
            if not book.intact:
                problems.append(f"codebook {cid} ({book.codec}, dim {book.dim}) fails its digest")
        meta = db.read_meta(conn)
        count = vecs = payload = 0
        per_book: dict[int, list[int]] = {}
        for key, n, d, cb, csum, vec, spans, nb in conn.execute(
            "SELECT key, n_words, dim, codebook, checksum, vectors, spans, nbytes FROM entries"
        ):
            count += 1
            vecs += n
            payload += nb
            tally = per_book.setdefault(cb, [0, 0])
            tally[0] += 1
            tally[1] += n
            named = stored.get(cb)
            codec = books.codec(cb)
            if named is None:
                problems.append(f"entry {key} names codebook {cb}, which does not exist")
            elif checksum(key, n, d, named.sha256, vec, spans) != csum:
                problems.append(f"checksum mismatch: {key}")
            elif codec is not None and len(vec) != n * codec.code_size:
                problems.append(f"payload size of {key} disagrees with its codebook")
        for name, value in (("n_entries", count), ("n_vectors", vecs), ("payload_bytes", payload)):
            if meta[name] != value:
                problems.append(f"meta {name}={meta[name]} but rows say {value}")
        for cid, n_entries, n_vectors in conn.execute(
            "SELECT id, n_entries, n_vectors FROM codebooks"
        ):
            rows = per_book.get(cid, [0, 0])
            if [n_entries, n_vectors] != rows:
                problems.append(
                    f"codebook {cid} counts {n_entries}/{n_vectors} entries/vectors but rows "
                    f"say {rows[0]}/{rows[1]}"
                )
    finally:
        conn.execute("COMMIT")
    return problems
