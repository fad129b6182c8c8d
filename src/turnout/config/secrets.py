"""Secrets are written only as references: `{env: NAME}` or `{file: PATH}`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

_EXPECTED = "expected {env: NAME} or {file: PATH}"


class SecretError(Exception):
    """A secret reference could not be resolved (unset variable, unreadable file)."""


def describe_input(value: Any) -> str:
    """A short, secret-safe description of a config value for error messages."""
    if isinstance(value, str):
        return "a plain string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class SecretRef(BaseModel):
    """Where a secret lives. Exactly one of `env` and `file` is given. A relative `file`
    path is relative to the directory of the config file that names it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    """Name of an environment variable holding the secret."""
    file: str | None = None
    """Path of a file holding the secret (surrounding whitespace is stripped)."""

    @model_validator(mode="before")
    @classmethod
    def _check_shape(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, SecretRef):
            return data
        if not isinstance(data, dict):
            # Never echo the value: it is probably the secret itself.
            raise PydanticCustomError(
                "secret_ref", f"{_EXPECTED}, got {describe_input(data)}")
        given = [k for k in ("env", "file") if data.get(k) not in (None, "")]
        if len(given) != 1 and set(data) <= {"env", "file"}:
            raise PydanticCustomError(
                "secret_ref", f"{_EXPECTED} with exactly one of env or file")
        base_dir = (info.context or {}).get("base_dir")
        path = data.get("file")
        if base_dir is not None and isinstance(path, str) and path:
            data = {**data, "file": str(Path(base_dir) / Path(path).expanduser())}
        return data

    def describe(self) -> str:
        """Where the secret is read from, for messages (never the secret itself)."""
        if self.env is not None:
            return f"environment variable {self.env}"
        return f"file {self.file}"

    def resolve(self, environ: Mapping[str, str]) -> str:
        """The secret's value. Raises `SecretError` naming the variable or file."""
        if self.env is not None:
            value = environ.get(self.env)
            if not value:
                raise SecretError(f"environment variable {self.env} is not set")
            return value
        assert self.file is not None
        try:
            value = Path(self.file).read_text("utf-8").strip()
        except OSError as exc:
            raise SecretError(f"cannot read secret file {self.file}: "
                              f"{exc.strerror or exc}") from None
        if not value:
            raise SecretError(f"secret file {self.file} is empty")
        return value
