"""How an admin operation is declared: one `AdminRoute` next to its handler says its method,
path, who may call it, its path parameters, its request body model and its response models.

The same declaration registers the aiohttp route (with the caller check its `access`
demands) and describes the operation in the OpenAPI document (`gateway/openapi.py`), so
the document cannot forget an operation the gateway serves, nor describe a check that the
gateway does not make. Adding an endpoint is one `AdminRoute(...)` in the list its module
returns; its models' JSON Schemas come from pydantic.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from turnout.tenancy.records import TENANT_ID

PREFIX = "/admin/v1"
"""Every admin operation's path starts here."""


@dataclass(frozen=True, slots=True)
class AdminCaller:
    """Who is calling: the admin, or a tenant through one of its own keys."""

    admin: bool
    tenant_id: str | None = None


Handler = Callable[[web.Request, AdminCaller], Awaitable[web.Response]]
"""An admin handler: the request and its already authenticated (and authorised) caller."""


class Access(enum.Enum):
    """Who may call an operation."""

    PUBLIC = "public"
    """Anyone, without a key (the OpenAPI document: it holds no secret and no data)."""
    ADMIN = "admin"
    """The admin key only; a tenant's key is refused with 403."""
    TENANT = "tenant"
    """The admin key, or a key of the tenant the resource belongs to (read-only
    self-service); another tenant's resource answers 404, as if it did not exist."""


@dataclass(frozen=True, slots=True)
class PathParam:
    """A path parameter: its name in the path template and the shape a valid value has.
    A value of another shape never reaches the store (the handler answers 404)."""

    name: str
    description: str
    pattern: str
    """A regular expression every valid value matches in full (anchored in the schema)."""
    max_length: int
    example: str

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": f"^{self.pattern}$",
                "minLength": 1, "maxLength": self.max_length}


@dataclass(frozen=True, slots=True)
class QueryParam:
    """An optional query parameter: its JSON Schema says exactly which values the handler
    accepts (any other is a 400), so a fuzzer can tell valid values from invalid ones. An
    `array` is sent as the parameter repeated (`?group_by=day&group_by=model`)."""

    name: str
    description: str
    schema: Mapping[str, Any]
    example: Any = None

    def document(self) -> dict[str, Any]:
        described: dict[str, Any] = {"name": self.name, "in": "query", "required": False,
                                     "description": self.description,
                                     "schema": dict(self.schema)}
        if self.schema.get("type") == "array":
            described.update(style="form", explode=True)
        if self.example is not None:
            described["example"] = self.example
        return described


TENANT_ID_PARAM = PathParam("tenant_id", "A tenant's id (a lowercase slug).",
                            TENANT_ID.pattern, 63, "acme")
KEY_ID_PARAM = PathParam("key_id", "A virtual key's id (the 16 characters after `tk_`).",
                         "[a-z2-7]{16}", 16, "abcdefghijklmnop")


class ErrorDetail(BaseModel):
    """What went wrong."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="A stable machine-readable kind: `invalid_request`, "
                                  "`authentication_error`, `permission_error`, `not_found`, "
                                  "`conflict`, `method_not_allowed`, `payload_too_large`, "
                                  "`unsupported_media_type`.")
    message: str = Field(description="A sentence for people.")


class Error(BaseModel):
    """Every admin error response."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


ERROR_DESCRIPTIONS: Mapping[int, str] = {
    400: "The body or a parameter is invalid.",
    401: "No key, or a key that is unknown, revoked or expired.",
    403: "The key may not do this (a tenant's key on an admin operation, or a disabled "
         "tenant's key).",
    404: "No such resource (or it belongs to another tenant).",
    409: "The resource exists already.",
    413: "The body is too large.",
    415: "The body is not `application/json`.",
}

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True, slots=True)
class AdminRoute:
    """One admin operation, declared next to its handler."""

    method: str
    path: str
    """Below `PREFIX`, with `{name}` placeholders for `params` (`/tenants/{tenant_id}`)."""
    handler: Handler
    operation_id: str
    summary: str
    access: Access
    responses: Mapping[int, type[BaseModel] | None]
    """Success statuses and the model of each body (None: no body, e.g. 204)."""
    body: type[BaseModel] | None = None
    """The JSON request body's model (required when given)."""
    body_example: Mapping[str, Any] | None = None
    """A valid body: shown in the document, used by the authorisation matrix test."""
    params: tuple[PathParam, ...] = ()
    query: tuple[QueryParam, ...] = ()
    """Its query parameters, all optional; any other in a request is a 400."""
    errors: frozenset[int] = frozenset()
    """Error statuses beyond those implied (401/403 unless public, 404 with path
    parameters, 400/413/415 with a body, 400 with query parameters), e.g. 409."""
    description: str = ""
    tags: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        named = _PLACEHOLDER.findall(self.path)
        if sorted(named) != sorted(p.name for p in self.params):
            raise ValueError(f"{self.operation_id}: path placeholders {named} do not match "
                             f"its parameters {[p.name for p in self.params]}")
        if not self.path.startswith("/"):
            raise ValueError(f"{self.operation_id}: the path is relative to {PREFIX}")
        if self.body_example is not None and self.body is None:
            raise ValueError(f"{self.operation_id}: a body example without a body model")

    @property
    def full_path(self) -> str:
        return PREFIX + self.path

    def error_statuses(self) -> list[int]:
        """Every error status this operation may answer with."""
        statuses = set(self.errors)
        if self.access is not Access.PUBLIC:
            statuses |= {401, 403}
        if self.params:
            statuses.add(404)
        if self.body is not None:
            statuses |= {400, 413, 415}
        if self.query:
            statuses.add(400)
        return sorted(statuses)
