"""Small typed readers for the inbound validator.

Each reader takes the raw value and its OpenAI-style `param` path (`messages[2].role`) and
raises `InvalidRequest` naming that path, so every error a client sees points at the field.
A JSON `null` counts as absent, as it does for OpenAI's optional fields.
"""

from __future__ import annotations

from typing import Any

from turnout.core.errors import InvalidRequest
from turnout.dialects.json_types import type_name


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


def opt_int(value: Any, param: str, minimum: int | None = None) -> int | None:
    if value is None:
        return None
    number: int
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)  # JSON has no int type; 5.0 is how some encoders write 5
    else:
        raise wrong_type(param, "an integer", value)
    if minimum is not None and number < minimum:
        raise InvalidRequest(
            f"Invalid '{param}': integer below minimum value. Expected a value >= {minimum}, "
            f"but got {number} instead.", param=param)
    return number


def opt_number(value: Any, param: str, low: float, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(param, "a number", value)
    if not low <= value <= high:
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
