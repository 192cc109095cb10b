"""The pure comparison: provider reports against ledger calls, per day x provider x model (injected time)."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import jsonschema
import pytest
from costbrake.pipeline.alerts import ALERT_JSON_SCHEMA, InMemoryPublisher
from costbrake.pricing import PriceTable
from costbrake.reconcile.alerts import ALERT_TYPES, InMemoryClaims, alerts_for, emf_lines, publish_new
from costbrake.reconcile.compare import LedgerUsage, VariancePolicy, days_back, ledger_usage, reconcile
from costbrake.reconcile.figures import DayStatus, Explanation, ProviderCost, ProviderReport, ProviderUsage, Tokens
from costbrake.records import CallRecord

PRICES = PriceTable.default()
DAY = date(2026, 11, 20)
FINAL = datetime(2026, 11, 22, 6, 30, tzinfo=UTC)  # 30.5 h after DAY ended: final
EARLY = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)  # DAY itself, not final
POLICY = VariancePolicy()
# gpt-4.1: $2 / M input, $8 / M output; claude-sonnet-4-5: $3 / $15.
MILLION = 1_000_000


def ledger(model: str, tokens: Tokens, usd: str, calls: int = 10, provider: str = "openai") -> LedgerUsage:
    return LedgerUsage(DAY, provider, model, tokens, Decimal(usd), calls)


def report(*rows: tuple[str, Tokens, str | None], provider: str = "openai", key: str = "key_gw") -> ProviderReport:
    usage = tuple(ProviderUsage(DAY, provider, model, tokens, api_key_id=key) for model, tokens, _ in rows)
    costs = tuple(ProviderCost(DAY, provider, Decimal(usd), model) for model, _, usd in rows if usd is not None)
    return ProviderReport(provider, usage, costs)


def run(rep: ProviderReport, rows: list[LedgerUsage], now: datetime = FINAL, keys: frozenset[str] = frozenset()):
    (day,) = reconcile(rep, rows, [DAY], now, POLICY, PRICES, keys)
    return day


def test_given_identical_tokens_and_dollars_when_reconciled_then_ok_with_zero_variance():
    tokens = Tokens(input=MILLION, output=MILLION // 2)

    day = run(report(("gpt-4.1", tokens, "6")), [ledger("gpt-4.1", tokens, "6")])

    assert day.status is DayStatus.OK and day.final
    assert day.variance_usd == 0 and day.unguarded_usd == 0 and not day.over_threshold
    (line,) = day.lines
    assert line.token_variance == Tokens() and line.drift_usd is None
    assert [f.kind for f in day.findings] == []


def test_given_a_dated_snapshot_at_the_provider_when_reconciled_then_it_lines_up_with_the_base_model():
    tokens = Tokens(input=MILLION)

    day = run(report(("gpt-4.1-2025-04-14", tokens, "2")), [ledger("gpt-4.1", tokens, "2")])

    assert [line.model for line in day.lines] == ["gpt-4.1"] and day.variance_usd == 0


def test_given_a_model_costbrake_never_saw_when_reconciled_then_all_of_it_is_unguarded_and_attributed():
    seen = Tokens(input=MILLION)
    outside = Tokens(input=2 * MILLION, output=1000)

    day = run(
        report(("gpt-4.1", seen, "2"), ("o4-mini", outside, "2.2044")),
        [ledger("gpt-4.1", seen, "2")],
        keys=frozenset({"key_gw"}),
    )

    assert day.status is DayStatus.UNGUARDED and day.unguarded_usd == Decimal("2.2044")
    (finding,) = [f for f in day.findings if f.kind is Explanation.UNGUARDED_SPEND]
    assert finding.model == "o4-mini" and finding.usd == Decimal("2.2044")
    assert "2,000,000 input" in finding.detail and "gateway's own provider key" in finding.detail


def test_given_more_tokens_at_the_provider_for_a_model_when_reconciled_then_the_excess_share_is_unguarded():
    # costbrake saw 1M input tokens ($2); the provider reports 3M ($6): 2M of them never went through costbrake.
    day = run(report(("gpt-4.1", Tokens(input=3 * MILLION), "6")), [ledger("gpt-4.1", Tokens(input=MILLION), "2")])

    (line,) = day.lines
    assert line.unguarded_usd == Decimal(4) and line.drift_usd is None
    assert day.status is DayStatus.UNGUARDED


def test_given_same_tokens_and_other_dollars_when_reconciled_then_price_drift_names_the_model_and_factor():
    tokens = Tokens(input=MILLION, output=MILLION)

    day = run(report(("claude-sonnet-4-5", tokens, "27")), [ledger("claude-sonnet-4-5", tokens, "18")])

    (line,) = day.lines
    assert line.drift_usd == Decimal(9) and line.price_factor == Decimal("1.5")
    assert day.drift_models == ("claude-sonnet-4-5",)
    assert day.status is DayStatus.VARIANCE and day.over_threshold


def test_given_drift_and_unguarded_together_when_reconciled_then_each_gets_its_own_part():
    # Provider doubled its price and reports 2M tokens; costbrake saw 1M at the old price ($2).
    day = run(report(("gpt-4.1", Tokens(input=2 * MILLION), "8")), [ledger("gpt-4.1", Tokens(input=MILLION), "2")])

    (line,) = day.lines
    assert line.unguarded_usd == Decimal(4)  # half the provider's tokens, at the provider's own price
    assert line.drift_usd == Decimal(2) and line.price_factor == Decimal(2)


def test_given_a_day_not_over_yet_when_the_provider_lags_then_pending_with_reporting_delay_and_no_variance_alert():
    day = run(
        report(("gpt-4.1", Tokens(input=MILLION), "2")), [ledger("gpt-4.1", Tokens(input=2 * MILLION), "4")], EARLY
    )

    assert day.status is DayStatus.PENDING and not day.final and day.over_threshold
    assert {f.kind for f in day.findings} == {Explanation.REPORTING_DELAY}
    assert alerts_for([day], EARLY, 7) == []


def test_given_the_same_lag_on_a_final_day_then_it_is_ledger_above_provider_and_alerted():
    day = run(report(("gpt-4.1", Tokens(input=MILLION), "2")), [ledger("gpt-4.1", Tokens(input=2 * MILLION), "4")])

    assert day.status is DayStatus.VARIANCE
    assert Explanation.LEDGER_ABOVE_PROVIDER in {f.kind for f in day.findings}
    assert [p.alert.type for p in alerts_for([day], FINAL, 7)] == ["reconciliation"]


@pytest.mark.parametrize(
    ("ledger_usd", "provider_usd", "alerts"),
    [
        ("1000", "1009", False),  # 0.9 %: under the 1 % threshold
        ("1000", "1011", True),  # 1.1 % and $11
        ("50", "50.99", False),  # 2 % but under the $1 floor
        ("50", "51.5", True),  # 3 % and $1.50
    ],
)
def test_given_a_variance_when_judged_then_it_must_pass_both_the_threshold_and_the_floor(
    ledger_usd, provider_usd, alerts
):
    tokens = Tokens(input=MILLION)
    rep = ProviderReport("openai", (ProviderUsage(DAY, "openai", "x-model", tokens),))
    rep = replace(rep, costs=(ProviderCost(DAY, "openai", Decimal(provider_usd), None, "fees"),))

    day = run(rep, [ledger("x-model", tokens, ledger_usd)])

    assert day.over_threshold is alerts


def test_given_unguarded_spend_on_an_unfinished_day_then_alerted_at_once_critical_and_only_once():
    day = run(report(("o4-mini", Tokens(input=5 * MILLION), "5.5")), [], EARLY)
    claims, publisher = InMemoryClaims(), InMemoryPublisher()

    first = publish_new(alerts_for([day], EARLY, 7), claims, publisher, EARLY)
    again = publish_new(alerts_for([day], EARLY + timedelta(hours=6), 7), claims, publisher, EARLY)

    (alert,) = first
    assert again == []
    assert (alert.type, alert.severity.value, alert.scope, alert.window.key) == (
        "unguarded_spend",
        "critical",
        "provider#openai",
        "d#2026-11-20",
    )
    assert alert.feature == "global" and alert.current == Decimal("5.5")
    assert alert.message_attributes["type"]["StringValue"] == "unguarded_spend"
    schema = copy.deepcopy(ALERT_JSON_SCHEMA)  # the lead adds the two types to the schema's enum
    schema["properties"]["type"]["enum"] = sorted({*schema["properties"]["type"]["enum"], *ALERT_TYPES})
    jsonschema.validate(alert.to_message(), schema)
    assert max(claims.claimed.values()) > int(datetime(2026, 11, 28, tzinfo=UTC).timestamp())  # outlives 7 days


def test_given_a_failed_publish_then_the_claim_is_released_for_the_next_run():
    day = run(report(("o4-mini", Tokens(input=5 * MILLION), "5.5")), [])

    class Failing:
        def publish(self, alert):
            raise RuntimeError("sns down")

    claims = InMemoryClaims()
    with pytest.raises(RuntimeError):
        publish_new(alerts_for([day], FINAL, 7), claims, Failing(), FINAL)

    assert claims.claimed == {}


def test_given_call_records_when_summed_then_per_utc_day_provider_and_model_with_estimated_calls_counted():
    base = dict(
        user_id="u",
        feature="f",
        key_id="k",
        model_requested="gpt-4.1",
        status="ok",
        http_status=200,
        reserved_usd=Decimal(1),
        reasoning_tokens=0,
        estimated_input_tokens=0,
        max_output_tokens=10,
        finish_reason="stop",
        truncated=False,
        stream=False,
        downgraded_from=None,
        system_prompt_sha256=None,
        latency_ms=1,
    )
    calls = [
        CallRecord(
            request_id=str(i),
            timestamp=datetime(2026, 11, 20, 23, 59, tzinfo=UTC) + timedelta(minutes=i),
            provider="openai",
            model="gpt-4.1",
            cost_usd=Decimal("0.5"),
            input_tokens=100,
            output_tokens=10,
            cache_read_tokens=5,
            cache_write_tokens=1,
            usage_estimated=i == 0,
            **base,
        )
        for i in range(3)
    ]

    rows = ledger_usage(calls)

    assert [(r.day, r.calls, r.estimated_calls, r.usd) for r in rows] == [
        (date(2026, 11, 20), 1, 1, Decimal("0.5")),
        (date(2026, 11, 21), 2, 0, Decimal("1.0")),
    ]
    assert rows[1].tokens == Tokens(input=200, cached=10, cache_write=2, output=20)
    assert days_back(datetime(2026, 11, 21, 1, tzinfo=UTC), 2) == [date(2026, 11, 20), date(2026, 11, 21)]


def test_given_reconciled_days_when_emitted_then_one_emf_record_per_day_in_its_own_namespace():
    day = run(report(("gpt-4.1", Tokens(input=MILLION), "2")), [ledger("gpt-4.1", Tokens(input=MILLION), "2")])

    (line,) = emf_lines([day])

    assert '"Namespace": "CostbrakeReconciliation"' in line and '"provider": "openai"' in line
    assert '"Dimensions": [["provider"]]' in line


def test_given_calls_charged_an_estimate_when_reconciled_then_the_variance_is_explained_as_estimated_not_unguarded():
    # Clients that left mid-stream: the ledger has the input bound (more input) but less of the output the
    # provider billed. That is not spend that went around costbrake.
    provider = Tokens(input=MILLION, output=100_000)
    charged = Tokens(input=1_300_000, output=10_000)
    rows = [replace(ledger("gpt-4.1", charged, "2.68"), estimated_calls=10)]

    day = run(report(("gpt-4.1", provider, "2.8")), rows)

    assert day.unguarded_usd == 0
    kinds = [f.kind for f in day.findings]
    assert Explanation.UNGUARDED_SPEND not in kinds and Explanation.ESTIMATED_USAGE in kinds


@pytest.mark.parametrize(
    ("model", "provider", "searches"),
    [("gpt-4o-search-preview", "openai", 40), ("claude-haiku-4-5", "anthropic", 100)],  # $0.025 / $0.01 a search
)
def test_given_web_search_fees_the_provider_books_apart_when_reconciled_then_no_price_drift_is_claimed(
    model, provider, searches
):
    tokens = Tokens(input=MILLION, output=MILLION // 10)
    token_usd = "3.5"
    rows = [replace(ledger(model, tokens, "4.5", provider=provider), web_searches=searches)]  # $1 of searches

    day = run(report((model, tokens, token_usd), provider=provider), rows)

    (line,) = day.lines
    assert line.drift_usd is None and line.ledger_usd == Decimal("4.5")


def test_given_web_search_calls_whose_tokens_the_provider_prices_higher_when_reconciled_then_the_drift_is_found():
    tokens = Tokens(input=MILLION, output=MILLION // 10)
    rows = [replace(ledger("claude-haiku-4-5", tokens, "4.5", provider="anthropic"), web_searches=100)]

    day = run(report(("claude-haiku-4-5", tokens, "3.85"), provider="anthropic"), rows)

    (line,) = day.lines
    assert line.drift_usd == Decimal("0.35") and line.price_factor == Decimal("1.1")
