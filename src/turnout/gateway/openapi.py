"""The admin API's OpenAPI 3.1 document, built from the `AdminRoute` declarations.

JSON Schemas come from the pydantic models (request bodies in validation mode, responses
in serialization mode), gathered under `components.schemas` and referenced from each
operation. Every error response is the one `Error` schema. The document describes who may
call each operation in words and in `x-turnout-access` (`admin`, `tenant` or `public`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from turnout.gateway.admin_spec import ERROR_DESCRIPTIONS, Access, AdminRoute, Error

OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{model}"
_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
_SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer",
                   "description": "`Authorization: Bearer <key>`: the admin key, or a "
                                  "tenant's virtual key (`tk_...`)."},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "x-api-key",
                     "description": "The same key in `x-api-key` (as Anthropic SDKs "
                                    "send it); it wins over `Authorization`."},
}
_WHO = {
    Access.PUBLIC: "No key needed.",
    Access.ADMIN: "Needs the admin key.",
    Access.TENANT: "The admin key, or a key of the tenant it belongs to (read-only "
                   "self-service); another tenant's resource is a 404.",
}


def openapi_document(routes: Sequence[AdminRoute], *, version: str) -> dict[str, Any]:
    """The document describing `routes` (their paths are all below `/admin/v1`)."""
    refs, components = _schemas(routes)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.full_path, {})[route.method.lower()] = _operation(route, refs)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Turnout admin API", "version": version,
                 "description": "Tenants, their virtual keys and policies. JSON in and out; "
                                "every error is `{\"error\": {\"type\", \"message\"}}`."},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": _SECURITY_SCHEMES},
    }


_Key = tuple[type[BaseModel], JsonSchemaMode]


def _schemas(routes: Iterable[AdminRoute]
             ) -> tuple[dict[_Key, dict[str, Any]], dict[str, Any]]:
    wanted: list[_Key] = [(Error, "serialization")]
    for route in routes:
        if route.body is not None:
            wanted.append((route.body, "validation"))
        wanted.extend((model, "serialization") for model in route.responses.values()
                      if model is not None)
    unique = list(dict.fromkeys(wanted))
    refs, defs = models_json_schema(unique, ref_template=_REF)
    return {key: refs[key] for key in unique}, dict(defs.get("$defs", {}))


def _operation(route: AdminRoute, refs: dict[_Key, dict[str, Any]]) -> dict[str, Any]:
    description = " ".join(part for part in (route.description, _WHO[route.access]) if part)
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "description": description,
        "x-turnout-access": route.access.value,
    }
    if route.tags:
        operation["tags"] = list(route.tags)
    operation["security"] = [] if route.access is Access.PUBLIC else _SECURITY
    if route.params or route.query:
        operation["parameters"] = [
            *({"name": p.name, "in": "path", "required": True, "description": p.description,
               "schema": p.schema(), "example": p.example} for p in route.params),
            *(q.document() for q in route.query)]
    if route.body is not None:
        media: dict[str, Any] = {"schema": refs[(route.body, "validation")]}
        if route.body_example is not None:
            media["example"] = dict(route.body_example)
        operation["requestBody"] = {"required": True, "content": {"application/json": media}}
    responses: dict[str, Any] = {}
    for status, model in sorted(route.responses.items()):
        responses[str(status)] = _response(_describe(status), refs, model, "serialization")
    for status in route.error_statuses():
        responses[str(status)] = _response(ERROR_DESCRIPTIONS.get(status, "An error."), refs,
                                           Error, "serialization")
    operation["responses"] = responses
    return operation


def _response(description: str, refs: dict[_Key, dict[str, Any]],
              model: type[BaseModel] | None,
              mode: Literal["validation", "serialization"]) -> dict[str, Any]:
    if model is None:
        return {"description": description}
    return {"description": description,
            "content": {"application/json": {"schema": refs[(model, mode)]}}}


def _describe(status: int) -> str:
    return {200: "OK.", 201: "Created.", 204: "Done; no body."}.get(status, "Success.")
