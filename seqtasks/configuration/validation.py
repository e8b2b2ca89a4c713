"""Config values checked against the constructor's annotations before anything is built.

A component states what each option takes in its signature, and the registry checks every config
value against it before training (`Registry.check`), with one error that names the key, the value
and what is allowed:

    def __init__(self, hidden_size: PositiveInt = 256, dropout: Rate = 0.0,
                 implementation: Literal["fused", "reference"] = "fused"): ...

    encoder.hidden_size=-1: expected an integer >= 1
    encoder.implementation='fusd': expected one of 'fused', 'reference' (did you mean 'fused'?)

Understood: int, float, bool, str, None, Literal[...], unions (`X | None`), list[X] / tuple[X, ...]
/ Sequence[X], dict / Mapping, and `Annotated[X, Range(...)]` for bounds. Anything else (a class, a
Callable, Any) is accepted as it is.
"""

from __future__ import annotations

import collections.abc
import difflib
import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from seqtasks.errors import ConfigError


def closest(name: Any, choices: typing.Iterable[Any]) -> str | None:
    """The choice closest to name, or None when none is close."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
    return close[0] if close else None


def did_you_mean(name: Any, choices: typing.Iterable[Any]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when none is close."""
    match = closest(name, choices)
    return f" (did you mean '{match}'?)" if match else ""


@dataclass(frozen=True)
class Range:
    """Bounds of a number: low <= x <= high, with either end open (exclusive) or absent."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):  # nan, and inf (a temperature of inf
            return False  # samples uniformly, a rate of inf means nothing)
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))

    def describe(self) -> str:
        low, high = number(self.low), number(self.high)
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {low}"
        return f"{'<' if self.high_open else '<='} {high}"


def number(value: float | None) -> str:
    """A bound as written: whole numbers in full (2**32 - 1, not 4.29497e+09); '' for no bound."""
    if value is None:
        return ""
    return (
        str(int(value)) if isinstance(value, int) or (isinstance(value, float) and value.is_integer()) else f"{value:g}"
    )


PositiveInt = Annotated[int, Range(low=1)]
NonNegativeInt = Annotated[int, Range(low=0)]
PositiveFloat = Annotated[float, Range(low=0, low_open=True)]
NonNegativeFloat = Annotated[float, Range(low=0)]
Rate = Annotated[float, Range(low=0, high=1, high_open=True)]  # dropout, smoothing, shares: [0, 1)
Probability = Annotated[float, Range(low=0, high=1)]


def describe(annotation: Any) -> str:
    """What a value of this annotation looks like, in words."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        bounds = [a.describe() for a in args[1:] if isinstance(a, Range)]
        return " ".join([describe(args[0]), *bounds])
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin in (list, tuple, collections.abc.Sequence):
        return f"a list of {describe(args[0])}" if args else "a list"
    if origin in (dict, collections.abc.Mapping) or annotation in (dict, collections.abc.Mapping):
        return "a mapping of keys to values"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def matches(value: Any, annotation: Any) -> bool:
    """Whether value is a valid config value for annotation (see the module docstring)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any or annotation is None and value is None:
        return True
    if origin is Annotated:
        if not matches(value, args[0]):
            return False
        return all(bound.contains(value) for bound in args[1:] if isinstance(bound, Range))
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin in (Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, list | tuple):
            return False
        item = args[0] if args else Any
        return all(matches(v, item) for v in value)
    if origin in (dict, collections.abc.Mapping) or annotation in (dict, collections.abc.Mapping):
        return isinstance(value, dict)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if annotation is type(None):
        return value is None
    return True  # classes, callables: the constructor's business


def check_value(key: str, value: Any, annotation: Any) -> None:
    """ConfigError naming key, value and what is allowed, unless value matches annotation."""
    if matches(value, annotation):
        return
    choices = typing.get_args(annotation) if typing.get_origin(annotation) is Literal else ()
    hint = did_you_mean(value, choices) if choices and isinstance(value, str) else ""
    raise ConfigError(f"{key}={value!r}: expected {describe(annotation)}{hint}")


def parameter_annotations(function: Any) -> dict[str, Any]:
    """The resolved annotations (Annotated kept) of a function's parameters."""
    return typing.get_type_hints(function, include_extras=True)
