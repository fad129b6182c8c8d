"""What a tenant or a key may spend and how fast: limits and budgets as data.

A policy is stored as JSON with its tenant or key (`policy` column), set through the admin
API, and read on the hot path through the key directory's cache. The same model validates
admin input and what is read back, so a stored policy is always one the stages understand.

```json
{"limits": {"rpm": 600, "tpm": 200000, "concurrency": 20},
 "budgets": [{"period": "day", "usd": 25, "alerts": [0.5, 0.8, 1.0]},
             {"period": "month", "tokens": 50000000, "hard": false}]}
```
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

Period = Literal["day", "month", "total"]
"""A budget resets at the configured time zone's midnight (`day`), on the first of each
month (`month`), or never (`total`)."""

MAX_USD = 1_000_000_000
"""Budgets stay far below the ledger's 2**53 micro-dollar bound."""



def _integral(value: object) -> object:
    # JSON Schema's `integer` is any number without a fraction (`600.0` too), and the admin
    # API validates strictly (no "600" for 600): take such a float as the integer it is.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


INTEGRAL = BeforeValidator(_integral)
"""After an int's constraints in `Annotated[int, Field(...), INTEGRAL]` (that order keeps
them in the JSON Schema): an integer that may arrive as an integral JSON number."""
Alert = Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)]
"""A fraction of a budget at which an alert is emitted (above 1: past the limit)."""


def _one_unit_schema(schema: dict[str, Any]) -> None:
    # What `Budget._one_unit` checks, in the JSON Schema, so that the admin API's OpenAPI
    # document describes exactly the budgets the gateway accepts.
    schema["oneOf"] = [
        {"required": [unit], "properties": {unit: {"not": {"type": "null"}},
                                            other: {"type": "null"}}}
        for unit, other in (("usd", "tokens"), ("tokens", "usd"))]


def _distinct_schema(schema: dict[str, Any]) -> None:
    # What `Policy._distinct` checks: at most one budget per period and unit.
    schema["properties"]["budgets"]["allOf"] = [
        {"contains": {"required": ["period", unit],
                      "properties": {"period": {"const": period},
                                     unit: {"not": {"type": "null"}}}},
         "minContains": 0, "maxContains": 1}
        for period in get_args(Period) for unit in ("usd", "tokens")]


class Limits(BaseModel):
    """Rate limits; an absent one does not apply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: Annotated[int, Field(ge=1, le=10_000_000), INTEGRAL] | None = Field(
        None, description="Requests per minute.")
    tpm: Annotated[int, Field(ge=1, le=10_000_000_000), INTEGRAL] | None = Field(
        None, description="Tokens per minute (prompt estimate + max output).")
    concurrency: Annotated[int, Field(ge=1, le=1_000_000), INTEGRAL] | None = Field(
        None, description="Calls in flight at once.")


class Budget(BaseModel):
    """A spend limit over a period, in US dollars or in tokens (exactly one of them)."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_one_unit_schema)

    period: Period
    usd: float | None = Field(None, ge=0, le=MAX_USD, allow_inf_nan=False)
    tokens: Annotated[int, Field(ge=0, le=2**53 - 1), INTEGRAL] | None = None
    hard: bool = Field(True, description="Refuse calls that could exceed it (false: "
                                         "alert only).")
    alerts: tuple[Alert, ...] = Field((0.5, 0.8, 1.0), max_length=10,
                                      description="Fractions of the budget at which an "
                                                  "alert event and metric are emitted.")

    @model_validator(mode="after")
    def _one_unit(self) -> Budget:
        if (self.usd is None) == (self.tokens is None):
            raise ValueError("a budget gives exactly one of usd or tokens")
        return self

    @property
    def unit(self) -> Literal["usd", "tokens"]:
        return "usd" if self.usd is not None else "tokens"

    @property
    def limit_units(self) -> int:
        """The limit in the ledger's integer units: micro-dollars or tokens."""
        if self.usd is not None:
            return round(self.usd * 1_000_000)
        assert self.tokens is not None
        return self.tokens


class Policy(BaseModel):
    """Limits and budgets of one tenant or one key."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_distinct_schema)

    limits: Limits = Field(default_factory=Limits)
    budgets: tuple[Budget, ...] = Field((), max_length=10)

    @model_validator(mode="after")
    def _distinct(self) -> Policy:
        seen = {(b.period, b.unit) for b in self.budgets}
        if len(seen) != len(self.budgets):
            raise ValueError("at most one budget per period and unit")
        return self

    @property
    def empty(self) -> bool:
        limits = self.limits
        return not self.budgets and limits.rpm is None and limits.tpm is None and (
            limits.concurrency is None)

    def stored(self) -> dict[str, object] | None:
        """The JSON stored in the `policy` column (None for an empty policy)."""
        return None if self.empty else self.model_dump(mode="json", exclude_none=True)


NO_POLICY = Policy()


def parse_policy(stored: object) -> Policy:
    """A policy read back from the database (None: no policy)."""
    return NO_POLICY if stored is None else Policy.model_validate(stored)
