"""Typed errors: every failure a user can cause surfaces as one of these, with a message."""

from __future__ import annotations


class SemTokenError(Exception):
    """Base class of every error raised on purpose by semtoken-rag."""


class ConfigError(SemTokenError, ValueError):
    """A configuration value is out of range or of the wrong kind."""


class InvalidInputError(SemTokenError, ValueError):
    """An input (text, query, budget) is not something the engine can compress."""


class ModelNotFoundError(SemTokenError, FileNotFoundError):
    """A model could not be located on disk; the message names the pip command that fixes it."""


class StoreError(SemTokenError):
    """The fingerprint store cannot be used (wrong format version, unusable directory)."""


class MissingDependencyError(SemTokenError, ImportError):
    """An optional package is not installed; the message names the ``pip install`` to run."""


class NonFiniteFingerprintsError(InvalidInputError):
    """An encoder produced NaN or infinite fingerprints (an overflow in float16, a broken custom
    encoder): nothing is compressed from them, and they are never stored."""

    #: What the engine's message ends with: the usual cause and its remedy.
    HINT = (
        "an overflow in float16 does this: load the encoder in float32 "
        "(encoder_dtype='float32', CLI --encoder-dtype float32)"
    )


class ForceKeepTimeoutError(InvalidInputError):
    """A force-keep pattern took longer than ``force_keep_timeout`` on a text (it is named)."""
