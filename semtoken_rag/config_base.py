"""The building blocks of the configuration models: value types, a frozen base, typed errors.

Why pydantic: a knob is one annotated field that type checkers, IDEs, API docs and the adapters
all read.  Added here once: value types that make numpy scalars plain and refuse a bool for a
number and NaN or infinity anywhere (lax pydantic turns ``True`` into ``1.0``), and
:func:`config_error`, which makes a ``ValidationError`` one
:class:`~semtoken_rag.errors.ConfigError` line naming the field and the bad value.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import numpy as np
from annotated_types import Ge, Gt, Le, Lt
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Strict,
    StringConstraints,
    ValidationError,
)
from pydantic.fields import FieldInfo

from semtoken_rag.errors import ConfigError

if TYPE_CHECKING:  # typing.Self is Python 3.11+; the package supports 3.10
    from typing_extensions import Self

P = TypeVar("P", bound="ConfigPart")


@dataclass(frozen=True)
class Says:
    """What a valid value is, in words, where the type does not say it (``Annotated`` metadata)."""

    text: str


def _number(value: Any) -> float:
    # Real numbers only: a bool is an int to Python but never a meant threshold or ratio.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError("not a number")
    try:
        x = float(value)
    except OverflowError:
        raise ValueError("not finite") from None
    if not math.isfinite(x):
        raise ValueError("not finite")
    return x


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError("not an int")
    return int(value)


def _flag(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError("not a bool")


def _as_tuple(value: Any) -> Any:
    """A single string, a list, a set or any iterable of items becomes a tuple (hashable)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (bytes, bytearray, tuple)):
        return value
    try:
        return tuple(value)
    except TypeError:
        return value  # not iterable: the tuple type refuses it, naming the field


#: A finite real number (numpy scalars accepted and made ``float``; bool, NaN, inf refused).
Number = Annotated[float, BeforeValidator(_number)]
#: An integer (numpy integers accepted and made ``int``; bool and floats refused).
Integer = Annotated[int, BeforeValidator(_integer)]
#: A bool (``numpy.bool_`` accepted); 0, 1 and strings refused.
Flag = Annotated[bool, BeforeValidator(_flag)]
#: Any string (not coerced from other types).
Text = Annotated[str, Strict()]
#: A string that is not empty or blank.
NonBlank = Annotated[str, Strict(), StringConstraints(pattern=r"\S"), Says("a non-empty string")]
#: Makes a sequence field accept one string, a list, a set or another iterable (as a tuple).
AsTuple = BeforeValidator(_as_tuple)


#: A tuple of non-empty strings (one string or any iterable of strings accepted).
Patterns = Annotated[
    tuple[Annotated[Text, StringConstraints(min_length=1)], ...],
    AsTuple,
    Says("a sequence of non-empty strings"),
]


def describe(info: FieldInfo) -> str:
    """What a valid value of a field is, in words, derived from its declared type and bounds
    (a hand-written message would be a second declaration, free to drift)."""
    return _words(info.annotation, list(info.metadata))


def _words(tp: Any, meta: Sequence[Any]) -> str:
    says = [m.text for m in meta if isinstance(m, Says) and m.text]
    if says:
        return says[0]
    origin = get_origin(tp)
    if origin is Annotated:
        inner, *extra = get_args(tp)
        return _words(inner, [*extra, *meta])
    if origin in (Union, UnionType):
        args = get_args(tp)
        text = " or ".join(_words(a, meta) for a in args if a is not NoneType)
        return text + (" or None" if NoneType in args else "")
    if origin is Literal:
        return f"one of {get_args(tp)}"
    if origin is tuple:
        item = get_args(tp)[0]
        if get_origin(item) is Literal:
            return f"a sequence of strings from {get_args(item)}"
        return "a sequence"
    nouns: dict[Any, str] = {float: "a number", int: "an int", bool: "a bool", str: "a string"}
    if tp in (float, int):
        return nouns[tp] + _bounds(meta)
    return nouns.get(tp, f"a {getattr(tp, '__name__', tp)}")


def _bounds(meta: Sequence[Any]) -> str:
    lo = hi = None
    for m in meta:
        if isinstance(m, (Gt, Ge)):
            lo = ("(", m.gt) if isinstance(m, Gt) else ("[", m.ge)
        elif isinstance(m, (Lt, Le)):
            hi = (")", m.lt) if isinstance(m, Lt) else ("]", m.le)
    if lo and hi:
        return f" in {lo[0]}{_fmt(lo[1])}, {_fmt(hi[1])}{hi[0]}"
    if lo:
        return f" {'>' if lo[0] == '(' else '>='} {_fmt(lo[1])}"
    if hi:
        return f" {'<' if hi[0] == ')' else '<='} {_fmt(hi[1])}"
    return ""


