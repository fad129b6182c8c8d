"""Policies validate what the admin API accepts and what the store reads back."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from turnout.tenancy.policy import NO_POLICY, Budget, Policy, parse_policy


def test_a_budget_names_exactly_one_unit() -> None:
    with pytest.raises(ValidationError, match="exactly one of usd or tokens"):
        Budget.model_validate({"period": "day"})
    with pytest.raises(ValidationError, match="exactly one of usd or tokens"):
        Budget.model_validate({"period": "day", "usd": 1, "tokens": 5})
    assert Budget(period="month", usd=12.345678).limit_units == 12_345_678
    assert Budget(period="total", tokens=77).limit_units == 77


@pytest.mark.parametrize("bad", [
    {"budgets": [{"period": "week", "usd": 1}]},
    {"budgets": [{"period": "day", "usd": -1}]},
    {"budgets": [{"period": "day", "usd": float("nan")}]},
    {"budgets": [{"period": "day", "usd": 1, "alerts": [0]}]},
    {"budgets": [{"period": "day", "usd": 1}, {"period": "day", "usd": 2}]},
    {"limits": {"rpm": 0}},
    {"limits": {"burst": 5}},
    {"other": 1},
])
def test_malformed_policies_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Policy.model_validate(bad)


def test_empty_policies_are_stored_as_null_and_read_back_as_none() -> None:
    assert NO_POLICY.empty and NO_POLICY.stored() is None
    assert parse_policy(None) is NO_POLICY
    policy = Policy.model_validate({"limits": {"rpm": 5},
                                    "budgets": [{"period": "day", "usd": 1}]})
    assert parse_policy(policy.stored()) == policy
    # A day and a month budget in the same unit, or a day budget in both units, is fine.
    Policy.model_validate({"budgets": [{"period": "day", "usd": 1},
                                       {"period": "day", "tokens": 1},
                                       {"period": "month", "usd": 9}]})
