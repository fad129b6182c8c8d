"""The `tenancy:` section: where tenants and virtual keys live, who administers them, and
the master keys that seal tenants' own provider keys (bring your own key)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from turnout.config.secrets import SecretRef

MASTER_KEY_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""Master key ids: stored with every sealed key, so short and plain (`k1`, `2026-03`)."""


class MasterKeyConfig(BaseModel):
    """One master key: 32 random bytes, base64 (standard or URL-safe) in a secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=MASTER_KEY_ID)
    """Names the key in the database: never reuse an id for another key."""
    key: SecretRef


class TenancyConfig(BaseModel):
    """Multi-tenancy: virtual keys for clients, an admin key for operators."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database: str | SecretRef = "sqlite:///turnout.db"
    """Where tenants and keys are stored: `sqlite:///PATH` (relative to the config file,
    created on first start) or `postgresql://HOST/DB`. A URL with a password must be a
    secret reference (`{env: TURNOUT_DATABASE_URL}`)."""
    admin_key: SecretRef | None = None
    """The key that manages every tenant through the admin API (at least 32 characters)."""
    key_cache_s: float = Field(1.0, ge=0, le=60)
    """How long a replica trusts what it read about a key: a revocation takes effect on
    every replica within this time. Tenants' provider keys are cached as long."""
    master_keys: tuple[MasterKeyConfig, ...] = ()
    """Keys that seal tenants' provider keys; the first seals, all of them open (rotation).
    Empty: tenants cannot bring their own keys."""
    byok_providers: tuple[str, ...] | None = None
    """The providers (names under `providers:`) tenants may store keys for; absent: every
    configured provider except local ones."""

    @field_validator("master_keys")
    @classmethod
    def _unique_ids(cls, value: tuple[MasterKeyConfig, ...]) -> tuple[MasterKeyConfig, ...]:
        ids = [k.id for k in value]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"master key ids must be unique: {', '.join(twice)} given twice")
        return value

    spend_journal: str | None = None
    """The directory of the spend ledger's local journal (relative to the config file),
    where every upstream attempt is recorded before it is sent, so a gateway killed
    mid-request loses no spend record. Default: `NAME.spend-journal` next to a SQLite
    database `NAME.db`, `turnout-spend-journal` in the working directory for PostgreSQL.
    Replicas may share it (each process journals to files of its own)."""

    @field_validator("spend_journal")
    @classmethod
    def _journal_dir(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("expected a directory path")
        base_dir = (info.context or {}).get("base_dir")
        if Path(value).is_absolute() or base_dir is None:
            return value
        return str(Path(base_dir) / value)

    budget_timezone: str = "UTC"
    """The IANA time zone whose midnight starts a budget's day (and whose first of the
    month starts its month), e.g. `Europe/Paris`."""

    @field_validator("budget_timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as "
                             "UTC or Europe/Paris") from None
        return value

    @field_validator("database")
    @classmethod
    def _check_url(cls, value: str | SecretRef, info: ValidationInfo) -> str | SecretRef:
        if isinstance(value, SecretRef):
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError("expected sqlite:///PATH or postgresql://HOST/DB")
        if parts.password:
            raise ValueError("a database password must not be written in the config: give "
                             "the URL as {env: NAME} or {file: PATH}")
        if parts.scheme == "sqlite":
            return sqlite_url(value, (info.context or {}).get("base_dir"))
        return value


def sqlite_url(url: str, base_dir: Path | None) -> str:
    """A `sqlite:///relative/path` made relative to the config file's directory."""
    path = url.removeprefix("sqlite:///")
    if path in ("", ":memory:") or Path(path).is_absolute() or base_dir is None:
        return url
    return f"sqlite:///{Path(base_dir) / path}"


def default_spend_journal(database_url: str) -> str:
    """Where the spend journal goes when `spend_journal` is not set: next to a SQLite
    database file, else (PostgreSQL, an in-memory SQLite) in the working directory."""
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            db = Path(path)
            return str(db.with_name(f"{db.stem}.spend-journal"))
    return "turnout-spend-journal"
