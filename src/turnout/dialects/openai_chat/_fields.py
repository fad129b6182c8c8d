"""Small typed readers for the inbound validator.

Each reader takes the raw value and its OpenAI-style `param` path (`messages[2].role`) and
raises `InvalidRequest` naming that path, so every error a client sees points at the field.
A JSON `null` counts as absent, as it does for OpenAI's optional fields.
"""

from __future__ import annotations

from typing import Any

from turnout.core.errors import InvalidRequest, UnsupportedFeature
from turnout.core.json_data import json_fault
from turnout.dialects.json_types import Keys, first_stray, type_name


def wrong_type(param: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {type_name(value)}.",
        param=param,
    )


def req_str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        if value is None:
            raise InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
        raise wrong_type(param, "a string", value)
    return value


def opt_str(value: Any, param: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise wrong_type(param, "a string", value)
    return value


def opt_bool(value: Any, param: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise wrong_type(param, "a boolean", value)
    return value


def opt_int(value: Any, param: str, low: int, high: int) -> int | None:
    """An integer within [low, high]. Strict, like OpenAI's own validation and the SDK's
    `int` types: `5.0` is a decimal number, not an integer. The range is checked first,
    because integers too large for 64 bits reach here as floats (the JSON parser turns
    them into doubles), and for those the bound is what a client needs to hear."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(param, "an integer", value)
    if isinstance(value, float) and not value.is_integer():  # 5.5, and inf / nan
        raise _decimal(param)
    if value < low:
        raise InvalidRequest(
            f"Invalid '{param}': integer below minimum value. Expected a value >= {low}, "
            f"but got {value} instead.", param=param)
    if value > high:
        raise InvalidRequest(
            f"Invalid '{param}': integer above maximum value. Expected a value <= {high}, "
            f"but got {value} instead.", param=param)
    if isinstance(value, float):
        raise _decimal(param)
    return value


def _decimal(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected an integer, but got a decimal number instead.",
        param=param)


def opt_number(value: Any, param: str, low: float, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(param, "a number", value)
    if not low <= value <= high:  # also refuses nan, which compares false
        raise InvalidRequest(
            f"Invalid '{param}': expected a value between {low:g} and {high:g}, "
            f"but got {value} instead.", param=param)
    return float(value)


def opt_object(value: Any, param: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise wrong_type(param, "an object", value)
    return value


def opt_data(value: Any, param: str) -> dict[str, Any] | None:
    """An object carried on unchanged (a JSON Schema): it must encode again for any
    upstream (see `json_fault`)."""
    obj = opt_object(value, param)
    fault = None if obj is None else json_fault(obj)
    if fault is not None:
        path, reason = fault
        where = param + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path)
        raise InvalidRequest(f"Invalid '{where}': {reason}.", param=where)
    return obj


def req_object(value: Any, param: str) -> dict[str, Any]:
    if value is None:
        raise InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    if not isinstance(value, dict):
        raise wrong_type(param, "an object", value)
    return value


def req_list(value: Any, param: str) -> list[Any]:
    if value is None:
        raise InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    if not isinstance(value, list):
        raise wrong_type(param, "an array", value)
    return value


def bad_value(param: str, value: Any, allowed: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid value for '{param}': {value!r}. Supported values are: {allowed}.",
        param=param,
    )


def check_keys(obj: dict[str, Any], param: str, spec: Keys) -> None:
    """The one rule for keys, applied at every level of a request (top level, messages,
    content parts, tool calls, tools, tool choice, response format, stream options)."""
    stray = first_stray(obj, spec)
    if stray is None:
        return
    key, documented = stray
    where = f"{param}.{key}" if param else key
    if documented:
        raise UnsupportedFeature(f"The '{where}' parameter is not supported.", param=where)
    raise unknown_key(param, key)


def unknown_key(param: str, key: str) -> InvalidRequest:
    """A key OpenAI does not document, wherever it appears: refused naming its path, as
    OpenAI does. (Carrying such extras through to an OpenAI upstream would be decided here,
    in one place.)"""
    if not param:
        return InvalidRequest(f"Unrecognized request argument supplied: {key}", param=key)
    return InvalidRequest(f"Unrecognized parameter '{key}' in '{param}'.",
                          param=f"{param}.{key}")
