"""Files named on the command line, read with one typed error line (never an ``OSError`` traceback)
for a folder, a missing or refused file; their bytes decoded by one rule (:func:`decode_text`)."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import BinaryIO

from semtoken_rag.errors import InvalidInputError


def open_file(path: Path) -> BinaryIO:
    """``path`` opened for reading bytes.

    Raises:
        InvalidInputError: a folder, a missing file, or one that cannot be looked at or opened.
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
        InvalidInputError: the file cannot be read, or is not UTF-8 text (:func:`decode_text`).
    """
    with open_file(path) as fh:
        try:
            data = fh.read()
        except OSError as exc:
            raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return decode_text(data, str(path))


#: Byte-order marks of UTF-16 (and of UTF-32 little-endian, which starts like UTF-16's).
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def decode_text(data: bytes, name: str) -> str:
    """``data`` (a file's bytes, ``name`` in the message) as UTF-8, undecodable bytes replaced.

    Raises:
        InvalidInputError: not UTF-8 text: a NUL byte (a binary, compressed or UTF-16 file) or a
            UTF-16 byte-order mark (UTF-16 text without a NUL would decode as garbage).
    """
    nul = data.find(b"\0")
    if nul >= 0:
        why = f"a NUL byte at offset {nul}: a binary, compressed or UTF-16 file"
    elif data.startswith(UTF16_BOMS):
        why = "it starts with a UTF-16 byte-order mark"
    else:
        return data.decode("utf-8", errors="replace")
    raise InvalidInputError(f"{name} is not UTF-8 text ({why}); convert it to UTF-8 text first")
