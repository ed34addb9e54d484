"""The command line in shell pipelines and unusual environments (hostile review).

A reader that leaves early (``| head -1``), a full disk, Ctrl-C while a command is set up,
streams that are not UTF-8 (``PYTHONIOENCODING=ascii``, ``latin-1``, file names that are not
UTF-8), closed or terminal standard streams, stdin that is not text, and the exit statuses of
``--help``.  Most cases run ``main`` in this process with a fake encoder; the two whole
commands run in subprocesses (slow-marked), without ``PYTHONUNBUFFERED`` (a buffered stdout is
what a user's shell gives, and what failed at exit).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import semtoken_rag.cli.compress as compress_cli
import semtoken_rag.cli.store as store_cli
from semtoken_rag.cli.main import main
from semtoken_rag.compressor import Compressor
from semtoken_rag.errors import InvalidInputError
from tests.fakes import FakeEncoder, WhitespaceCounter

ROOT = Path(__file__).resolve().parents[1]
TEXT = "Le café crème à Tōkyō 東京 is naïve. The bay has tides that rise twice daily."


@pytest.fixture
def fake_compressor(monkeypatch: pytest.MonkeyPatch) -> None:
    """``compress`` with the fake encoder and word counter (no model)."""

    def make(config: Any, store: Any = None) -> Compressor:
        return Compressor(config, encoder=FakeEncoder(), counter=WhitespaceCounter(), store=store)

    monkeypatch.setattr(compress_cli, "Compressor", make)


@pytest.fixture
def closed_pipe() -> Iterator[Callable[[], io.TextIOWrapper]]:
    """Text streams on pipes whose reader has gone (what ``| head -1`` leaves behind)."""
    opened: list[io.TextIOWrapper] = []

    def make() -> io.TextIOWrapper:
        read, write = os.pipe()
        os.close(read)
        opened.append(open(write, "w", encoding="utf-8"))  # noqa: SIM115 (closed below)
        return opened[-1]

    yield make
    for stream in opened:
        with contextlib.suppress(OSError):
            stream.close()


def _action(monkeypatch: pytest.MonkeyPatch, run: Callable[[argparse.Namespace], int]) -> None:
    """Make ``store info`` run ``run`` (a command writing what the test needs, no store)."""
    monkeypatch.setitem(store_cli.ACTIONS, "info", run)


# -- a reader that leaves, a full disk ------------------------------------------------------
@pytest.mark.parametrize("size", [10, 100_000], ids=["buffered-until-exit", "written-in-run"])
def test_a_reader_of_the_output_that_left_is_exit_0_and_nothing_fails_at_exit(
    monkeypatch: pytest.MonkeyPatch,
    closed_pipe: Callable[[], io.TextIOWrapper],
    tmp_path: Path,
    size: int,
) -> None:
    """``semtoken-rag compress a.txt | head -1``: the output still buffered was flushed at exit
    and failed there ("Exception ignored ... BrokenPipeError", status 120), whether the pipe
    broke at exit (a short output) or during the command (caught, then buffered again)."""
    out = closed_pipe()
    monkeypatch.setattr(sys, "stdout", out)

    def run(args: argparse.Namespace) -> int:
        print("first line")
        print("y" * size)
        return 0

    _action(monkeypatch, run)
    assert main(["store", "info", str(tmp_path)]) == 0
    out.flush()  # what the interpreter does at exit: BrokenPipeError before the fix


def test_the_reader_of_stderr_gone_mid_run_is_not_success(
    monkeypatch: pytest.MonkeyPatch, closed_pipe: Callable[[], io.TextIOWrapper], tmp_path: Path
) -> None:
    """``semtoken-rag ingest docs --store s 2>&1 | head``: the progress bar's write to the
    closed pipe stopped the ingest half done; that was reported as success (0, or 120 from the
    exit flush).  It is 1, and nothing is left to fail at exit."""
    err = closed_pipe()
    monkeypatch.setattr(sys, "stderr", err)

    def run(args: argparse.Namespace) -> int:
        sys.stderr.write("fingerprints:  3%|" + "#" * 100_000 + "\r")  # a progress bar
        return 0

    _action(monkeypatch, run)
    assert main(["store", "info", str(tmp_path)]) == 1
    err.flush()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_output_to_a_full_disk_is_one_error_line_not_success(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``semtoken-rag compress a.txt > out`` on a full disk printed its summary, returned 0 and
    failed at exit ("Exception ignored ... OSError", status 120)."""
    with open("/dev/full", "w", encoding="utf-8") as out:
        monkeypatch.setattr(sys, "stdout", out)
        _action(monkeypatch, lambda args: print("the compressed text") or 0)
        assert main(["store", "info", str(tmp_path)]) == 1
        out.flush()  # nothing left to fail at exit
        monkeypatch.undo()
    err = capsys.readouterr().err.strip()
    assert err == "error: OSError: [Errno 28] No space left on device (-v for the traceback)"


