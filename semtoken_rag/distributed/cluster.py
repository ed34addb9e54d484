"""Connecting to Ray: the lazy import, a bounded reachability check, and a session scope.

``ray.init`` on an address where nothing listens retries for minutes, so a typo in ``--ray ADDRESS``
would look like a hang: a TCP connect with a timeout first raises :class:`RayConnectionError`."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from semtoken_rag import optional
from semtoken_rag.errors import InvalidInputError, SemTokenError

logger = logging.getLogger(__name__)

#: What needs Ray, for the one-line install hint.
RAY_PURPOSE = "running on Ray (distributed ingestion / evaluation)"
#: Port of a ``ray://`` (Ray Client) address without one.
RAY_CLIENT_PORT = 10001
#: Addresses Ray resolves itself (environment, the local ``ray start`` file, a new instance).
SELF_RESOLVED = ("auto", "local")


class RayConnectionError(SemTokenError, ConnectionError):
    """The Ray cluster at the given address cannot be reached."""


def ray_module() -> ModuleType:
    """``import ray`` (with Ray Data), or :class:`MissingDependencyError` naming the extra."""
    ray = optional.require("ray", RAY_PURPOSE)
    optional.require("ray.data", RAY_PURPOSE)
    return ray


def split_address(address: str) -> tuple[str, int]:
    """``(host, port)`` of a Ray address (``host:port``, ``ray://host[:port]``, ``[v6]:port``).

    Raises:
        InvalidInputError: no host, or no valid port.
    """
    text = address.strip()
    if "://" in text:
        parts = urlsplit(text)
        try:
            port = parts.port or RAY_CLIENT_PORT
        except ValueError:
            port = -1
        host = parts.hostname or ""
    else:
        host, sep, port_text = text.rpartition(":")
        host = host.strip("[]")
        port = int(port_text) if sep and port_text.isdigit() else -1
    if not host or not 0 < port < 65536:
        raise InvalidInputError(
            f"Ray address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379) or ray://HOST:PORT"
        )
    return host, port


def check_reachable(address: str, timeout: float) -> None:
    """Fail fast when nothing accepts TCP connections at a Ray address.

    Raises:
        RayConnectionError: refused, unresolvable, or no answer within ``timeout`` seconds.
        InvalidInputError: the address is malformed.
    """
    host, port = split_address(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError) else exc
        raise RayConnectionError(
            f"cannot reach the Ray cluster at {address!r} ({reason}); is `ray start --head` "
            "running there and the port open?"
        ) from exc


@contextlib.contextmanager
def ray_session(
    address: str | None = None,
    *,
    connect_timeout: float = 10.0,
    init_kwargs: dict[str, Any] | None = None,
) -> Iterator[ModuleType]:
    """Use the Ray of this process (left running), or connect/start one for the block.

    ``address``: ``None`` (Ray's rule: ``RAY_ADDRESS``, else this machine's ``ray start`` cluster,
    else a new one), ``"auto"``, ``"local"``, or ``HOST:PORT`` / ``ray://HOST:PORT`` (first
    checked to answer within ``connect_timeout`` seconds).

    Raises:
        MissingDependencyError: Ray is not installed.
        RayConnectionError: the address does not answer.
    """
    ray = ray_module()
    if ray.is_initialized():
        if address:
            logger.warning("Ray is already initialised in this process: %r is not used", address)
        yield ray
        return
    if address is not None and address not in SELF_RESOLVED:
        check_reachable(address, connect_timeout)
    kwargs = {"include_dashboard": False, "log_to_driver": False, **(init_kwargs or {})}
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise RayConnectionError(f"cannot connect to Ray at {address!r}: {exc}") from exc
    logger.info("ray: connected (%s)", address or "local or RAY_ADDRESS")
    try:
        ctx = ray.data.DataContext.get_current()  # no Ray Data bars: the caller shows one
        ctx.enable_progress_bars = ctx.print_on_execution_start = False
        yield ray
    finally:
        ray.shutdown()


def fit_actors(ray: Any, actors: int, cpus: float, gpus: float) -> int:
    """The pool size the cluster can hold now (a pool larger than that would wait forever).

    Raises:
        InvalidInputError: not even one actor fits (e.g. GPUs asked on a CPU-only cluster).
    """
    have = ray.cluster_resources()
    fits = int(have.get("CPU", 0) // cpus) if cpus else actors
    if gpus:
        fits = min(fits, int(have.get("GPU", 0) // gpus))
    if fits < 1:
        raise InvalidInputError(
            f"the Ray cluster ({have.get('CPU', 0):g} CPUs, {have.get('GPU', 0):g} GPUs) cannot "
            f"hold one actor of {cpus:g} CPUs and {gpus:g} GPUs"
        )
    if fits < actors:
        logger.warning(
            "the cluster holds %d actors of this size, not %d: using %d", fits, actors, fits
        )
    return min(actors, fits)
