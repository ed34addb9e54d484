"""Declared configuration knobs: default, documentation and validation in one place.

Why: a knob used to be defined in the config class, repeated with its default in the core's
parameter class, listed again in each framework adapter and validated by hand elsewhere.  Here a
knob is one :func:`knob` call in one config part (:mod:`semtoken_rag.config`,
:mod:`semtoken_rag.core.params`); validation, coercion of numpy scalars, the flat names of the
seed-compatible constructor and the adapters' pydantic fields are all derived from it.

Pure Python: no numpy, no framework (the core's parameter part uses it too).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from semtoken_rag.errors import ConfigError

_MISSING = dataclasses.MISSING


@dataclass(frozen=True)
class Spec:
    """How one knob is checked.

    Attributes:
        kind: ``float``, ``int``, ``bool``, ``str``, ``choice``, ``strings`` (tuple of str) or
            ``any`` (not checked here).
        lo, hi: Inclusive bounds of numbers (``None``: unbounded).
        lo_open, hi_open: Make the bound exclusive.
        optional: ``None`` is allowed.
        choices: Allowed values of a ``choice`` (or of each item of ``strings``).
        nonempty: A ``str`` (or each item of ``strings``) must not be empty or blank.
    """

    kind: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    optional: bool = False
    choices: tuple[Any, ...] = ()
    nonempty: bool = False

    def describe(self) -> str:
        """What a valid value is, for error messages."""
        if self.kind == "choice":
            text = f"one of {self.choices}"
        elif self.kind in ("float", "int"):
            noun = "an int" if self.kind == "int" else "a number"
            if self.lo is not None and self.hi is not None:
                left = "(" if self.lo_open else "["
                right = ")" if self.hi_open else "]"
                text = f"{noun} in {left}{_fmt(self.lo)}, {_fmt(self.hi)}{right}"
            elif self.lo is not None:
                text = f"{noun} {'>' if self.lo_open else '>='} {_fmt(self.lo)}"
            else:
                text = noun
        elif self.kind == "strings":
            noun = "non-empty strings" if self.nonempty else "strings"
            text = f"a sequence of {noun}" + (f" from {self.choices}" if self.choices else "")
        elif self.kind == "str":
            text = "a non-empty string" if self.nonempty else "a string"
        else:
            text = f"a {self.kind}"
        return text + (" or None" if self.optional else "")

    def check(self, name: str, value: Any) -> Any:
        """The value, coerced to its plain Python type (numpy scalars too).

        Raises:
            ConfigError: naming ``name`` and the bad value.
        """
        if value is None and self.optional:
            return None
        checker = _CHECKERS.get(self.kind)
        if checker is None:
            return value
        ok, coerced = checker(self, value)
        if not ok:
            raise ConfigError(f"{name} must be {self.describe()}, got {_show(value)}")
        return coerced


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _in_range(spec: Spec, x: float) -> bool:
    if math.isnan(x):
        return False
    if spec.lo is not None and (x <= spec.lo if spec.lo_open else x < spec.lo):
        return False
    return not (spec.hi is not None and (x >= spec.hi if spec.hi_open else x > spec.hi))


def _check_float(spec: Spec, v: Any) -> tuple[bool, Any]:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return False, v
    x = float(v)
    return _in_range(spec, x), x


def _check_int(spec: Spec, v: Any) -> tuple[bool, Any]:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        return False, v
    x = int(v)
    return _in_range(spec, x), x


def _check_bool(spec: Spec, v: Any) -> tuple[bool, Any]:
    if isinstance(v, bool):
        return True, v
    if isinstance(v, numbers.Integral) and type(v).__name__ == "bool_":  # numpy.bool_
        return True, bool(v)
    return False, v


def _check_str(spec: Spec, v: Any) -> tuple[bool, Any]:
    if not isinstance(v, str) or (spec.nonempty and not v.strip()):
        return False, v
    return True, v


def _check_choice(spec: Spec, v: Any) -> tuple[bool, Any]:
    try:
        return v in spec.choices, v
    except TypeError:  # unhashable junk
        return False, v


def _check_strings(spec: Spec, v: Any) -> tuple[bool, Any]:
    if isinstance(v, str):
        v = (v,)
    if isinstance(v, (bytes, bytearray)) or not isinstance(v, Sequence | set | frozenset):
        try:
            v = tuple(v)
        except TypeError:
            return False, v
    items = tuple(v)
    for item in items:
        if not isinstance(item, str) or (spec.nonempty and not item):
            return False, v
        if spec.choices and item not in spec.choices:
            return False, v
    return True, items


_CHECKERS: dict[str, Callable[[Spec, Any], tuple[bool, Any]]] = {
    "float": _check_float,
    "int": _check_int,
    "bool": _check_bool,
    "str": _check_str,
    "choice": _check_choice,
    "strings": _check_strings,
}


def knob(default: Any, doc: str, kind: str = "any", *, flat: str | None = None, **spec: Any) -> Any:
    """A dataclass field that is a documented, validated configuration knob.

    Args:
        default: The one default of this knob.
        doc: What it does and why (shown in adapters' field descriptions).
        kind: A :class:`Spec` kind.
        flat: Its name in the flat (seed-compatible) constructor when it differs from the field
            name (``encoder_model`` for ``EncoderConfig.model``).
        **spec: Other :class:`Spec` attributes (``lo``, ``hi``, ``choices``, ...).
    """
    return dataclasses.field(
        default=default, metadata={"doc": doc, "spec": Spec(kind, **spec), "flat": flat}
    )


def validate(obj: Any) -> None:
    """Check and coerce every knob of a frozen dataclass instance in place."""
    for f in dataclasses.fields(obj):
        spec = f.metadata.get("spec")
        if spec is None:
            continue
        name = f.metadata.get("flat") or f.name
        object.__setattr__(obj, f.name, spec.check(name, getattr(obj, f.name)))


def require(condition: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``condition`` (cross-field rules)."""
    if not condition:
        raise ConfigError(message)


def flat_names(part: type) -> dict[str, str]:
    """``{flat name: field name}`` of a config part dataclass."""
    return {
        (f.metadata.get("flat") or f.name): f.name
        for f in dataclasses.fields(part)
        if "spec" in f.metadata
    }


def knob_doc(part: type, field_name: str) -> str:
    """The documentation string of one knob."""
    for f in dataclasses.fields(part):
        if f.name == field_name:
            return str(f.metadata.get("doc", ""))
    raise KeyError(field_name)


def knob_default(part: type, field_name: str) -> Any:
    """The default of one knob."""
    for f in dataclasses.fields(part):
        if f.name == field_name:
            if f.default is _MISSING:
                raise KeyError(f"{field_name} has no default")
            return f.default
    raise KeyError(field_name)