# -- Ctrl-C ---------------------------------------------------------------------------------
def test_ctrl_c_while_the_command_is_set_up_is_one_line_and_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C while the subcommand's module was imported (parsing) was a traceback."""
    import semtoken_rag.cli.main as cli_main

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main.optional, "require", interrupted)
    try:
        code = main(["compress", "a.txt"])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped main (a traceback)")
    assert code == 130
    assert capsys.readouterr().err == "interrupted\n"


# -- streams that are not UTF-8 -------------------------------------------------------------
def _stream(encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding=encoding, errors="strict")


def _written(stream: io.TextIOWrapper) -> bytes:
    """The bytes written to a :func:`_stream`."""
    stream.flush()
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("encoding", "name"),
    [
        ("ascii", "café_東京.txt"),
        ("latin-1", "café_東京.txt"),
        ("utf-8", os.fsdecode(b"caf\xe9.txt")),  # a latin-1 file name on a UTF-8 system
    ],
    ids=["ascii", "latin-1", "utf-8-undecodable-name"],
)
def test_json_is_valid_utf8_and_loses_no_character_whatever_the_stream(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_compressor: None, encoding: str, name: str
) -> None:
    """Under ``PYTHONIOENCODING=ascii`` (or ``LC_ALL=C``) the text and the source became
    ``caf? cr?me``; under ``latin-1`` the document was latin-1, which a JSON reader (UTF-8,
    RFC 8259) refuses; a file name that is not UTF-8 came back as ``caf?.txt``, a file that
    does not exist."""
    path = tmp_path / name
    path.write_text(TEXT, encoding="utf-8")
    out = _stream(encoding)
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["compress", str(path), "--json", "--ratio", "1"]) == 0
    doc = json.loads(_written(out))
    assert doc["chunks"][0]["source"] == str(path)
    assert doc["chunks"][0]["text"] == TEXT


def test_text_and_errors_in_an_ascii_locale_are_escaped_not_replaced(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_compressor: None
) -> None:
    """``?`` for every character the locale lacks: compressed text silently changed, and an
    error naming ``nope_??.txt`` named no file.  Backslash escapes lose nothing and show that
    something was escaped; they are Python's own choice for stderr."""
    path = tmp_path / "a.txt"
    path.write_text(TEXT, encoding="utf-8")
    out, err = _stream("ascii"), _stream("ascii")
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["compress", str(path), "--ratio", "1"]) == 0
    assert main(["compress", str(tmp_path / "nope_東京.txt")]) == 2
    text = r"Le caf\xe9 cr\xe8me \xe0 T\u014dky\u014d \u6771\u4eac is na\xefve."
    assert text in _written(out).decode("ascii")
    assert rf"no such file: {tmp_path}/nope_\u6771\u4eac.txt" in _written(err).decode("ascii")


# -- closed or terminal standard streams ----------------------------------------------------
def test_a_closed_stdin_is_a_typed_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``semtoken-rag compress <&-`` was "AttributeError: 'NoneType' object has no attribute
    'buffer'", exit 1."""
    monkeypatch.setattr(sys, "stdin", None)
    assert main(["compress"]) == 2
    assert capsys.readouterr().err.startswith("error: stdin is closed: ")


