from decimal import Decimal

from costbrake.budget_view import monthly_budgets
from costbrake.dal.spend import ReservationInfo
from costbrake.operations.budgets import seed_defaults
from costbrake.records import Charge, CounterRef
from support.aggregate import aggregate_calls


def test_given_spend_on_several_shards_when_budgets_read_then_shards_are_summed(stores, settings, clock, call_record):
    seed_defaults(stores.admin, clock, settings)
    now = clock.now()
    for shard, request_id in ((0, "a"), (5, "b")):
        charges = [
            Charge(CounterRef("global", "m#2026-11", shard), Decimal("100"), Decimal("1"), 2_000_000_000),
            Charge(CounterRef("feature#chat", "m#2026-11", shard), Decimal("50"), Decimal("1"), 2_000_000_000),
        ]
        stores.spend.reserve(ReservationInfo(request_id, "u", "chat", "gpt-4o", now, 2_000_000_000), charges, None, 0)
        record = call_record(request_id=request_id, user_id="u", cost_usd=Decimal("0.25"))
        stores.spend.settle(request_id, charges, Decimal("0.25"), record)
    aggregate_calls(stores, now)  # shared counters are settled from the calls' stream

    budgets = {b.scope: b for b in monthly_budgets(stores.admin, settings, now)}

    assert budgets["global"].spent_usd == Decimal("0.50") and budgets["global"].month_usd == settings.global_month_usd
    assert budgets["feature#chat"].spent_usd == Decimal("0.50")
    assert budgets["feature#chat"].month_usd == settings.global_month_usd * Decimal("0.40")
    assert budgets["feature#admin"].spent_usd == 0
    assert budgets["global"].utilization == Decimal("0.50") / settings.global_month_usd
