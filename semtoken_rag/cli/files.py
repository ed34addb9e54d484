"""The files named on the command line, opened or read with one typed error line for a folder,
a missing file or one the operating system refuses (never an ``OSError`` traceback)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from semtoken_rag.errors import InvalidInputError


def open_file(path: Path) -> BinaryIO:
    """``path`` opened for reading bytes.

    Raises:
        InvalidInputError: a folder, a missing file, or one that cannot be looked at or opened
            (a file inside a folder without search permission: ``is_dir`` raises
            ``PermissionError`` there, which was an untyped error, exit 1).
    """
    try:
        if path.is_dir():
            raise InvalidInputError(f"{path} is a directory, not a text file")
        if not path.exists():
            raise InvalidInputError(f"no such file: {path}")
        return path.open("rb")
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def read_text_file(path: Path) -> str:
    """A text file as UTF-8 (undecodable bytes replaced), or a typed error saying why not.

    Raises:
        InvalidInputError: the file cannot be read, or holds a NUL byte: a binary, compressed
            or UTF-16 file (a PDF or a ``.gz`` named on the command line was stored as
            replacement characters).
    """
    with open_file(path) as fh:
        try:
            data = fh.read()
        except OSError as exc:
            raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    nul = data.find(b"\0")
    if nul >= 0:
        raise InvalidInputError(
            f"{path} is not UTF-8 text (a NUL byte at offset {nul}: a binary, compressed or "
            "UTF-16 file); convert it to UTF-8 text first"
        )
    return data.decode("utf-8", errors="replace")
