"""Hostile review of the ingestion paths, round 2: what broke, now refused or reported.

* A file inside a folder without search permission (``is_dir`` raises ``PermissionError``):
  ``ingest`` and ``compress`` printed an untyped ``PermissionError`` line, exit 1.
* A folder that cannot be listed: named, it was "no text to ingest"; found inside a named
  folder, its documents were missing from the store without a warning.
* A file named twice (or named and inside a named folder) was counted twice in the summary.
* ``--store`` naming a file was refused only after the encoder had loaded.
* ``ray_ingest`` of bad documents (a list holding an int, bytes) started Ray, loaded the
  encoder on a worker and created the store directory before refusing them.
* The warning of a failed batch spread a multi-line error over several log lines.

The permission cases are simulated (the tests run as root, which no permission stops): the
stat or listing call raises ``PermissionError`` exactly where the operating system does.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from semtoken_rag.cli.main import main
from semtoken_rag.errors import InvalidInputError, MissingDependencyError
from semtoken_rag.ingestion import IngestOptions, LocalRunner, ingest
from semtoken_rag.store import FingerprintStore
from tests.fakes import FakeEncoder


@pytest.fixture
def fake_encoder(monkeypatch: pytest.MonkeyPatch) -> list[FakeEncoder]:
    """The CLI's engine gets a :class:`FakeEncoder` (no model); the list holds those loaded."""
    import semtoken_rag.compressor as compressor

    loaded: list[FakeEncoder] = []

    def load(config: Any) -> FakeEncoder:
        loaded.append(FakeEncoder())
        return loaded[-1]

    monkeypatch.setattr(compressor, "load_encoder", load)
    return loaded


def _deny(monkeypatch: pytest.MonkeyPatch, target: Callable[..., Any], name: str, locked: Path,
          inside: bool) -> None:  # fmt: skip
    """Make ``target.name`` (a stat or listing call) raise ``PermissionError`` for ``locked``
    (``inside``: for the paths under it, as a folder without search permission does)."""
    real = getattr(target, name)

    def denied(*args: Any, **kwargs: Any) -> Any:
        path = Path(args[0])
        if (locked in path.parents) if inside else path == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, denied)


# -- files and folders that cannot be read ----------------------------------------------------
@pytest.mark.parametrize("command", ["ingest", "compress"])
def test_a_file_inside_a_folder_without_search_permission_is_one_typed_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:  # fmt: skip
    """Was ``error: PermissionError: [Errno 13] ... (-v for the traceback)``, exit 1."""
    locked = tmp_path / "locked"
    locked.mkdir()
    doc = locked / "a.txt"
    doc.write_text("Some words to read.", encoding="utf-8")
    _deny(monkeypatch, Path, "stat", locked, inside=True)
    argv = [command, str(doc)] + (["--store", str(tmp_path / "s")] if command == "ingest" else [])
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: cannot read {doc}: Permission denied"
    assert not (tmp_path / "s").exists()


def test_a_named_folder_that_cannot_be_listed_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was ``no text to ingest in DIR``: true, but not why."""
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.txt").write_text("Some words to read.", encoding="utf-8")
    _deny(monkeypatch, os, "scandir", locked, inside=False)
    capsys.readouterr()
    assert main(["ingest", str(locked), "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: cannot read folder {locked}: Permission denied"
    assert not (tmp_path / "s").exists()


def test_a_sub_folder_that_cannot_be_listed_is_skipped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An unreadable file found in a folder is skipped with a warning; an unreadable sub-folder
    was skipped silently (its documents missing from the store without a word)."""
    from semtoken_rag.cli.ingest import iter_files

    docs = tmp_path / "docs"
    (docs / "secret").mkdir(parents=True)
    (docs / "b.md").write_text("Readable.", encoding="utf-8")
    (docs / "secret" / "a.txt").write_text("Hidden.", encoding="utf-8")
    (docs / "z").mkdir()
    (docs / "z" / "c.txt").write_text("Readable too.", encoding="utf-8")
    _deny(monkeypatch, os, "scandir", docs / "secret", inside=False)
    with caplog.at_level(logging.WARNING, logger="semtoken_rag.cli.ingest"):
        assert list(iter_files([docs])) == [docs / "b.md", docs / "z" / "c.txt"]
    assert f"skipped: cannot read {docs / 'secret'}: Permission denied" in caplog.text


def test_a_folder_walk_keeps_the_order_and_the_link_rules(tmp_path: Path) -> None:
    """The walk lists what ``rglob`` listed: supported files (any case of suffix, links to
    files included), sorted; links to folders are not followed (a loop ends)."""
    from semtoken_rag.cli.ingest import iter_files

    docs = tmp_path / "docs"
    (docs / "b" / "c").mkdir(parents=True)
    for rel in ("b/c/z.txt", "b/a.MD", "a.jsonl", "b/skip.py", ".hidden.txt"):
        (docs / rel).write_text('{"text": "x"}', encoding="utf-8")
    (docs / "b" / "loop").symlink_to(docs)
    (docs / "link.txt").symlink_to(docs / "b" / "a.MD")
    (docs / "gone.txt").symlink_to(tmp_path / "nowhere")
    got = list(iter_files([docs]))
    assert got == sorted(docs / r for r in (".hidden.txt", "a.jsonl", "b/a.MD", "b/c/z.txt",
                                            "link.txt"))  # fmt: skip


