"""The budget contract: reserve all-or-nothing, settle once, sweep abandoned reservations
at their full amount; identical for every `BudgetLedger` (see conftest)."""

from __future__ import annotations

import pytest

from turnout.resilience.clock import FakeClock
from turnout.state import BudgetDenied, BudgetLedger, BudgetUsage, Charge, Reservation

DAY = "tenant:acme:day:2026-12-02"
KEY = "key:k1:month:2026-12"


async def test_reserve_then_settle_at_the_actual_cost(ledger: BudgetLedger,
                                                      clock: FakeClock) -> None:
    reservation = await ledger.reserve("r1", [Charge(DAY, 1_000, 300)], lease_s=60.0)
    assert isinstance(reservation, Reservation)
    assert reservation.reservation_id == "r1"
    assert reservation.charges == (Charge(DAY, 1_000, 300),)
    assert reservation.expires_at == pytest.approx(clock.monotonic() + 60.0)
    assert await ledger.usage(DAY) == BudgetUsage(spent=0, reserved=300)

    assert await ledger.settle("r1", 120) is True
    assert await ledger.usage(DAY) == BudgetUsage(spent=120, reserved=0)


async def test_a_budget_admits_up_to_exactly_its_limit(ledger: BudgetLedger) -> None:
    assert isinstance(await ledger.reserve("r1", [Charge(DAY, 1_000, 600)], 60.0), Reservation)
    assert isinstance(await ledger.reserve("r2", [Charge(DAY, 1_000, 400)], 60.0), Reservation)
    denied = await ledger.reserve("r3", [Charge(DAY, 1_000, 1)], 60.0)
    assert isinstance(denied, BudgetDenied)
    assert (denied.spent, denied.reserved, denied.available) == (0, 1_000, 0)

    assert await ledger.settle("r1", 500)  # 100 less than reserved comes back
    denied = await ledger.reserve("r3", [Charge(DAY, 1_000, 101)], 60.0)
    assert isinstance(denied, BudgetDenied) and denied.available == 100
    assert isinstance(await ledger.reserve("r3", [Charge(DAY, 1_000, 100)], 60.0), Reservation)


async def test_reservation_is_all_or_nothing(ledger: BudgetLedger) -> None:
    assert isinstance(await ledger.reserve("r0", [Charge(KEY, 500, 450)], 60.0), Reservation)
    charges = [Charge(DAY, 1_000, 100), Charge(KEY, 500, 100)]
    denied = await ledger.reserve("r1", charges, 60.0)
    assert isinstance(denied, BudgetDenied)
    assert denied.charge == charges[1]
    assert (denied.spent, denied.reserved, denied.available) == (0, 450, 50)
    assert await ledger.usage(DAY) == BudgetUsage(0, 0)  # the first charge took nothing
    assert await ledger.usage(KEY) == BudgetUsage(0, 450)
    assert await ledger.settle("r1", 0) is False  # nothing was held under that id


async def test_settle_counts_once(ledger: BudgetLedger) -> None:
    await ledger.reserve("r1", [Charge(DAY, 1_000, 300), Charge(KEY, 500, 300)], 60.0)
    assert await ledger.settle("r1", 200) is True
    assert await ledger.settle("r1", 200) is False
    assert await ledger.settle("r1", {DAY: 1, KEY: 1}) is False
    assert await ledger.usage(DAY) == BudgetUsage(200, 0)
    assert await ledger.usage(KEY) == BudgetUsage(200, 0)


async def test_settle_per_key(ledger: BudgetLedger) -> None:
    tokens = "tenant:acme:tokens:day:2026-12-02"
    await ledger.reserve("r1", [Charge(DAY, 10_000, 900), Charge(tokens, 100_000, 4_000)], 60.0)
    assert await ledger.settle("r1", {DAY: 250, tokens: 1_234})
    assert await ledger.usage(DAY) == BudgetUsage(250, 0)
    assert await ledger.usage(tokens) == BudgetUsage(1_234, 0)


@pytest.mark.parametrize("actual", [{DAY: 1}, {DAY: 1, KEY: 1, "other": 1}, {DAY: 1, "x": 1}])
async def test_settle_must_name_exactly_the_reserved_keys(
        ledger: BudgetLedger, actual: dict[str, int]) -> None:
    await ledger.reserve("r1", [Charge(DAY, 1_000, 300), Charge(KEY, 500, 300)], 60.0)
    with pytest.raises(ValueError):
        await ledger.settle("r1", actual)
    assert await ledger.usage(DAY) == BudgetUsage(0, 300)  # still held, untouched
    assert await ledger.settle("r1", {DAY: 5, KEY: 6})


