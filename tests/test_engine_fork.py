"""The engine used across ``fork`` (gunicorn ``--preload``, a fork ``Pool`` made by a web app):
only the forking thread exists in the child, so what the parent's other threads held there
(libgomp's thread pool, a lock mid-call) must not be waited for.

Children report through a pipe and end with ``os._exit``, never returning into pytest; the
parent kills a child that hangs.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

from semtoken_rag import Compressor, SemTokenConfig
from tests.fakes import FakeEncoder, WhitespaceCounter
from tests.store_helpers import run_in_child

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

QUESTION = "Which ferry was cancelled?"
NEW_TEXT = "A text nobody encoded before: the ferry to Bergen was cancelled at noon."


def _compressed(comp: Compressor) -> str:
    """Compress a text no process has encoded (a miss: the encoder runs); what became of it."""
    result = comp.compress([NEW_TEXT], QUESTION, ratio=0.5)
    return "compressed" if 0 < result.kept_tokens < result.original_tokens else repr(result)


def _paused(inside: threading.Event, leave: threading.Event, then: Any) -> Any:
    """``then`` called after a pause in the parent (signalled by ``inside``) until ``leave``."""
    parent = os.getpid()

    def call(*args: Any, **kwargs: Any) -> Any:
        if os.getpid() == parent:
            inside.set()
            leave.wait(30)
        return then(*args, **kwargs)

    return call


def test_a_fork_while_a_thread_builds_the_encoder_leaves_the_child_a_usable_engine(monkeypatch):
    """A thread of the parent building the encoder (a server's first request) holds the
    engine's build lock when another thread forks: the child's first compress waited for ever
    for a lock nobody there holds.  The engine's locks are new in a forked child."""
    from semtoken_rag import compressor

    inside, leave = threading.Event(), threading.Event()
    monkeypatch.setattr(compressor, "load_encoder", _paused(inside, leave, lambda _: FakeEncoder()))
    comp = Compressor(SemTokenConfig(), counter=WhitespaceCounter())
    thread = threading.Thread(target=lambda: comp.encoder)
    thread.start()
    try:
        assert inside.wait(30)
        outcome = run_in_child(lambda: _compressed(comp))
    finally:
        leave.set()
        thread.join()
    assert outcome == "compressed"
    assert isinstance(comp.encoder, FakeEncoder)  # the parent's build finished as it was


@pytest.mark.slow
def test_a_forked_child_encodes_after_the_parent_ran_the_encoder(real_compressor):
    """A preloaded web app that warmed its engine up: once the parent had run the encoder on
    two torch threads, a worker's first compress of a new text waited for ever (libgomp's
    threads do not survive a fork)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # a parallel region with a second thread, on any machine
    try:
        real_compressor.compress(["The river rose overnight. The bridge shut."], "When?", ratio=0.5)

        def body() -> str:
            return f"{torch.get_num_threads()} {_compressed(real_compressor)}"

        assert run_in_child(body, timeout=60) == "1 compressed"
        assert torch.get_num_threads() == 2  # the parent's own setting is left alone
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_a_fork_while_a_thread_is_inside_the_encoder_leaves_the_child_an_encoder(
    real_compressor, monkeypatch
):
    """A thread of the parent mid-forward holds the encoder's lock when another thread forks:
    the child's first compress of a new text waited for ever."""
    encoder = real_compressor.encoder
    inside, leave = threading.Event(), threading.Event()
    model = encoder.model

    class Paused:  # the parent's thread stops inside the forward, under the encoder's lock
        __call__ = staticmethod(_paused(inside, leave, model))

        def __getattr__(self, name: str) -> Any:
            return getattr(model, name)

    monkeypatch.setattr(encoder, "model", Paused())
    thread = threading.Thread(target=encoder.encode_texts, args=(["the parent encodes this"],))
    thread.start()
    try:
        assert inside.wait(30)
        outcome = run_in_child(lambda: _compressed(real_compressor), timeout=60)
    finally:
        leave.set()
        thread.join()
    assert outcome == "compressed"
