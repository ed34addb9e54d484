"""The command line's error contract, option by option (issue 24).

Every numeric option of every subcommand is parsed by a validated type from
:mod:`semtoken_rag.cli.args` (never a raw ``int``/``float``): a hostile value is one ``error:``
line naming the option and exit status 2; an edge value (0, -1, 10**12) is either refused the
same way or one the command accepts.  Parsing runs in this process (fast); a handful of whole
commands run in subprocesses (slow-marked).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from semtoken_rag.cli.main import SUBCOMMANDS, build_parser, main
from semtoken_rag.errors import InvalidInputError, SemTokenError

ROOT = Path(__file__).resolve().parents[1]

HOSTILE = ("nan", "inf", "-inf", "abc", "", "1e400")
EDGES = ("0", "-1", str(10**12))


# -- walking the parsers ------------------------------------------------------------------
def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
    """``(path, parser)`` of ``parser`` and of every nested subcommand (``store info``)."""
    yield path, parser
    sub = _subparsers(parser)
    if sub is not None:
        for name, child in sub.choices.items():
            yield from _walk(child, (*path, name))


def _commands() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    out = []
    for name in SUBCOMMANDS:
        top = build_parser([name])
        sub = _subparsers(top)
        assert sub is not None
        child = sub.choices[name]
        assert child.get_default("_missing") is None, child.get_default("_missing")
        out.extend(_walk(child, (name,)))
    return out


COMMANDS = _commands()


def _required(parser: argparse.ArgumentParser) -> list[str]:
    """The least argv the parser accepts: a dummy value for every required argument."""
    argv: list[str] = []
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            continue
        if not a.option_strings and a.nargs not in ("*", "?"):
            argv.append("x")
        elif a.option_strings and a.required:
            argv += [a.option_strings[-1], "x"]
    return argv


def _is_store(action: argparse.Action) -> bool:
    return type(action) is argparse._StoreAction


def _looks_numeric(default: object) -> bool:
    if isinstance(default, bool):
        return False
    if isinstance(default, (int, float)):
        return True
    return isinstance(default, str) and bool(default) and set(default) <= set("0123456789.,:eE+-")


def _numeric_options() -> list[tuple[tuple[str, ...], str]]:
    return [
        (path, a.option_strings[-1])
        for path, parser in COMMANDS
        for a in parser._actions
        if _is_store(a) and getattr(a.type, "semtoken_numeric", False)
    ]


NUMERIC = _numeric_options()


def _ids(cases: list[tuple[Any, ...]]) -> list[str]:
    return [" ".join((*c[0], *map(str, c[1:]))) for c in cases]


def _parser_of(path: tuple[str, ...]) -> argparse.ArgumentParser:
    return dict(COMMANDS)[path]


def _action(path: tuple[str, ...], option: str) -> argparse.Action:
    return next(a for a in _parser_of(path)._actions if option in a.option_strings)


def parse(argv: list[str]) -> argparse.Namespace:
    return build_parser(argv).parse_args(argv)


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str | None:
    """The one error line of parsing ``argv`` (exit status 2), or ``None`` when it parses."""
    capsys.readouterr()
    try:
        parse(argv)
    except SystemExit as exc:
        err = capsys.readouterr().err
        assert exc.code == 2, err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and "error:" in lines[0], err
        assert "Traceback" not in err
        return lines[0]
    return None


# -- (a) no raw numeric type anywhere -----------------------------------------------------
def test_every_subcommand_registers() -> None:
    assert {p[0] for p, _ in COMMANDS} == set(SUBCOMMANDS)
    assert len(NUMERIC) >= 40, NUMERIC


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_no_option_uses_a_raw_numeric_type(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    raw = [
        a.option_strings or a.dest
        for a in parser._actions
        if a.type in (int, float)
        or (
            _is_store(a)
            and a.type is None
            and a.option_strings
            and a.choices is None
            and _looks_numeric(a.default)
        )
    ]
    assert not raw, f"{' '.join(path)}: raw numeric options {raw}"


# -- (b) hostile values -------------------------------------------------------------------
HOSTILE_CASES = [(path, opt, value) for path, opt in NUMERIC for value in HOSTILE]


@pytest.mark.parametrize(("path", "option", "value"), HOSTILE_CASES, ids=_ids(HOSTILE_CASES))
def test_hostile_values_are_one_line_exit_2(
    path: tuple[str, ...], option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*path, f"{option}={value}", *_required(_parser_of(path))]
    line = refused(argv, capsys)
    if value == "" and getattr(_action(path, option).type, "allow_empty", False):
        assert line is None, line  # documented: "" means none
        assert getattr(parse(argv), _action(path, option).dest) == ()
        return
    assert line is not None, f"{argv} parsed"
    assert option in line, line


# -- (c) edge values: refused, or accepted by the command ---------------------------------
def _accept_compress(ns: argparse.Namespace) -> None:
    from semtoken_rag.inputs import check_budget

    check_budget(ns.ratio, ns.budget)


def _accept_demo(ns: argparse.Namespace) -> None:
    from semtoken_rag import SemTokenConfig

    SemTokenConfig(compression_ratio=ns.ratio)
    assert ns.width >= 0


def _accept_ingest(ns: argparse.Namespace) -> None:
    from semtoken_rag import SemTokenConfig
    from semtoken_rag.cli.ingest import check_options
    from semtoken_rag.distributed import RayOptions
    from semtoken_rag.ingestion import IngestOptions
    from semtoken_rag.store.types import check_max_bytes

    check_options(ns)
    IngestOptions(batch_size=ns.batch_size)
    if ns.window_batch is not None:
        SemTokenConfig(batch_size=ns.window_batch)
    check_max_bytes(ns.max_bytes)
    RayOptions(
        actors=ns.actors,
        gpus_per_actor=ns.gpus_per_actor,
        cpus_per_actor=ns.cpus_per_actor,
        connect_timeout=ns.connect_timeout,
    )


def _accept_eval(ns: argparse.Namespace) -> None:
    from semtoken_lab.cli.eval import run_config

    run_config(ns)


def _accept_ask(ns: argparse.Namespace) -> None:
    from semtoken_rag.inputs import check_budget

    check_budget(ns.ratio, ns.budget)
    kv = ns.kv_budget
    assert kv is None or (isinstance(kv, int) and kv >= 1) or 0.0 < kv <= 1.0


def _accept_kv(ns: argparse.Namespace) -> None:
    fractions = [*ns.budgets, *ns.prompt_ratios, *(x for pair in ns.combine for x in pair)]
    assert all(0.0 < f <= 1.0 for f in fractions)
    assert ns.max_answer_tokens >= 2


def _accept_bench(ns: argparse.Namespace) -> None:
    from semtoken_rag.inputs import check_budget

    check_budget(ns.ratio, None)
    for name in ("sizes", "e2e_sizes", "encoder_batch_sizes", "store_scale"):
        text = getattr(ns, name)
        assert text is None or all(int(x) >= 1 for x in text.split(",") if x.strip())


ACCEPT: dict[str, Callable[[argparse.Namespace], None]] = {
    "compress": _accept_compress,
    "demo": _accept_demo,
    "ingest": _accept_ingest,
    "eval": _accept_eval,
    "ask": _accept_ask,
    "kv-eval": _accept_kv,
    "bench": _accept_bench,
}
#: Extra argv that makes an option meaningful (rag-only and Ray-only options).
CONTEXT = {
    ("eval", "--top-k"): ["--mode", "rag"],
    ("eval", "--chunk-words"): ["--mode", "rag"],
    ("eval", "--chunk-overlap"): ["--mode", "rag"],
    ("ingest", "--chunk-overlap"): ["--chunk-size", "100"],
}
#: Options for which 10**12 is a sensible value.
HUGE_OK = {"--max-bytes"}
RAY_ONLY = {"--actors", "--cpus-per-actor", "--gpus-per-actor", "--connect-timeout"}
EDGE_CASES = [(path, opt, value) for path, opt in NUMERIC for value in EDGES]


@pytest.mark.parametrize(("path", "option", "value"), EDGE_CASES, ids=_ids(EDGE_CASES))
def test_edge_values_are_refused_or_accepted(
    path: tuple[str, ...], option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = list(CONTEXT.get((path[0], option), []))
    if option in RAY_ONLY:
        extra.append("--ray=")
    required = _required(_parser_of(path))
    if path[0] in ("eval", "kv-eval"):
        required += ["--data", "x"]
    argv = [*path, *extra, f"{option}={value}", *required]
    line = refused(argv, capsys)
    if line is not None:
        assert option in line, line
        return
    ns = parse(argv)
    got = getattr(ns, _action(path, option).dest)
    values = got if isinstance(got, tuple) else [got]
    if isinstance(got, str):  # validated text (bench lists): parsed later by the command
        values = [float(x) for x in got.split(",") if x.strip()]
    assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in values), got
    if value == str(10**12):  # every count is bounded well below, but a store size in bytes
        assert option in HUGE_OK, f"{argv} accepted 10**12"
    ACCEPT[path[0]](ns)


# -- combinations that would be ignored are refused ---------------------------------------
@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["eval", "--ratio", "0.5", "--budget", "100"], "not allowed with argument"),
        (["eval", "--top-k", "3"], "--mode rag only"),
        (["eval", "--chunk-overlap", "10"], "--mode rag only"),
        (["eval", "--mode", "rag", "--chunk-words", "50", "--chunk-overlap", "50"], "below"),
        (["eval", "--ray", "--workers", "4"], "use --actors"),
        (["eval", "--actors", "4"], "Ray runs only"),
        (["eval", "--methods", ","], "unknown method"),
        (["kv-eval", "--budgets", "auto"], "--budgets must be"),
        (["kv-eval", "--combine", "0.5:2"], "--combine must be"),
        (["kv-eval", "--combine", "0.5"], "--combine must be"),
        (["ask", "f", "-q", "q", "--kv-budget", "0"], "--kv-budget"),
        (["ask", "f", "-q", "q", "--kv-budget", "1.5"], "--kv-budget"),
        (["ask", "f", "-q", "q", "--ratio", "2.0"], "ratio must be"),
        (["bench", "--out", "o", "--sizes", "1000,99999999"], "--sizes must be"),
        (["bench", "--out", "o", "--store-scale", ",".join(["10"] * 9)], "at most 8"),
        (["ingest", "x", "--store", "s", "--chunk-overlap", "5"], "needs --chunk-size"),
        (["ingest", "x", "--store", "s", "--chunk-size", "5", "--chunk-overlap", "5"], "below"),
        (["ingest", "x", "--store", "s", "--gpus-per-actor", "1"], "Ray runs only"),
        (["compress", "--ratio", "0.5", "--budget", "3"], "not allowed with argument"),
    ],
)
def test_ignored_or_contradictory_options_are_one_line(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    full = argv + (["--out", "o", "--data", "x"] if argv[0] in ("eval", "kv-eval") else [])
    line = refused(full, capsys)
    if line is None:  # refused by the command (before anything loads), not by argparse
        ns = parse(full)
        if argv[0] == "eval":
            from semtoken_lab.cli.eval import run_config as check
        else:
            from semtoken_rag.cli.ingest import check_options as check
        with pytest.raises(InvalidInputError) as err:
            check(ns)
        line = str(err.value)
        assert "\n" not in line
    assert fragment in line, line


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["demo", "--heatmap", "{file}/x.png"], "is a file, not a folder"),
        (["demo", "--heatmap", "{dir}"], "is a folder, not a file"),
        (["demo", "--heatmap", "{dir}/heatmap.txt"], "must name a .png file"),
        (["demo", "--heatmap", "{dir}/heatmap"], "must name a .png file"),
        (["eval", "--data", "x", "--out", "{file}"], "is a file, not a folder"),
        (["eval", "--data", "x", "--out", "o", "--top-k", "3"], "--mode rag only"),
        (["eval", "--out", "o"], "--data is required"),
        (["kv-eval", "--data", "x", "--out", "{file}"], "is a file, not a folder"),
        (
            ["kv-eval", "--data", "x", "--out", "o", "--speed-steps", "4", "--per-doc", "2"],
            "do not apply to --speed-steps",
        ),
        (["ingest", "{file}", "--store", "{dir}/s", "--chunk-overlap", "5"], "needs --chunk-size"),
        (["ingest", "{dir}/nope", "--store", "{dir}/s"], "does not exist"),
        (["ingest", "{dir}", "--store", "{dir}/s", "--actors", "3"], "Ray runs only"),
    ],
)
def test_commands_refuse_before_loading_anything(
    argv: list[str], fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 with one line, in this process, before any model loads (the run is fast)."""
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("text", encoding="utf-8")
    argv = [a.format(file=a_file, dir=tmp_path) for a in argv]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0], lines[0]
    assert not (tmp_path / "s").exists()  # nothing created


