"""Subcommands the lab adds to the ``semtoken-rag`` CLI (``ask``, ``eval``, ``bench``)."""
