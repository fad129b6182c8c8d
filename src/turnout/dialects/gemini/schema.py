"""Gemini's OpenAPI-subset `Schema` -> JSON Schema, for inbound `parameters`/`responseSchema`.

Outbound needs no conversion: requests use `parametersJsonSchema` and `responseJsonSchema`,
which take JSON Schema as is. Inbound clients may still use the older `Schema` object, whose
differences from JSON Schema are: upper-case `type` names, `nullable`, a single `example`,
int64 counts that proto JSON may write as strings, and `propertyOrdering` (a Gemini
extension, kept: JSON Schema ignores unknown keywords). Unknown fields are rejected, as
Gemini's own parser does.
"""

from __future__ import annotations

from typing import Any

from turnout.core.errors import InvalidRequest
from turnout.dialects.gemini._wire import arr, boolean, integer, message, obj, only_keys, string

_TYPES = {"STRING": "string", "NUMBER": "number", "INTEGER": "integer", "BOOLEAN": "boolean",
          "ARRAY": "array", "OBJECT": "object", "NULL": "null"}
_COUNTS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")
_COPIED = ("format", "title", "description", "enum", "required", "pattern", "minimum",
           "maximum", "default", "propertyOrdering")
_KEYS = frozenset({"type", "nullable", "example", "properties", "items", "anyOf", *_COUNTS,
                   *_COPIED})
_MAX_DEPTH = 64


def openapi_to_json_schema(schema: Any, param: str, depth: int = 0) -> dict[str, Any]:
    """JSON Schema for a Gemini `Schema` object; raises `InvalidRequest` naming `param`."""
    schema = message(schema, param)
    if depth > _MAX_DEPTH:
        raise InvalidRequest("schema is nested too deeply", param=param)
    only_keys(schema, _KEYS, param)
    out: dict[str, Any] = {}
    kind = schema.get("type")
    if kind is not None:
        name = string(kind, f"{param}.type").upper()
        if name != "TYPE_UNSPECIFIED":
            if name not in _TYPES:
                raise InvalidRequest(f"unknown schema type `{kind}`", param=f"{param}.type")
            out["type"] = _TYPES[name]
    for key in _COPIED:
        if key in schema:
            out[key] = schema[key]
    for key in _COUNTS:
        if key in schema:
            out[key] = integer(schema[key], f"{param}.{key}", low=0)
    if "example" in schema:
        out["examples"] = [schema["example"]]
    if "properties" in schema:
        properties = obj(schema["properties"], f"{param}.properties")
        out["properties"] = {
            name: openapi_to_json_schema(sub, f"{param}.properties.{name}", depth + 1)
            for name, sub in properties.items()}
    if "items" in schema:
        out["items"] = openapi_to_json_schema(schema["items"], f"{param}.items", depth + 1)
    if "anyOf" in schema:
        out["anyOf"] = [openapi_to_json_schema(sub, f"{param}.anyOf.{i}", depth + 1)
                        for i, sub in enumerate(arr(schema["anyOf"], f"{param}.anyOf"))]
    if boolean(schema.get("nullable", False), f"{param}.nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out
