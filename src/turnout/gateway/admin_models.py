"""The admin API's request and response bodies for tenants and keys, as pydantic models:
they validate what callers send, shape what the gateway answers, and give the OpenAPI
document its JSON Schemas. Responses forbid extra fields, so the schema says exactly what
an answer holds: a key's secret only in `CreatedKey`, the answer that mints it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from turnout.tenancy.policy import NO_POLICY, Policy
from turnout.tenancy.records import TENANT_ID, KeyRecord, Tenant

PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
"""Names and aliases: no control characters (no NUL a database would choke on)."""
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=PRINTABLE)]
TIMESTAMP = (r"^(19[7-9][0-9]|[2-8][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
             r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
             r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")
"""An RFC 3339 time with its offset, in the years 1970 to 8999 (so that it converts to UTC
without overflow), to at most microseconds: what `format: date-time` alone leaves open."""


class NewTenant(BaseModel):
    """`POST /tenants`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=f"^{TENANT_ID.pattern}$", description="Lowercase slug: a-z, 0-9, -")
    name: Name


class TenantChange(BaseModel):
    """`PATCH /tenants/{tenant_id}`."""

    model_config = ConfigDict(extra="forbid")

    disabled: bool = Field(description="True refuses every key of the tenant.")


class NewKey(BaseModel):
    """`POST /tenants/{tenant_id}/keys`."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    aliases: list[Name] | None = Field(None, max_length=1000,
                                       description="Aliases the key may call; omitted "
                                                   "or null for all.")
    expires_at: Annotated[str, Field(pattern=TIMESTAMP)] | None = Field(
        None, json_schema_extra={"format": "date-time"},
        description="When the key stops working: an RFC 3339 time with its offset "
                    "(`2027-01-01T00:00:00Z`), in the years 1970 to 8999.")
    policy: Policy = Field(NO_POLICY, description="The key's own limits and budgets (its "
                                                  "tenant's apply too).")

    @field_validator("expires_at")
    @classmethod
    def _a_real_time(cls, value: str | None) -> str | None:
        if value is not None:
            datetime.fromisoformat(value)  # February 30th: ValueError, a 400
        return value

    @property
    def expires(self) -> datetime | None:
        """`expires_at` in UTC (stored so: SQLite keeps no offset, and 10:00+05:00 would
        read back as 10:00Z)."""
        if self.expires_at is None:
            return None
        return datetime.fromisoformat(self.expires_at).astimezone(UTC)


class TenantView(BaseModel):
    """A tenant."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    created_at: datetime
    disabled: bool
    policy: Policy

    @classmethod
    def of(cls, tenant: Tenant) -> TenantView:
        return cls(id=tenant.id, name=tenant.name, created_at=tenant.created_at,
                   disabled=tenant.disabled_at is not None, policy=tenant.policy)


class TenantList(BaseModel):
    """Every tenant, by id."""

    model_config = ConfigDict(extra="forbid")

    data: list[TenantView]


class KeyView(BaseModel):
    """A virtual key's metadata: never the key itself."""

    model_config = ConfigDict(extra="forbid")

    id: str
    tenant_id: str
    name: str
    aliases: list[str] | None = Field(description="The aliases it may call (null: all).")
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    policy: Policy

    @classmethod
    def of(cls, record: KeyRecord) -> KeyView:
        return cls(**_key_fields(record))


class CreatedKey(KeyView):
    """A key just minted: `key` is shown this once, and never stored."""

    key: str = Field(pattern=r"^tk_[a-z2-7]{16}_[A-Za-z0-9_-]{43}$",
                     description="The key to present as `Authorization: Bearer <key>`.")

    @classmethod
    def minted(cls, record: KeyRecord, token: str) -> CreatedKey:
        return cls(**_key_fields(record), key=token)


class KeyList(BaseModel):
    """A tenant's keys, oldest first."""

    model_config = ConfigDict(extra="forbid")

    data: list[KeyView]


def _key_fields(record: KeyRecord) -> dict[str, object]:
    return {"id": record.id, "tenant_id": record.tenant_id, "name": record.name,
            "aliases": sorted(record.aliases) if record.aliases is not None else None,
            "created_at": record.created_at, "expires_at": record.expires_at,
            "revoked_at": record.revoked_at, "policy": record.policy}
