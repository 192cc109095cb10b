"""The ledger's reserve/settle transactions against moto in-process."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeSerializer
from costbrake.config import Settings
from costbrake.dal.calls import call_item, call_item_raw
from costbrake.dal.spend import ChargesRefused, ReservationInfo
from costbrake.errors import LedgerUnavailable
from costbrake.local.faults import ConflictInjector
from costbrake.policy import key_features
from costbrake.records import ApiKey, AuditEntry, Charge, CounterRef, Limits, RateCharge
from costbrake.wiring import Stores

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
HOUR = CounterRef("user#alice", "h#2026-11-24T10")
GLOBAL = CounterRef("global", "m#2026-11", shard=3)


def info(request_id: str) -> ReservationInfo:
    return ReservationInfo(request_id, "alice", "chat", "gpt-4o", NOW, int(NOW.timestamp()) + 120)


def charges(amount: str, limit: str = "1") -> list[Charge]:
    return [
        Charge(HOUR, Decimal(limit), Decimal(amount), 2_000_000_000),
        Charge(GLOBAL, Decimal("100"), Decimal(amount), 2_000_000_000),
    ]


def test_given_room_when_reserved_then_counters_and_reservation_hold_the_amount(stores: Stores):
    stores.spend.reserve(info("r1"), charges("0.4"), None, 0)

    counters = stores.spend.get_counters([HOUR, GLOBAL])
    assert counters[HOUR].committed == counters[GLOBAL].committed == Decimal("0.4")
    assert counters[HOUR].spent == 0
    assert [r.request_id for r in stores.reservations.open_reservations()] == ["r1"]


def test_given_reservation_that_would_pass_limit_when_reserved_then_refused_naming_the_counter(stores: Stores):
    stores.spend.reserve(info("r1"), charges("0.7"), None, 0)

    with pytest.raises(ChargesRefused) as refused:
        stores.spend.reserve(info("r2"), charges("0.4"), None, 0)

    assert refused.value.refused == [HOUR]
    assert stores.spend.get_counters([HOUR])[HOUR].committed == Decimal("0.7")  # nothing of r2 applied
    assert [r.request_id for r in stores.reservations.open_reservations()] == ["r1"]


def test_given_exact_fit_when_reserved_then_accepted(stores: Stores):
    stores.spend.reserve(info("r1"), charges("0.6"), None, 0)
    stores.spend.reserve(info("r2"), charges("0.4"), None, 0)

    assert stores.spend.get_counters([HOUR])[HOUR].committed == Decimal("1.0")


def test_given_reservation_when_settled_then_actual_replaces_reserved_and_record_is_written(
    stores: Stores, call_record
):
    stores.spend.reserve(info("r1"), charges("0.4"), None, 0)

    stores.spend.settle(
        "r1", charges("0.4"), Decimal("0.123456789"), call_record(request_id="r1", cost_usd=Decimal("0.123456789"))
    )

    state = stores.spend.get_counters([HOUR])[HOUR]
    assert (state.committed, state.spent, state.calls) == (Decimal("0.123456789"), Decimal("0.123456789"), 1)
    assert stores.calls.get_call("r1").cost_usd == Decimal("0.123456789")
    assert stores.reservations.open_reservations() == []


def test_given_settled_call_when_settled_again_then_charged_once(stores: Stores, call_record):
    stores.spend.reserve(info("r1"), charges("0.4"), None, 0)
    stores.spend.settle("r1", charges("0.4"), Decimal("0.1"), call_record(request_id="r1", cost_usd=Decimal("0.1")))

    stores.spend.settle("r1", charges("0.4"), Decimal("0.1"), call_record(request_id="r1", cost_usd=Decimal("0.1")))

    state = stores.spend.get_counters([HOUR])[HOUR]
    assert (state.committed, state.spent, state.calls) == (Decimal("0.1"), Decimal("0.1"), 1)


def test_given_reservation_already_released_when_settled_then_full_actual_is_charged(stores: Stores, call_record):
    stores.spend.reserve(info("r1"), charges("0.4"), None, 0)
    # What the sweeper does with an expired reservation: return its amount and delete it.
    stores.spend.settle("r1", charges("0.4"), Decimal(0), call_record(request_id="sweep-r1", cost_usd=Decimal(0)))
    assert stores.spend.get_counters([HOUR])[HOUR].committed == 0

    stores.spend.settle("r1", charges("0.4"), Decimal("0.25"), call_record(request_id="r1", cost_usd=Decimal("0.25")))

    state = stores.spend.get_counters([HOUR])[HOUR]
    assert (state.committed, state.spent) == (Decimal("0.25"), Decimal("0.25"))
    assert stores.calls.get_call("r1").cost_usd == Decimal("0.25")


def test_given_rate_limit_when_requests_exceed_it_then_refused(stores: Stores):
    minute = CounterRef("user#alice", "rpm#2026-11-24T10:30")
    rate = RateCharge(minute, 2, 2_000_000_000)
    stores.spend.reserve(info("r1"), charges("0"), rate, 0)
    stores.spend.reserve(info("r2"), charges("0"), rate, 0)

    with pytest.raises(ChargesRefused) as refused:
        stores.spend.reserve(info("r3"), charges("0"), rate, 0)

    assert refused.value.refused == [minute]


def test_given_rate_limit_of_zero_when_the_minutes_first_request_comes_then_refused(stores: Stores):
    minute = CounterRef("user#alice", "rpm#2026-11-24T10:31")

    with pytest.raises(ChargesRefused) as refused:
        stores.spend.reserve(info("r1"), charges("0"), RateCharge(minute, 0, 2_000_000_000), 0)

    assert refused.value.refused == [minute]
    assert stores.reservations.open_reservations() == []


def test_given_throttling_on_every_attempt_when_reserving_then_bounded_retries_then_unavailable(
    stores: Stores, settings: Settings
):
    injector = ConflictInjector(hold_seconds=0, throttle_every=1).install(stores.tables.client)

    with pytest.raises(LedgerUnavailable):
        stores.spend.reserve(info("r1"), charges("0.1"), None, 0)

    assert stores.spend.stats.retries == settings.transaction_attempts - 1
    assert injector.throttles == settings.transaction_attempts
    assert stores.reservations.open_reservations() == []


def test_given_one_throttled_attempt_when_reserving_then_the_retry_goes_through(stores: Stores):
    stores.spend.reserve(info("r0"), charges("0.1"), None, 0)  # the user's item now counts this hour
    ConflictInjector(hold_seconds=0, throttle_every=2).install(stores.tables.client)
    stores.spend.reserve(info("r1"), charges("0.1"), None, 0)  # transaction 1 passes
    retries_before = stores.spend.stats.retries

    stores.spend.reserve(info("r2"), charges("0.1"), None, 0)  # transaction 2 throttled, 3 passes

    assert stores.spend.stats.retries - retries_before == 1
    assert stores.spend.get_counters([HOUR])[HOUR].committed == Decimal("0.3")


def test_given_alert_key_when_marked_twice_then_only_the_first_is_new(stores: Stores):
    assert stores.alerts.first_time("zscore/global/h#2026-11-24T10", 2_000_000_000, NOW) is True
    assert stores.alerts.first_time("zscore/global/h#2026-11-24T10", 2_000_000_000, NOW) is False
    assert stores.alerts.first_time("zscore/global/h#2026-11-24T11", 2_000_000_000, NOW) is True


def test_given_reserve_whose_answer_was_lost_when_retried_then_charged_once(stores: Stores):
    stores.spend.reserve(info("r1"), charges("0.4"), None, 0)

    stores.spend.reserve(info("r1"), charges("0.4"), None, 1)  # the retry finds its own reservation

    assert stores.spend.get_counters([HOUR])[HOUR].committed == Decimal("0.4")


# ---- keys ---------------------------------------------------------------------------------------------


def test_given_key_with_features_and_budgets_when_stored_then_read_back_exactly(stores: Stores):
    key = ApiKey(
        key_id="k-full",
        user_id=None,
        service=True,
        default_feature="summaries",
        features=("summaries", "chat"),
        hour_usd=Decimal("0.25"),
        day_usd=Decimal("1.5"),
        month_usd=Decimal("20"),
        name="svc",
    )

    stores.admin.put_key("hash-full", key, NOW)

    assert stores.spend.get_key("hash-full") == key
    assert stores.admin.find_key("k-full") == (key, NOW.isoformat())


def test_given_key_item_from_before_feature_lists_when_read_then_no_features_and_not_any_feature(stores: Stores):
    # What a key created before this version looks like in the table: no features, any_feature, hour or day.
    old = {"pk": "key#hash-old", "sk": "key", "key_id": "k-old", "user_id": "alice", "service": False}
    item = {name: TypeSerializer().serialize(value) for name, value in (old | {"default_feature": "chat"}).items()}
    stores.tables.client.put_item(TableName=stores.tables.ledger, Item=item)

    key = stores.spend.get_key("hash-old")

    assert key == ApiKey("k-old", "alice", False, default_feature="chat")
    assert key is not None and key_features(key) == ("chat",) and not key.any_feature


def test_given_any_feature_key_when_stored_then_the_opt_out_is_read_back(stores: Stores):
    stores.admin.put_key("hash-any", ApiKey("k-any", None, True, any_feature=True), NOW)

    stored = stores.spend.get_key("hash-any")
    assert stored is not None and stored.any_feature and stored.features == ()


def test_given_key_limits_set_when_read_then_only_the_given_windows_changed_with_an_audit_entry(stores: Stores):
    stores.admin.put_key("hash-b", ApiKey("k-b", None, True, month_usd=Decimal("10")), NOW)
    audit = AuditEntry(NOW, "lead", "limits", "month_usd=10", "day_usd=2, month_usd=10")

    updated = stores.admin.set_key_limits("k-b", Limits(day_usd=Decimal("2")), audit)

    assert updated == ApiKey("k-b", None, True, month_usd=Decimal("10"), day_usd=Decimal("2"))
    assert stores.admin.key_history("k-b") == [audit]
    assert stores.admin.set_key_limits("k-none", Limits(day_usd=Decimal("2")), audit) is None


def test_given_a_cache_hit_when_recorded_then_it_counts_one_request_and_its_record_keeps_the_saving(
    stores: Stores, call_record
):
    minute = CounterRef("user#alice", "rpm#2026-11-24T10:32")
    rate = RateCharge(minute, 1, 2_000_000_000)
    hit = call_record(
        request_id="h1", cost_usd=Decimal(0), reserved_usd=Decimal(0), cache_hit=True, saved_usd=Decimal("0.02")
    )

    assert stores.spend.record_free_call(hit, rate) is True
    assert stores.spend.record_free_call(call_record(request_id="h2", cache_hit=True), rate) is False  # the limit

    stored = stores.calls.get_call("h1")
    assert stored is not None and stored.cache_hit and stored.saved_usd == Decimal("0.02")
    assert stores.calls.get_call("h2") is None
    assert stores.spend.record_free_call(call_record(request_id="h3"), None) is True


def test_given_a_record_written_before_the_cost_reducers_when_read_then_their_fields_have_defaults(stores: Stores):
    fields = {
        "request_id": "old",
        "timestamp": "2026-11-24T10:30:00+00:00",
        "epoch": 0,
        "user_id": "alice",
        "feature": "chat",
        "key_id": "k",
        "provider": "openai",
        "model_requested": "gpt-4o",
        "model": "gpt-4o",
        "status": "ok",
        "http_status": 200,
        "cost_usd": Decimal("0.01"),
        "reserved_usd": Decimal("0.1"),
        "input_tokens": 1,
        "output_tokens": 1,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "estimated_input_tokens": 1,
        "max_output_tokens": 1,
        "usage_estimated": False,
        "truncated": False,
        "stream": False,
        "latency_ms": 1,
        "expires_at": 2_000_000_000,
    }
    item = {name: TypeSerializer().serialize(value) for name, value in fields.items()}
    stores.tables.client.put_item(TableName=stores.tables.calls, Item=item)

    old = stores.calls.get_call("old")

    assert old is not None
    assert (old.cache_hit, old.saved_usd, old.truncated_messages, old.cache_status) == (False, Decimal(0), 0, None)


def test_given_call_records_when_serialised_for_the_hot_path_then_the_items_equal_the_models(call_record):
    plain = call_record()
    full = call_record(
        request_id="r-full",
        error="boom",
        downgraded_from="gpt-4o",
        system_prompt_sha256="ab" * 32,
        cache_hit=True,
        saved_usd=Decimal("0.02"),
        truncated_messages=3,
        cache_status="hit",
        cache_similarity=Decimal("0.93"),
        finish_reason=None,
    )

    for record in (plain, full):
        assert call_item_raw(record) == call_item(record).serialize()
