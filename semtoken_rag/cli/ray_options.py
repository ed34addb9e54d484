"""Command-line options shared by every ``--ray`` subcommand (``ingest``, the lab's ``eval``): one
place declares them, so both spell and document them the same way.  Importing it imports no Ray."""

from __future__ import annotations

import argparse

from semtoken_rag.cli.args import MAX_COUNT, integer, number

#: Options that mean something only with ``--ray`` (refused without it).
RAY_ONLY = ("actors", "cpus_per_actor", "gpus_per_actor", "connect_timeout")


def add_ray_options(
    parser: argparse.ArgumentParser, *, title: str, what: str, actors_default: int | None
) -> argparse._ArgumentGroup:
    """Add ``--ray [ADDRESS]``, ``--actors``, ``--cpus-per-actor``, ``--gpus-per-actor`` and
    ``--connect-timeout`` in a group titled ``title``; ``what`` the actors do is for the help
    ("encode", "run examples"), ``actors_default`` ``None`` means as many as the CPUs hold.

    Returns:
        The group, for the subcommand's own Ray options.
    """
    group = parser.add_argument_group(title)
    group.add_argument(
        "--ray", nargs="?", const="", default=None, metavar="ADDRESS",
        help=f"{what} on Ray actors; ADDRESS is HOST:PORT or ray://HOST:PORT of a cluster "
        "(alone: RAY_ADDRESS, else the `ray start` cluster of this machine, else a local one)",
    )  # fmt: skip
    group.add_argument(
        "--actors", type=integer("--actors"), default=actors_default,
        help=f"actors, each loading its models once, 1 to {MAX_COUNT:,}"
        + (f" (default {actors_default})" if actors_default else " (default: the CPUs)"),
    )  # fmt: skip
    for flag, low_open, default, text in (
        ("--cpus-per-actor", True, 1.0, "CPUs per actor, in (0, 1e6]"),
        ("--gpus-per-actor", False, 0.0, "GPUs per actor, in [0, 1e6] (0: CPU actors)"),
        ("--connect-timeout", True, 10.0, "seconds to wait for ADDRESS, in (0, 1e6]"),
    ):
        kind = number(flag, 0.0, 1e6, low_open=low_open)
        group.add_argument(flag, type=kind, default=default, help=text)
    parser.set_defaults(_ray_defaults={d: parser.get_default(d) for d in RAY_ONLY})
    return group


def check_ray_options(args: argparse.Namespace) -> None:
    """Refuse actor options given (differing from the default) without ``--ray``: ignored there.

    Raises:
        InvalidInputError: naming the first such option.
    """
    from semtoken_rag.errors import InvalidInputError

    if getattr(args, "ray", None) is not None:
        return
    for dest, default in getattr(args, "_ray_defaults", {}).items():
        if getattr(args, dest, default) != default:
            flag = "--" + dest.replace("_", "-")
            raise InvalidInputError(
                f"{flag} applies to Ray runs only: add --ray, or drop {flag} {getattr(args, dest)}"
            )
