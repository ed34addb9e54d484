"""Bad input to the Ray entry points: typed, one-line errors, fast, no hang, no cluster needed.

* Ray not installed (import failure simulated): one line naming ``semtoken-rag[ray]``, from the
  Python API, ``semtoken-rag ingest --ray`` and ``semtoken-rag eval --ray``.
* An address where nothing listens (a port just closed): :class:`RayConnectionError` within
  the connect timeout, instead of Ray's minutes of retries.
* Malformed addresses, bad :class:`RayOptions` / :class:`IngestOptions` and a loaded model
  object are refused before Ray is touched (checked with Ray made unimportable), and nothing
  is created on disk.
"""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from semtoken_rag.errors import InvalidInputError, MissingDependencyError

pytestmark = pytest.mark.ray

HINT = "pip install './semtoken-rag[ray]'"


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import ray`` fail as it does where the extra is not installed."""
    for name in [m for m in sys.modules if m == "ray" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)


@pytest.fixture
def no_ray_session() -> None:
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # an address is only used when this process has no Ray yet
        ray.shutdown()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_missing_ray_is_one_line_naming_the_extra(no_ray: None, tmp_path: Path) -> None:
    from semtoken_rag.distributed import ray_ingest

    with pytest.raises(MissingDependencyError) as info:
        ray_ingest(["some document"], tmp_path / "st")
    msg = str(info.value)
    assert HINT in msg and "\n" not in msg
    assert not (tmp_path / "st").exists()  # nothing was created before the error


def test_missing_ray_cli_ingest_and_eval(
    no_ray: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from semtoken_rag.cli.main import main

    doc = tmp_path / "doc.txt"
    doc.write_text("A short document to ingest.", encoding="utf-8")
    assert main(["ingest", str(doc), "--store", str(tmp_path / "st"), "--ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and HINT in err and "\n" not in err
    assert not (tmp_path / "st").exists()
    argv = ["eval", "--data", str(doc), "--out", str(tmp_path / "run"), "--ray"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and HINT in err and "\n" not in err


def test_unreachable_address_fails_fast(no_ray_session: None, tmp_path: Path) -> None:
    from semtoken_rag.distributed import RayConnectionError, RayOptions, ray_ingest

    address = f"127.0.0.1:{_closed_port()}"
    t0 = time.monotonic()
    with pytest.raises(RayConnectionError, match=address):
        ray_ingest(["some document"], tmp_path / "st",
                   ray=RayOptions(address=address, connect_timeout=3))  # fmt: skip
    assert time.monotonic() - t0 < 30  # bounded: no retry loop (Ray alone retries for minutes)
    assert not (tmp_path / "st").exists()


def test_unreachable_address_cli(
    no_ray_session: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from semtoken_rag.cli.main import main

    doc = tmp_path / "doc.txt"
    doc.write_text("A short document to ingest.", encoding="utf-8")
    address = f"ray://127.0.0.1:{_closed_port()}"
    argv = ["ingest", str(doc), "--store", str(tmp_path / "st"), "--ray", address]
    t0 = time.monotonic()
    assert main([*argv, "--connect-timeout", "3"]) == 2
    assert time.monotonic() - t0 < 30
    err = capsys.readouterr().err
    assert "cannot reach the Ray cluster" in err and address in err
    assert not (tmp_path / "st").exists()


@pytest.mark.parametrize("address", ["nohost", "host:port", ":6379", "ray://:70000", "h:0"])
def test_malformed_address(no_ray_session: None, address: str, tmp_path: Path) -> None:
    from semtoken_rag.distributed import RayOptions, ray_ingest

    with pytest.raises(InvalidInputError, match="is not HOST:PORT"):
        ray_ingest(["some document"], tmp_path / "st", ray=RayOptions(address=address))
    assert not (tmp_path / "st").exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"actors": 0}, "actors must be a positive integer"),
        ({"actors": True}, "actors must be a positive integer"),
        ({"actors": 1.5}, "actors must be a positive integer"),
        ({"gpus_per_actor": -1.0}, "gpus_per_actor must be a finite number >= 0"),
        ({"gpus_per_actor": math.nan}, "gpus_per_actor must be a finite number >= 0"),
        ({"cpus_per_actor": 0.0}, "cpus_per_actor must be a finite number > 0"),
        ({"cpus_per_actor": math.inf}, "cpus_per_actor must be a finite number > 0"),
        ({"cpus_per_actor": "1"}, "cpus_per_actor must be a finite number > 0"),
        ({"connect_timeout": 0}, "connect_timeout must be a finite number > 0"),
    ],
)
def test_bad_ray_options_refused_before_ray(
    no_ray: None, kwargs: dict[str, Any], match: str
) -> None:
    """Checked when the options are made (so even without Ray the message is about them)."""
    from semtoken_rag.distributed import RayOptions

    with pytest.raises(InvalidInputError, match=match):
        RayOptions(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"batch_size": 2.0}, "batch_size must be a positive integer"),
        ({"max_batch_words": 0}, "max_batch_words must be a positive integer"),
        ({"on_error": "ignore"}, "on_error must be one of"),
    ],
)
def test_bad_ingest_options_refused_before_ray(
    no_ray: None, kwargs: dict[str, Any], match: str
) -> None:
    from semtoken_rag.ingestion import IngestOptions

    with pytest.raises(InvalidInputError, match=match):
        IngestOptions(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ray": {"actors": 2}}, "ray must be a RayOptions"),
        ({"options": {"batch_size": 4}}, "options must be an IngestOptions"),
    ],
)
def test_options_of_another_type_refused_before_ray(
    no_ray: None, kwargs: dict[str, Any], match: str, tmp_path: Path
) -> None:
    """A plain dict where the options objects belong is refused at once (not after the
    workers loaded the model, and not as an AttributeError)."""
    from semtoken_rag.distributed import ray_ingest

    with pytest.raises(InvalidInputError, match=match):
        ray_ingest(["some document"], tmp_path / "st", **kwargs)
    assert not (tmp_path / "st").exists()


@pytest.mark.parametrize("old", ["actors", "batch_size", "on_error", "address", "ids"])
def test_removed_keywords_are_a_type_error(no_ray: None, old: str, tmp_path: Path) -> None:
    """The pre-RayOptions keywords are gone (not silently ignored)."""
    from semtoken_rag.distributed import ray_ingest

    with pytest.raises(TypeError, match=old):
        ray_ingest(["some document"], tmp_path / "st", **{old: 1})
    assert not (tmp_path / "st").exists()


def test_loaded_model_object_is_refused(no_ray: None, tmp_path: Path) -> None:
    from semtoken_rag import SemTokenConfig
    from semtoken_rag.distributed import ray_ingest
    from semtoken_rag.errors import ConfigError

    class Model:
        def forward(self) -> None: ...

    with pytest.raises(ConfigError, match="ships the encoder's id or path"):
        ray_ingest(["x"], tmp_path / "st", config=SemTokenConfig(encoder_model=Model()))
    assert not (tmp_path / "st").exists()


def test_distributed_package_imports_no_ray() -> None:
    code = (
        "import semtoken_rag.distributed, semtoken_rag.cli.ingest, sys; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'torch')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.strip() == "[]"