def test_a_closed_stdout_is_refused_before_anything_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``semtoken-rag compress a.txt >&-`` compressed, discarded the result and returned 0
    (``--json``: an untyped ``AttributeError``, exit 1)."""
    path = tmp_path / "a.txt"
    path.write_text(TEXT, encoding="utf-8")

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the compressor was built")

    monkeypatch.setattr(compress_cli, "Compressor", no_model)
    monkeypatch.setattr(sys, "stdout", None)
    for extra in ([], ["--json"]):
        assert main(["compress", str(path), *extra]) == 2
        assert capsys.readouterr().err.startswith("error: stdout is closed: ")


class _Terminal(io.TextIOWrapper):
    def isatty(self) -> bool:
        return True


def test_reading_a_terminal_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fake_compressor: None
) -> None:
    """A bare ``semtoken-rag compress`` in a terminal waited for stdin without a word."""
    monkeypatch.setattr(sys, "stdin", _Terminal(io.BytesIO(TEXT.encode()), encoding="utf-8"))
    assert main(["compress", "--ratio", "1"]) == 0
    assert "reading text from the terminal until end of input (Ctrl-D)" in capsys.readouterr().err


# -- input that is not UTF-8 text -----------------------------------------------------------
#: UTF-16 text holding no NUL byte (each character's two bytes are non-zero).
UTF16_NO_NUL = ("東京都の天気は晴れ。大阪は雨。" * 3).encode("utf-16")


def test_a_utf16_file_without_a_nul_byte_is_refused_or_skipped(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    fake_compressor: None,
    tmp_path: Path,
) -> None:
    """UTF-16 Japanese text (a byte-order mark, no NUL byte) was read as UTF-8: ``compress``
    printed nothing with exit 0, ``ingest`` stored a garbage document.  Named, it is refused;
    found in a folder, it is skipped with a warning, as any file that is not text."""
    from semtoken_rag.cli.ingest import read_documents

    path = tmp_path / "tokyo.txt"
    path.write_bytes(UTF16_NO_NUL)
    assert main(["compress", str(path)]) == 2
    message = f"error: {path} is not UTF-8 text (it starts with a UTF-16 byte-order mark)"
    assert capsys.readouterr().err.startswith(message)
    args = argparse.Namespace(text_field="text", id_field=None, chunk_size=None, chunk_overlap=0)
    with pytest.raises(InvalidInputError, match="UTF-16 byte-order mark"):
        read_documents(path, args)
    with caplog.at_level("WARNING"):
        assert read_documents(path, args, found=True) == []
    assert f"skipped: {path} is not UTF-8 text" in caplog.text


# -- the exit statuses ----------------------------------------------------------------------
def test_help_documents_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    """Scripts branch on the status; ``--help`` did not say which means what."""
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for status in ("exit status: 0 done", "1 failed", "2 bad usage or input", "130 interrupted"):
        assert status in text, text


# -- whole commands in subprocesses ---------------------------------------------------------
def _env() -> dict[str, str]:
    """The user's environment: no ``PYTHONUNBUFFERED`` (this sandbox sets it; with it stdout
    holds nothing at exit and the failure there cannot show)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("PYTHONUNBUFFERED", None)
    return env


def _cli(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "semtoken_rag.cli.main", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=_env(),
    )


@pytest.mark.slow
def test_store_info_into_a_reader_gone_before_it_writes(tmp_path: Path) -> None:
    """``semtoken-rag store info DIR | true``: status 120 and "Exception ignored"."""
    from semtoken_rag.store import FingerprintStore
    from tests.store_helpers import fill, texts

    with FingerprintStore(tmp_path / "st", codec="float16") as store:
        fill(store, FakeEncoder(), texts(3))
    proc = _cli("store", "info", str(tmp_path / "st"))
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the interpreter has even started: the reader is gone
    err = proc.stderr.read().decode("utf-8", "replace")
    assert proc.wait(timeout=120) == 0, err
    assert err == ""


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--json"]], ids=["text", "json"])
def test_compress_into_a_reader_gone(tmp_path: Path, extra: list[str]) -> None:
    """``semtoken-rag compress a.txt --json | head -0``: status 120 and "Exception ignored
    ... BrokenPipeError" on stderr (``--json`` always: its output was written in pieces, so
    part of it was still buffered at exit)."""
    path = tmp_path / "a.txt"
    path.write_text(TEXT * 20, encoding="utf-8")
    proc = _cli("compress", str(path), "--ratio", "1", *extra)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode("utf-8", "replace")
    assert proc.wait(timeout=600) == 0, err[-2000:]
    assert "BrokenPipe" not in err and "Traceback" not in err and "Exception" not in err, err