def _fmt(x: Any) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def show(value: Any) -> str:
    """``repr`` of a bad value, cut to one readable line."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def config_error(
    exc: ValidationError, data: Mapping[str, Any], model: type[BaseModel]
) -> ConfigError:
    """One :class:`ConfigError` line from the first problem pydantic found.

    Args:
        exc: What pydantic raised.
        data: The values given, by the names pydantic reports (flat names).
        model: The model validated: its fields, by flat name (the alias), say what is valid.
    """
    fields = {info.alias or name: info for name, info in model.model_fields.items()}
    errors = exc.errors()
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return ConfigError(f"unknown configuration field(s) {unknown}; valid: {sorted(fields)}")
    first = errors[0]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, ConfigError):  # a rule that wrote its own message
        return ConfigError(str(cause))
    name = str(first["loc"][0]) if first["loc"] else ""
    value = data[name] if name in data else first.get("input")
    if name not in fields:
        return ConfigError(f"{name or 'configuration'}: {first['msg']}, got {show(value)}")
    return ConfigError(f"{name} must be {describe(fields[name])}, got {show(value)}")


class TypedLoading(BaseModel):
    """pydantic's loading (``model_validate``, ``model_validate_json``) failing as the
    constructor does: one :class:`ConfigError` line naming the field and the bad value (the
    engine's config parts and the adapters' fields)."""

    @classmethod
    def model_validate(cls, obj: Any, **options: Any) -> Self:
        """pydantic's loading of a dict (``model_dump()``'s form), failing like the constructor.

        Raises:
            ConfigError: naming the field and the bad value, as the constructor does.
        """
        try:
            return super().model_validate(obj, **options)
        except ValidationError as exc:
            raise config_error(exc, obj if isinstance(obj, Mapping) else {}, cls) from None

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **options: Any) -> Self:
        """pydantic's loading of ``model_dump_json()``'s text (see :meth:`model_validate`).

        Raises:
            ConfigError: text that is not JSON, or a bad value (named, with the field).
        """
        try:
            return super().model_validate_json(json_data, **options)
        except ValidationError as exc:
            raise config_error(exc, {}, cls) from None


class ConfigPart(TypedLoading):
    """A frozen, hashable configuration model whose every error is a :class:`ConfigError`.

    A field whose flat (seed) name differs declares it as its ``alias``
    (``Field(alias="encoder_model")``): both names are accepted; errors report the flat one."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=True)

    def __init__(self, /, **data: Any) -> None:
        # Validated by flat names, so that pydantic's errors report the names users know.
        flat = {name: alias for alias, name in type(self).field_of().items()}
        given = {flat.get(k, k): v for k, v in data.items()}
        if len(given) < len(data):
            name = next(k for k in data if flat.get(k, k) != k and flat[k] in data)
            raise ConfigError(f"{flat[name]} given twice (also as {name!r}): give it once")
        try:
            super().__init__(**given)
        except ValidationError as exc:
            # Converted here: a ConfigError raised inside a validator is wrapped by pydantic.
            raise config_error(exc, given, type(self)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        # Not pydantic's ValidationError: a frozen config changes only by replace().
        raise ConfigError(
            f"{type(self).__name__} is frozen: build a changed copy with .replace({name}=...)"
        )

    def __delattr__(self, name: str) -> None:
        raise ConfigError(f"{type(self).__name__} is frozen: {name} cannot be deleted")

    @classmethod
    def field_of(cls) -> dict[str, str]:
        """``{flat name: field name}`` of this model's fields (the alias is the flat name)."""
        return {info.alias or name: name for name, info in cls.model_fields.items()}

    def replace(self: P, **changes: Any) -> P:
        """A copy with ``changes`` (by field or flat name) applied and validated again."""
        names = type(self).field_of()
        values = {name: getattr(self, name) for name in type(self).model_fields}
        values.update({names.get(k, k): v for k, v in changes.items()})
        return type(self)(**values)

    def model_copy(self: P, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> P:
        """pydantic's copy, with ``update`` validated like :meth:`replace` (pydantic stores it
        unchecked, failing only deep inside a later call).

        Raises:
            ConfigError: an ``update`` value the constructor would refuse.
        """
        if update:
            return self.replace(**update)
        return super().model_copy(deep=deep)
