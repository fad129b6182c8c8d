"""A strict structural check of JSON values against the OpenAI SDK's published TypedDicts.

The SDK's request types are TypedDicts, which pydantic validates leniently (extra keys are
ignored, iterables are lazy). This walker is strict: a key the type does not declare, a
missing required key, a wrong literal or scalar type all fail, naming the JSON path.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import typing_extensions
from openai._types import SequenceNotStr
from typing_extensions import is_typeddict

_REQUIRED = (typing.Required, typing_extensions.Required)
_NOT_REQUIRED = (typing.NotRequired, typing_extensions.NotRequired)
_LISTS = (list, collections.abc.Iterable, collections.abc.Sequence, SequenceNotStr)


class ShapeError(AssertionError):
    """The value does not match the type."""


def check_shape(value: Any, tp: Any, path: str = "$") -> None:
    """Raise `ShapeError` unless `value` matches `tp` exactly."""
    origin = get_origin(tp)
    if tp is Any or tp is object:
        return
    if origin is typing.Annotated:
        check_shape(value, get_args(tp)[0], path)
    elif is_typeddict(tp):
        _check_typeddict(value, tp, path)
    elif origin in (Union, types.UnionType):
        _check_union(value, get_args(tp), path)
    elif origin is Literal:
        if value not in get_args(tp):
            raise ShapeError(f"{path}: {value!r} is not one of {get_args(tp)}")
    elif origin in _LISTS:
        if not isinstance(value, list):
            raise ShapeError(f"{path}: expected an array, got {type(value).__name__}")
        for i, item in enumerate(value):
            check_shape(item, get_args(tp)[0], f"{path}[{i}]")
    elif origin is dict:
        if not isinstance(value, dict):
            raise ShapeError(f"{path}: expected an object")
        for key, item in value.items():
            check_shape(item, get_args(tp)[1], f"{path}.{key}")
    else:
        _check_scalar(value, tp, path)


def _check_typeddict(value: Any, tp: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise ShapeError(f"{path}: expected an object for {tp.__name__}")
    hints = get_type_hints(tp)
    for key in _required_keys(tp):
        if key not in value:
            raise ShapeError(f"{path}: missing required key {key!r} of {tp.__name__}")
    for key, item in value.items():
        if key not in hints:
            raise ShapeError(f"{path}: {tp.__name__} has no key {key!r}")
        check_shape(item, hints[key], f"{path}.{key}")


def _required_keys(tp: Any) -> set[str]:
    # The SDK's modules use `from __future__ import annotations`, so `__required_keys__`
    # misses `Required[...]`; read the markers from the resolved annotations instead.
    hints = get_type_hints(tp, include_extras=True)
    marks = {key: get_origin(hint) for key, hint in hints.items()}
    marked = {key for key, mark in marks.items() if mark in _REQUIRED}
    unmarked = {key for key, mark in marks.items() if mark in _NOT_REQUIRED}
    return (set(tp.__required_keys__) - unmarked) | marked


def _check_union(value: Any, options: tuple[Any, ...], path: str) -> None:
    failures = []
    for option in options:
        try:
            check_shape(value, option, path)
            return
        except ShapeError as exc:
            failures.append(str(exc))
    raise ShapeError(f"{path}: matches no option of the union: " + " | ".join(failures))


def _check_scalar(value: Any, tp: Any, path: str) -> None:
    if tp is type(None):
        ok = value is None
    elif tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif tp is str:
        ok = isinstance(value, str)
    else:
        raise ShapeError(f"{path}: the checker does not know type {tp!r}")
    if not ok:
        raise ShapeError(f"{path}: expected {tp.__name__}, got {type(value).__name__}")