async def test_an_actual_above_the_reservation_counts_in_full(ledger: BudgetLedger) -> None:
    await ledger.reserve("r1", [Charge(DAY, 1_000, 300)], 60.0)
    assert await ledger.settle("r1", 1_200)
    assert await ledger.usage(DAY) == BudgetUsage(1_200, 0)
    denied = await ledger.reserve("r2", [Charge(DAY, 1_000, 0)], 60.0)
    assert isinstance(denied, BudgetDenied) and denied.available == 0


async def test_reserving_again_under_a_live_id_reserves_nothing_more(
        ledger: BudgetLedger) -> None:
    first = await ledger.reserve("r1", [Charge(DAY, 1_000, 300)], 60.0)
    again = await ledger.reserve("r1", [Charge(DAY, 1_000, 300)], 60.0)
    assert isinstance(first, Reservation) and isinstance(again, Reservation)
    assert again.expires_at == pytest.approx(first.expires_at)
    assert await ledger.usage(DAY) == BudgetUsage(0, 300)


async def test_sweep_settles_expired_leases_at_their_full_amount(
        ledger: BudgetLedger, clock: FakeClock) -> None:
    await ledger.reserve("crashed", [Charge(DAY, 1_000, 300), Charge(KEY, 500, 200)], 10.0)
    await ledger.reserve("slow", [Charge(DAY, 1_000, 100)], 30.0)
    assert await ledger.sweep() == []
    clock.advance(10.0)
    assert await ledger.sweep() == ["crashed"]
    assert await ledger.usage(DAY) == BudgetUsage(300, 100)
    assert await ledger.usage(KEY) == BudgetUsage(200, 0)
    assert await ledger.sweep() == []

    assert await ledger.settle("crashed", 1) is False  # it was counted once, by the sweep
    assert await ledger.settle("slow", 40) is True
    clock.advance(60.0)
    assert await ledger.sweep() == []
    assert await ledger.usage(DAY) == BudgetUsage(340, 0)


async def test_sweep_with_an_explicit_now(ledger: BudgetLedger, clock: FakeClock) -> None:
    await ledger.reserve("r1", [Charge(DAY, 1_000, 300)], 10.0, now=clock.monotonic())
    assert await ledger.sweep(now=clock.monotonic() + 9.0) == []
    assert await ledger.sweep(now=clock.monotonic() + 10.0) == ["r1"]


async def test_budget_keys_are_independent(ledger: BudgetLedger) -> None:
    await ledger.reserve("r1", [Charge("tenant:a:day", 100, 100)], 60.0)
    assert isinstance(await ledger.reserve("r2", [Charge("tenant:b:day", 100, 100)], 60.0),
                      Reservation)
    assert isinstance(await ledger.reserve("r3", [Charge("tenant:a:day", 100, 1)], 60.0),
                      BudgetDenied)
    assert await ledger.usage("tenant:c:day") == BudgetUsage(0, 0)


async def test_an_empty_reservation_holds_nothing(ledger: BudgetLedger) -> None:
    reservation = await ledger.reserve("r1", [], 60.0)
    assert isinstance(reservation, Reservation) and reservation.charges == ()
    assert await ledger.settle("r1", 10) is True


@pytest.mark.parametrize(("charges", "lease_s"), [
    ([Charge(DAY, 100, 1), Charge(DAY, 100, 1)], 60.0),
    ([Charge(DAY, 100, -1)], 60.0),
    ([Charge(DAY, -1, 1)], 60.0),
    ([Charge(DAY, 2**53, 1)], 60.0),
    ([Charge("", 100, 1)], 60.0),
    ([Charge(DAY, 100, 1, ttl_s=0.0)], 60.0),
    ([Charge(DAY, 100, 1)], 0.0),
])
async def test_malformed_charges_are_refused(ledger: BudgetLedger, charges: list[Charge],
                                             lease_s: float) -> None:
    with pytest.raises(ValueError):
        await ledger.reserve("r1", charges, lease_s)


async def test_negative_actuals_are_refused(ledger: BudgetLedger) -> None:
    await ledger.reserve("r1", [Charge(DAY, 100, 10)], 60.0)
    with pytest.raises(ValueError):
        await ledger.settle("r1", -1)
    with pytest.raises(ValueError):
        await ledger.settle("r1", {DAY: -1})