# -- the summary and the options of `ingest` --------------------------------------------------
def test_a_file_named_twice_or_inside_a_named_folder_counts_once(
    tmp_path: Path, fake_encoder: list[FakeEncoder], capsys: pytest.CaptureFixture[str]
) -> None:
    """``ingest d d d/a.txt`` said ``5 files`` for two."""
    docs = tmp_path / "d"
    docs.mkdir()
    (docs / "a.txt").write_text("The first document has words.", encoding="utf-8")
    (docs / "b.txt").write_text("The second document has others.", encoding="utf-8")
    argv = ["ingest", str(docs), str(docs), str(docs / "a.txt"), "--store", str(tmp_path / "s"),
            "--codec", "float16", "--no-progress"]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 files, 2 documents (10 words encoded): 2 encoded, 0 already"), out


@pytest.mark.parametrize("where", ["{file}", "{file}/sub"])
def test_a_store_that_is_a_file_is_refused_before_the_encoder_loads(
    tmp_path: Path, fake_encoder: list[FakeEncoder], capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:  # fmt: skip
    """Was refused only once the encoder had loaded (with ``--ray``, once the workers had)."""
    doc = tmp_path / "a.txt"
    doc.write_text("Some words to store.", encoding="utf-8")
    store = where.format(file=doc)
    capsys.readouterr()
    assert main(["ingest", str(doc), "--store", store, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --store {store}") and "is a file, not a folder" in err, err
    assert fake_encoder == []  # nothing loaded
    assert doc.read_text(encoding="utf-8") == "Some words to store."


# -- the library ------------------------------------------------------------------------------
class _FailingBatches(FakeEncoder):
    """Fails any call of more than one text with a message of several lines."""

    def encode_texts(self, texts: Any) -> Any:
        if len(texts) > 1:
            raise RuntimeError("worker died\nTraceback (most recent call last):\n  File x")
        return super().encode_texts(texts)


def test_the_warning_of_a_failed_batch_is_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """A Ray or CUDA error's message holds a whole traceback: the warning spread it over many
    lines of the log (every other ingestion message names the error on one)."""
    with FingerprintStore(codec="float32") as store, caplog.at_level(logging.WARNING):
        report = ingest(["one text here", "another text there"], store,
                        LocalRunner(_FailingBatches()), IngestOptions(progress=False))  # fmt: skip
    assert report.encoded == 2 and report.failed == []
    warnings = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert warnings == [
        "batch of 2 failed (RuntimeError: worker died Traceback (most recent call last): File x);"
        " retrying document by document"
    ]


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import ray`` fail as it does where the extra is not installed."""
    for name in [m for m in sys.modules if m == "ray" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)


@pytest.mark.ray
@pytest.mark.parametrize(
    ("documents", "match"),
    [
        (["a text", 7], "document 1 is a int, not a str or a SourceDocument"),
        (b"bytes", "documents must be a str, a SourceDocument or an iterable of them"),
        ({"text": "a mapping"}, "documents must be a str, a SourceDocument or an iterable"),
        ((t for t in ["a text", None]), "document 1 is a NoneType"),
        (42, "documents must be a str, a SourceDocument or an iterable of them, got int"),
    ],
)
def test_ray_ingest_refuses_bad_documents_before_ray(
    no_ray: None, tmp_path: Path, documents: Any, match: str
) -> None:
    """They were refused only once Ray ran, a worker had loaded the encoder and the store
    directory was created (here, without Ray: the missing extra was the error)."""
    from semtoken_rag.distributed import ray_ingest

    with pytest.raises(InvalidInputError, match=match):
        ray_ingest(documents, tmp_path / "st")
    assert not (tmp_path / "st").exists()
    with pytest.raises(MissingDependencyError):  # good documents go on to Ray
        ray_ingest(["a text"], tmp_path / "st")


@pytest.mark.ray
@pytest.mark.slow
def test_ray_ingest_of_bad_documents_creates_no_store_and_a_generator_is_ingested(
    ray_local: Any, tmp_path: Path
) -> None:
    """On a real Ray: a bad item creates no store directory (it was created before the
    refusal); documents from a generator are ingested as a list of them is."""
    from semtoken_rag.distributed import ray_ingest

    with pytest.raises(InvalidInputError, match="document 1 is a int"):
        ray_ingest(["a text", 7], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    texts = ["The harbour lamp was lit at dusk.", "", "The ledger lists every party."]
    opts = IngestOptions(progress=False)
    report = ray_ingest((t for t in texts), tmp_path / "st", options=opts)
    assert (report.documents, report.encoded, report.blank, report.failed) == (2, 2, 1, [])
    with FingerprintStore(tmp_path / "st", read_only=True) as store:
        assert len(store) == 2