def test_per_doc_works_without_limit(tmp_path: Path) -> None:
    """``--per-doc`` alone is not ignored: it caps the questions of every document."""
    from semtoken_lab.cli.eval import run_config
    from semtoken_lab.eval.data import load_examples

    rows = [
        {"id": f"{d}-{q}", "context": f"Document {d} text.", "question": f"q{q}?", "answers": ["a"]}
        for d in range(3)
        for q in range(4)
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = run_config(parse(["eval", "--data", str(data), "--out", "o", "--per-doc", "2"]))
    assert cfg.per_doc == 2 and cfg.limit is None
    examples = load_examples(cfg.data, fmt=cfg.fmt, limit=cfg.limit, per_doc=cfg.per_doc)
    assert [e.id for e in examples] == ["0-0", "0-1", "1-0", "1-1", "2-0", "2-1"]


def test_bench_list_options_keep_their_text_for_quick() -> None:
    from semtoken_lab.cli.bench import DEFAULTS

    ns = parse(["bench", "--out", "o"])
    assert ns.sizes == DEFAULTS["sizes"] and ns.e2e_ratios == "0.5,0.25"
    assert parse(["bench", "--out", "o", "--sizes", "300, 1000"]).sizes == "300, 1000"


def test_eval_defaults_reach_the_run_config() -> None:
    from semtoken_lab.cli.eval import DEFAULT_METHODS, run_config

    cfg = run_config(parse(["eval", "--out", "o", "--data", "x"]))
    assert cfg.methods == DEFAULT_METHODS and cfg.ratios == (0.5,) and cfg.workers == 1
    rag = run_config(
        parse(["eval", "--out", "o", "--data", "x", "--mode", "rag", "--chunk-words", "40"])
    )
    assert (rag.chunk_size, rag.chunk_overlap, rag.top_k) == (40, 20, 5)
    auto = run_config(parse(["eval", "--out", "o", "--data", "x", "--ratio", "auto,0.25"]))
    assert auto.ratios == (-1.0, 0.25)


# -- the one-line rule of main() ----------------------------------------------------------
class _Boom(RuntimeError):
    pass


def test_untyped_errors_print_their_first_line_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import semtoken_rag.cli.store as store_cli

    def boom(args: argparse.Namespace) -> int:
        raise _Boom(
            "actor died\nTraceback (most recent call last):\n  File 'x', line 1\nValueError"
        )

    monkeypatch.setitem(store_cli.ACTIONS, "info", boom)
    assert main(["store", "info", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: _Boom: actor died (-v for the traceback)", err

    def typed(args: argparse.Namespace) -> int:
        raise InvalidInputError("bad value 3")

    monkeypatch.setitem(store_cli.ACTIONS, "info", typed)
    assert main(["store", "info", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: bad value 3"


@pytest.mark.parametrize("where", ["a file", "an empty folder", "missing"])
def test_store_info_on_what_is_not_a_store(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "target"
    if where == "a file":
        target.write_bytes(os.urandom(256))
    elif where == "an empty folder":
        target.mkdir()
    code = main(["store", "info", str(target)])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert not any(os.scandir(target)) if target.is_dir() else True  # read-only: nothing made


@pytest.mark.parametrize("codec", ["float16", "pq64"])
def test_store_info_counts_the_words_kept_in_float16(
    codec: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every word of a float16 store is in float16 (it printed "N words (0 in float16)"); a
    pq64 store too small to train keeps all of its words in float16 until it trains."""
    if codec == "pq64":
        pytest.importorskip("faiss")
    from semtoken_rag.store import FingerprintStore
    from tests.fakes import FakeEncoder
    from tests.store_helpers import fill, texts

    with FingerprintStore(tmp_path / "st", codec=codec) as store:
        fill(store, FakeEncoder(), texts(3))
        words = store.stats().words
    assert main(["store", "info", str(tmp_path / "st")]) == 0
    out = capsys.readouterr().out
    assert f"words            {words} ({words} in float16)" in out, out


# -- whole commands in subprocesses -------------------------------------------------------
def cli(*args: str, stdin: bytes = b"", cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "semtoken_rag.cli.main", *args],
        input=stdin,
        capture_output=True,
        timeout=600,
        check=False,
        cwd=cwd,
        env=env,
    )


def one_line_error(proc: subprocess.CompletedProcess[bytes], code: int | None = None) -> str:
    err = proc.stderr.decode("utf-8", "replace").strip()
    assert proc.returncode != 0, err
    if code is not None:
        assert proc.returncode == code, err
    lines = [ln for ln in err.splitlines() if ln.strip() and "Loading weights" not in ln]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.slow
def test_compress_of_empty_stdin_is_refused() -> None:
    assert "nothing to compress" in one_line_error(cli("compress"), 2)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["compress", "ask"])
def test_ratio_above_one_is_exit_2(command: str) -> None:
    argv = [command, "--ratio", "2.0", "README.md"] + (["-q", "Why?"] if command == "ask" else [])
    assert "ratio must be" in one_line_error(cli(*argv), 2)


@pytest.mark.slow
def test_ingest_hostile_inputs(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    store = tmp_path / "store"
    assert "no text to ingest" in one_line_error(cli("ingest", str(empty), "--store", str(store)))
    assert not store.exists()
    line = one_line_error(cli("ingest", "README.md", "--store", str(store), "--batch-size", "0"), 2)
    assert "--batch-size" in line
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(b'{"text": "caf\xe9 cr\xe8me and more words here. Another sentence."}\n')
    proc = cli("ingest", str(bad), "--store", str(store), "--no-progress")
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, err
    assert "UnicodeDecodeError" not in err
    assert "1 documents" in proc.stdout.decode()


@pytest.mark.slow
def test_store_info_on_a_random_file_in_a_subprocess(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(4096))
    assert one_line_error(cli("store", "info", str(junk)), 2).startswith("error: ")
    proc = cli("store", "info", "--json", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert json.loads(proc.stdout or b"null") is None


def test_semtoken_error_is_the_base() -> None:
    assert issubclass(InvalidInputError, SemTokenError)


def test_ingest_reads_only_files_of_a_folder_and_names_a_missing_id_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder's sub-folder named like a text file and a dangling link are not documents; a
    JSONL record without the ``--id-field`` names that field (exit 2, before any model loads)."""
    from semtoken_rag.cli.ingest import iter_files

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").mkdir()
    (tmp_path / "docs" / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    (tmp_path / "docs" / "a.txt").write_text("Some text.", encoding="utf-8")
    assert list(iter_files([tmp_path / "docs"])) == [tmp_path / "docs" / "a.txt"]
    rows = tmp_path / "r.jsonl"
    rows.write_text('{"text": "one", "id": "a"}\n{"text": "two"}\n', encoding="utf-8")
    capsys.readouterr()
    assert main(["ingest", str(rows), "--store", str(tmp_path / "s"), "--id-field", "id"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {rows}:2: no 'id' field (--id-field)"
    assert not (tmp_path / "s").exists()
    rows.write_text('{"text": "one", "id": null}\n', encoding="utf-8")  # was named "None"
    assert main(["ingest", str(rows), "--store", str(tmp_path / "s"), "--id-field", "id"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {rows}:1: 'id' is null (--id-field)"
    assert main(["ingest", "-", "--store", str(tmp_path / "s")]) == 2  # was "- does not exist"
    assert (
        capsys.readouterr().err.strip() == "error: ingest reads files and folders, not stdin ('-')"
    )
    assert not (tmp_path / "s").exists()


def test_ingest_reads_a_jsonl_file_that_starts_with_a_byte_order_mark(tmp_path: Path) -> None:
    from semtoken_rag.cli.ingest import read_documents

    rows = tmp_path / "bom.jsonl"
    rows.write_bytes(b'\xef\xbb\xbf{"text": "one", "id": "a"}\n{"text": "two", "id": "b"}\n')
    args = argparse.Namespace(text_field="text", id_field="id", chunk_size=None, chunk_overlap=0)
    docs = read_documents(rows, args)
    assert [(d.text, d.names) for d in docs] == [("one", ("a",)), ("two", ("b",))]


@pytest.mark.parametrize(
    ("value", "error"),
    [("[" * 100_000 + "]" * 100_000, "RecursionError"), ("1" * 5000, "ValueError")],
)
def test_ingest_names_a_jsonl_line_too_deep_or_too_long_for_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, error: str
) -> None:
    """Nesting beyond Python's recursion limit and integers beyond its 4,300 digits are bad
    lines like any other: one ``error:`` line naming file and line, exit 2 (they were raw
    exceptions, exit 1)."""
    rows = tmp_path / "r.jsonl"
    rows.write_text('{"text": "one"}\n{"text": "two", "x": ' + value + "}\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["ingest", str(rows), "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {rows}:2: expected a JSON object") and error in err
    assert "\n" not in err and not (tmp_path / "s").exists()


@pytest.mark.parametrize("command", ["ingest", "compress"])
@pytest.mark.parametrize("content", [b"\x1f\x8b\x08\x00gzip", "UTF-16 text".encode("utf-16")])
def test_a_binary_or_utf16_file_named_on_the_command_line_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, content: bytes
) -> None:
    """A file named explicitly is read as text whatever its suffix: a ``.gz`` or a PDF was
    stored as replacement characters.  A NUL byte names it: one ``error:`` line, exit 2,
    before any model loads or any store is created."""
    bad = tmp_path / "report.txt.gz"
    bad.write_bytes(content)
    argv = [command, str(bad)] + (["--store", str(tmp_path / "s")] if command == "ingest" else [])
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad} is not UTF-8 text (a NUL byte at offset ")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--data", "x.jsonl", "--out", "run"],
        ["ask", "a.txt", "-q", "Why?"],
        ["bench", "--out", "b"],
        ["eval", "--help"],
        ["eval"],
    ],
)
def test_a_lab_command_without_the_lab_answers_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """Given any of its options, a lab command without the lab said "unrecognized arguments"
    (its options are the lab's); only the bare command gave the documented hint."""
    for name in [m for m in sys.modules if m.split(".")[0] == "semtoken_lab"] + ["semtoken_lab"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: `semtoken-rag {argv[0]}` needs the 'semtoken_lab' package")
    with pytest.raises(SystemExit) as info:  # other commands still refuse unknown options
        main(["compress", "--no-such-option"])
    assert info.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--kv-policy", "snapkv"], "error: --kv-policy snapkv needs --kv-budget (what it bounds)"),
        (["--kv-policy", "h2o", "--kv-budget", "0.5"], "error: unknown --kv-policy 'h2o'; choose"),
    ],
)
def test_ask_refuses_a_kv_policy_it_would_ignore_or_not_know_before_loading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    """Without ``--kv-budget`` the policy was ignored (an answer, exit 0); an unknown one was
    refused only after the reader loaded."""
    doc = tmp_path / "a.txt"
    doc.write_text("Some text.", encoding="utf-8")
    capsys.readouterr()
    assert main(["ask", str(doc), "-q", "Why?", *extra]) == 2
    assert capsys.readouterr().err.strip().startswith(message)


def test_ingest_names_what_a_path_that_is_not_a_file_is(tmp_path: Path) -> None:
    """A looping link and a pipe were reported as paths that "do not exist"."""
    import os

    from semtoken_rag.cli.ingest import iter_files

    loop = tmp_path / "loop.txt"
    loop.symlink_to(loop)
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    for path, words in [(loop, "broken or looping symbolic link"), (fifo, "not a regular file"),
                        (tmp_path / "gone.txt", "does not exist")]:  # fmt: skip
        with pytest.raises(InvalidInputError, match=words):
            list(iter_files([path]))


def test_ingest_skips_a_binary_file_found_in_a_folder_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One UTF-16 export in a folder stopped the whole ingest (exit 2); found in a folder it is
    skipped with a warning, the others are read (named on the command line, it is refused)."""
    from semtoken_rag.cli.ingest import read_documents

    (tmp_path / "docs").mkdir()
    good, bad = tmp_path / "docs" / "a.txt", tmp_path / "docs" / "b.txt"
    good.write_text("Some text.", encoding="utf-8")
    bad.write_bytes("UTF-16 text".encode("utf-16"))
    args = argparse.Namespace(text_field="text", id_field=None, chunk_size=None, chunk_overlap=0)
    with caplog.at_level("WARNING"):
        assert read_documents(bad, args, found=True) == []
    assert f"skipped: {bad} is not UTF-8 text" in caplog.text
    assert [d.text for d in read_documents(good, args, found=True)] == ["Some text."]
    with pytest.raises(InvalidInputError, match="is not UTF-8 text"):
        read_documents(bad, args)


@pytest.mark.slow
def test_ingest_of_a_folder_with_a_utf16_file_ingests_the_others(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("A small document about the bay and its tides.", encoding="utf-8")
    (docs / "b.txt").write_bytes("An export saved as UTF-16.".encode("utf-16"))
    proc = cli("ingest", str(docs), "--store", str(tmp_path / "s"), "--codec", "float16",
               "--no-progress")  # fmt: skip
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, err
    assert f"skipped: {docs / 'b.txt'} is not UTF-8 text" in err
    assert "2 files, 1 documents" in proc.stdout.decode()
